package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Embedded is a FerretDB server with the SQLite backend running inside this process. It is the
// zero-configuration default (data under data_dir) and the test server.
type Embedded struct {
	f      *ferretdb.FerretDB
	cancel context.CancelFunc
	done   chan struct{}
	uri    string
}

// StartEmbedded starts FerretDB listening on a free loopback port, storing its SQLite files
// under dir (created with mode 0700 if absent).
func StartEmbedded(dir string, logger *slog.Logger) (*Embedded, error) {
	return StartEmbeddedOn(dir, "127.0.0.1:0", logger)
}

// StartEmbeddedOn is StartEmbedded listening on addr, so that a server can be stopped and
// started again where its clients look for it.
func StartEmbeddedOn(dir, addr string, logger *slog.Logger) (*Embedded, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded FerretDB: creating %s: %w", dir, err)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(discard{}, nil))
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		return nil, fmt.Errorf("embedded FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Embedded{f: f, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	e.uri = f.MongoDBURI()
	return e, nil
}

// URI is the mongodb:// address of the embedded server.
func (e *Embedded) URI() string { return e.uri }

// Stop shuts the server down and waits for it to release its files.
func (e *Embedded) Stop() {
	e.cancel()
	<-e.done
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
