package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// spreadDB is a test database whose spread databases are dropped with it.
func spreadDB(t *testing.T) *store.DB {
	t.Helper()
	db := testenv.DB(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := range store.SpreadDatabases {
			if err := db.Client.Database(store.SpreadDatabase(db.Database.Name(), i)).Drop(ctx); err != nil {
				t.Errorf("dropping spread database %d: %v", i, err)
			}
		}
	})
	return db
}

// holders returns the databases (main first, then spread) that hold collection name.
func holders(t *testing.T, db *store.DB, name string) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	dbs := []string{db.Database.Name()}
	for i := range store.SpreadDatabases {
		dbs = append(dbs, store.SpreadDatabase(db.Database.Name(), i))
	}
	for _, d := range dbs {
		names, err := db.Client.Database(d).ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
		if err != nil {
			t.Fatal(err)
		}
		if len(names) > 0 {
			found = append(found, d)
		}
	}
	return found
}

// A tenant's own collections live together in one spread database, found again by its id; the
// platform's stay in the main database; reads and writes go where the collection is.
func TestSpreadTenants_TenantCollectionsLiveInASpreadDatabase(t *testing.T) {
	ctx := context.Background()
	db := spreadDB(t)
	spread, err := db.SpreadTenants(ctx)
	if err != nil || !spread || !db.Spread() {
		t.Fatalf("SpreadTenants on an empty store: %v, %v; want spread", spread, err)
	}
	users, endpoints := store.TenantCollection("acme-co", store.SuffixUsers), store.TenantCollection("acme-co", "webhook_endpoints")
	if err := db.EnsureCollection(ctx, users, store.Index{Keys: []string{"email"}, Unique: true}); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureCollection(ctx, endpoints); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureCollection(ctx, store.CollDirectory); err != nil {
		t.Fatal(err)
	}
	where := holders(t, db, users)
	if len(where) != 1 || where[0] == db.Database.Name() {
		t.Fatalf("%s is in %v, want one spread database", users, where)
	}
	if got := holders(t, db, endpoints); !slices.Equal(got, where) {
		t.Errorf("%s is in %v, want beside %s in %v", endpoints, got, users, where)
	}
	if got := holders(t, db, store.CollDirectory); !slices.Equal(got, []string{db.Database.Name()}) {
		t.Errorf("%s is in %v, want the main database only", store.CollDirectory, got)
	}
	if _, err := db.C(users).InsertOne(ctx, bson.D{{Key: "_id", Value: "u1"}, {Key: "email", Value: "a@example.com"}}); err != nil {
		t.Fatal(err)
	}
	n, err := db.Client.Database(where[0]).Collection(users).CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("documents in %s.%s: %d, %v; want the one written through C", where[0], users, n, err)
	}
	if _, err := db.C(users).InsertOne(ctx, bson.D{{Key: "_id", Value: "u2"}, {Key: "email", Value: "a@example.com"}}); !store.IsDuplicateKey(err) {
		t.Errorf("a second user with the same email: %v, want the unique index to refuse it", err)
	}
}

// A store made before tenants were spread (the system tenant's users in the main database)
// keeps every tenant's collections there.
func TestSpreadTenants_KeepsAnEarlierStoreAsItIs(t *testing.T) {
	ctx := context.Background()
	db := spreadDB(t)
	if err := db.EnsureCollection(ctx, store.TenantCollection(store.SystemTenant, store.SuffixUsers)); err != nil {
		t.Fatal(err)
	}
	spread, err := db.SpreadTenants(ctx)
	if err != nil || spread || db.Spread() {
		t.Fatalf("SpreadTenants on an earlier store: %v, %v; want not spread", spread, err)
	}
	users := store.TenantCollection("acme-co", store.SuffixUsers)
	if err := db.EnsureCollection(ctx, users); err != nil {
		t.Fatal(err)
	}
	if got := holders(t, db, users); !slices.Equal(got, []string{db.Database.Name()}) {
		t.Errorf("%s is in %v, want the main database only", users, got)
	}
}

// The layout of a spread store is found where its tenants' collections are: a collections
// install, whose tenant collections (the system tenant's among them) are all in spread
// databases, is refused under `shared` as an unspread one is.
func TestSpreadTenants_LayoutIsDetectedInTheSpreadDatabases(t *testing.T) {
	ctx := context.Background()
	db := spreadDB(t)
	if spread, err := db.SpreadTenants(ctx); err != nil || !spread {
		t.Fatalf("SpreadTenants: %v, %v", spread, err)
	}
	if err := db.EnsureTenant(ctx, store.LayoutCollections, store.SystemTenant, store.SuffixUsers); err != nil {
		t.Fatal(err)
	}
	if l, found, err := db.DetectLayout(ctx); err != nil || !found || l != store.LayoutCollections {
		t.Fatalf("DetectLayout = %s, %v, %v; want collections, found", l, found, err)
	}
	if err := db.CheckLayout(ctx, store.LayoutShared); err == nil || !strings.Contains(err.Error(), "collections layout") {
		t.Fatalf("shared over a spread collections install: %v", err)
	}
}
