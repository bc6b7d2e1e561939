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
	db := testenv.DB(t)
	requireFerretDB(t, db)
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
	db := testenv.DB(t)
	if err := db.Database.CreateCollection(ctx, store.TenantCollection(store.SystemTenant, store.SuffixUsers)); err != nil {
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
	db := testenv.DB(t)
	requireFerretDB(t, db)
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

// requireFerretDB skips, saying why, a test of FerretDB's layout when SAASGATE_TEST_MONGO_URI
// names a MongoDB (where a new store is not spread); `make test` always runs it.
func requireFerretDB(t *testing.T, db *store.DB) {
	t.Helper()
	ferret, err := db.FerretDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !ferret {
		t.Skip("the test server is MongoDB: this test is about FerretDB's spread layout")
	}
}

// Every process reaching a store agrees where its tenants' collections are, whoever made them:
// a handle connected to a spread store, made through another handle, finds the tenants'
// collections where they are, and one connected to an earlier store finds them in the main
// database, although the server would spread a new store.
func TestSpreadTenants_EveryConnectionAgreesWithTheData(t *testing.T) {
	ctx := context.Background()
	uri := testenv.Mongo(t)
	first := testenv.DB(t)
	requireFerretDB(t, first)
	users := store.TenantCollection("acme-co", store.SuffixUsers)
	if err := first.EnsureCollection(ctx, store.TenantCollection(store.SystemTenant, store.SuffixUsers)); err != nil {
		t.Fatal(err)
	}
	if err := first.EnsureCollection(ctx, users); err != nil {
		t.Fatal(err)
	}
	if _, err := first.C(users).InsertOne(ctx, bson.D{{Key: "_id", Value: "u1"}}); err != nil {
		t.Fatal(err)
	}
	second, err := store.Connect(ctx, uri, first.Database.Name(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close(ctx)
	if !second.Spread() {
		t.Fatal("a second connection to a spread store does not spread")
	}
	if n, err := second.C(users).CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("the second connection counts %d users of acme-co (%v); want the one the first wrote", n, err)
	}

	earlier := testenv.DB(t)
	if err := earlier.Database.CreateCollection(ctx, store.TenantCollection(store.SystemTenant, store.SuffixUsers)); err != nil {
		t.Fatal(err)
	}
	again, err := store.Connect(ctx, uri, earlier.Database.Name(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(ctx)
	if again.Spread() {
		t.Error("a connection to an earlier store spreads its tenants")
	}
}

// Drop removes the spread databases with the main one.
func TestDrop_RemovesTheSpreadDatabases(t *testing.T) {
	ctx := context.Background()
	uri := testenv.Mongo(t)
	db, err := store.Connect(ctx, uri, testenv.Database(t), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	requireFerretDB(t, db)
	for _, id := range []string{store.SystemTenant, "acme-co", "globex"} {
		if err := db.EnsureCollection(ctx, store.TenantCollection(id, store.SuffixUsers)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.EnsureCollection(ctx, store.CollTenants); err != nil {
		t.Fatal(err)
	}
	if err := db.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	names, err := db.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, db.Database.Name()) {
			t.Errorf("database %s is left after Drop", n)
		}
	}
}

// A collection that existed is left as it is by CreateTenantCollection: its indexes are the
// caller's, after what its data needs first (the audit store numbers entries written before the
// chain, or MongoDB refuses the unique index over them). EnsureTenant then adds them.
func TestCreateTenantCollection_LeavesAnExistingCollectionAlone(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	for _, id := range []string{"acme-co", store.SystemTenant} {
		if created, err := db.CreateTenantCollection(ctx, id, "things"); err != nil || !created {
			t.Fatalf("%s: a bare collection: %v, %v", id, created, err)
		}
		unique := store.Index{Keys: []string{"seq"}, Unique: true}
		if created, err := db.CreateTenantCollection(ctx, id, "things", unique); err != nil || created {
			t.Fatalf("%s: again, with an index: %v, %v; want not created", id, created, err)
		}
		if n := indexCount(t, db, store.TenantCollection(id, "things")); n != 1 {
			t.Errorf("%s: %d indexes after CreateTenantCollection on an existing collection, want only _id", id, n)
		}
		if err := db.EnsureTenant(ctx, store.LayoutCollections, id, "things", unique); err != nil {
			t.Fatal(err)
		}
		if n := indexCount(t, db, store.TenantCollection(id, "things")); n != 2 {
			t.Errorf("%s: %d indexes after EnsureTenant, want _id and seq", id, n)
		}
	}
}

func indexCount(t *testing.T, db *store.DB, name string) int {
	t.Helper()
	specs, err := db.C(name).Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(specs)
}
