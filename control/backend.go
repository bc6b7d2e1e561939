package control

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/saasgate/saasgate/control/store"
)

// BackendConfig says where data lives.
type BackendConfig struct {
	MongoURI string // empty: embedded FerretDB under DataDir
	Database string
	DataDir  string
	// Driver settings; a zero timeout is DefaultMongoTimeout.
	Mongo  store.Options
	Logger *zap.Logger
}

// Backend is the database connection, and the embedded server when there is one.
type Backend struct {
	DB       *store.DB
	embedded *store.Embedded
}

// OpenBackend connects to MongoDB, starting the embedded FerretDB first when no URI is set.
func OpenBackend(ctx context.Context, cfg BackendConfig) (*Backend, error) {
	b := &Backend{}
	uri := cfg.MongoURI
	if uri == "" {
		var logger *slog.Logger
		if cfg.Logger != nil {
			logger = slog.New(zapslog.NewHandler(cfg.Logger.Named("ferretdb").Core(), zapslog.WithName("ferretdb")))
			logger = slog.New(levelFilter{logger.Handler(), slog.LevelError}) // FerretDB logs every error reply at WARN
		}
		e, err := store.StartEmbedded(filepath.Join(cfg.DataDir, "db"), logger)
		if err != nil {
			return nil, err
		}
		b.embedded, uri = e, e.URI()
	}
	opts := cfg.Mongo
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = DefaultMongoTimeout
	}
	if opts.ServerSelectionTimeout == 0 {
		opts.ServerSelectionTimeout = DefaultMongoTimeout
	}
	db, err := store.ConnectWith(ctx, uri, cfg.Database, opts)
	if err != nil {
		if b.embedded != nil {
			b.embedded.Stop()
		}
		return nil, err
	}
	b.DB = db
	return b, nil
}

// Close disconnects and stops the embedded server.
func (b *Backend) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.DB.Close(ctx)
	if b.embedded != nil {
		b.embedded.Stop()
	}
	return err
}

// levelFilter drops records below min (FerretDB is chatty at INFO).
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (l levelFilter) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.Handler.Enabled(ctx, lv)
}

func (l levelFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFilter{l.Handler.WithAttrs(attrs), l.min}
}

func (l levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{l.Handler.WithGroup(name), l.min}
}
