package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/store"
)

// MongoURIEnv names the environment variable that points the tests at a real MongoDB
// (e.g. mongodb://127.0.0.1:27017) instead of the embedded FerretDB.
const MongoURIEnv = "SAASGATE_TEST_MONGO_URI"

var (
	mainCalled atomic.Bool

	mongoOnce sync.Once
	mongoURI  string
	mongoErr  error

	// The embedded server, when one was started; Main stops it.
	embedded    *store.Embedded
	embeddedDir string
)

// Main runs the package's tests, then stops the embedded FerretDB and stripe-mock (if a test
// started them), removes their files, and exits with the tests' exit code. Call it from
// TestMain.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	stopStripeMock()
	if embedded != nil {
		embedded.Stop()
	}
	if embeddedDir != "" {
		if err := os.RemoveAll(embeddedDir); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: removing %s: %v\n", embeddedDir, err)
		}
	}
	os.Exit(code)
}

// Mongo returns the mongodb:// URI of the test server: the one in SAASGATE_TEST_MONGO_URI if
// set, otherwise an embedded FerretDB started on first use and shared by the whole test process.
// Tests share the server, not databases: use Database or DB for a database of the test's own.
func Mongo(t testing.TB) (uri string) {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatalf("testenv: Mongo needs `func TestMain(m *testing.M) { testenv.Main(m) }` in this " +
			"test package, so the embedded FerretDB is stopped and its files removed at the end")
	}
	mongoOnce.Do(startMongo)
	if mongoErr != nil {
		t.Fatalf("testenv: %v", mongoErr)
	}
	return mongoURI
}

func startMongo() {
	if uri := os.Getenv(MongoURIEnv); uri != "" {
		mongoURI = uri
		return
	}
	dir, err := os.MkdirTemp("", "saasgate-ferretdb-")
	if err != nil {
		mongoErr = fmt.Errorf("creating the embedded FerretDB directory: %w", err)
		return
	}
	e, err := store.StartEmbedded(dir, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		mongoErr = fmt.Errorf("starting the embedded FerretDB: %w", err)
		return
	}
	embedded, embeddedDir, mongoURI = e, dir, e.URI()
}

// Database returns a database name unique to this call: "t", random hex, then as much of the
// test's name as fits, so a leftover database can be traced to its test. It is valid for both
// MongoDB and FerretDB (letters, digits and '_', at most 63 bytes).
func Database(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("t")
	b.WriteString(randomHex(6))
	b.WriteString("_")
	for _, r := range t.Name() {
		if b.Len() >= 63 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// DB connects to a fresh database of its own on the test server (see Mongo). The database, and
// those its tenants are spread over, are dropped and the client closed when the test ends.
func DB(t testing.TB) *store.DB {
	t.Helper()
	uri, name := Mongo(t), Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Connect(ctx, uri, name, 10*time.Second)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Errorf("testenv: dropping database %s: %v", name, err)
		}
		if err := db.Close(ctx); err != nil {
			t.Errorf("testenv: closing the MongoDB client: %v", err)
		}
	})
	return db
}
