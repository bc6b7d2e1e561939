package control_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// tenantSuffixes are the collections every tenant gets.
var tenantSuffixes = []string{store.SuffixUsers, store.SuffixInvitations, store.SuffixAudit, notify.SuffixEndpoints}

// indexesOf lists a collection's indexes as "name keys unique", sorted.
func indexesOf(t *testing.T, db *store.DB, coll string) []string {
	t.Helper()
	cur, err := db.C(coll).Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []struct {
		Name   string `bson:"name"`
		Key    bson.D `bson:"key"` // in order: a compound index's fields
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range specs {
		out = append(out, fmt.Sprintf("%s %v unique=%v", s.Name, s.Key, s.Unique))
	}
	slices.Sort(out)
	return out
}

// A new tenant's collections are made in one createIndexes call each; they must come out as
// the one-index-at-a-time path makes them (the path of a collection that exists, as on a
// restart), and running the provisioners again on them (a restart) changes nothing.
func TestProvisioning_OneCallGivesTheIndexesOfOneAtATime(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	provisioners := []func(context.Context, string) error{
		(&account.MongoStore{DB: db}).CreateTenantCollections,
		(&audit.MongoStore{DB: db}).CreateTenantCollections,
		(&notify.MongoStore{DB: db}).CreateTenantCollections,
	}
	// "stepwise" has its collections already, bare: the provisioners add each index alone.
	for _, suffix := range tenantSuffixes {
		if created, err := db.CreateTenantCollection(ctx, "stepwise", suffix); err != nil || !created {
			t.Fatalf("creating a bare collection: %v, %v", created, err)
		}
	}
	for _, id := range []string{"fresh", "stepwise", "fresh"} {
		for _, provision := range provisioners {
			if err := provision(ctx, id); err != nil {
				t.Fatalf("provisioning %s: %v", id, err)
			}
		}
	}
	for _, suffix := range tenantSuffixes {
		fresh, stepwise := indexesOf(t, db, store.TenantCollection("fresh", suffix)), indexesOf(t, db, store.TenantCollection("stepwise", suffix))
		if !slices.Equal(fresh, stepwise) || len(fresh) == 0 {
			t.Errorf("%s: new collection %v, one index at a time %v; want the same", suffix, fresh, stepwise)
		}
	}
	if got := indexesOf(t, db, store.TenantCollection("fresh", store.SuffixAudit)); len(got) != 4 {
		t.Errorf("audit indexes %v, want _id, seq (unique), time, actor_id+time", got)
	}
}

// Creations started together all succeed, each tenant with all its collections and indexes.
func TestTenants_ConcurrentCreationsAllSucceed(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t, control.Config{})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = svc.Tenants.Create(ctx, identity.Actor{UserID: "test"}, fmt.Sprintf("Together %d", i))
		}()
	}
	wg.Wait()
	db := svc.Backend.DB
	want := map[string]int{}
	for _, suffix := range tenantSuffixes {
		want[suffix] = len(indexesOf(t, db, store.TenantCollection(store.SystemTenant, suffix)))
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("creation %d: %v", i, err)
			continue
		}
		for _, suffix := range tenantSuffixes {
			coll := store.TenantCollection(fmt.Sprintf("together-%d", i), suffix)
			if got := indexesOf(t, db, coll); len(got) != want[suffix] {
				t.Errorf("%s: indexes %v, want %d as the system tenant's", coll, got, want[suffix])
			}
		}
	}
}

// saasgate warns at start when the embedded store holds more tenants than it serves well, and
// only then.
func TestService_WarnsAtStartWhenTheEmbeddedStoreHoldsTooManyTenants(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := control.OpenBackend(ctx, control.BackendConfig{Database: control.DefaultDatabase, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if !b.DB.Spread() {
		t.Error("a new embedded store does not spread its tenants over databases")
	}
	rt, err := control.OpenRuntime(control.RuntimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	plans, err := plan.NewCatalog(nil, "free")
	if err != nil {
		t.Fatal(err)
	}
	made := 0
	start := func() []observer.LoggedEntry {
		core, logs := observer.New(zap.WarnLevel)
		svc, err := control.New(ctx, b, rt, control.Config{DataDir: dir, Plans: plans, EmbeddedTenantLimit: 2, Logger: zap.New(core)})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			made++
			if _, err := svc.Tenants.Create(ctx, identity.Actor{UserID: "test"}, fmt.Sprintf("Tenant %d", made)); err != nil {
				t.Fatal(err)
			}
		}
		return logs.FilterMessageSnippet("more tenants than it serves well").All()
	}
	if warned := start(); len(warned) != 0 {
		t.Fatalf("an empty store warned: %v", warned)
	}
	if warned := start(); len(warned) != 0 {
		t.Fatalf("a store at the limit (2 tenants) warned: %v", warned)
	}
	warned := start()
	if len(warned) != 1 || warned[0].ContextMap()["tenants"] != int64(4) || warned[0].ContextMap()["limit"] != int64(2) {
		t.Fatalf("a store over the limit (4 tenants): %v, want one WARN naming 4 tenants and the limit 2", warned)
	}

	// MongoDB is not the embedded store: no warning, whatever the count.
	core, logs := observer.New(zap.WarnLevel)
	svc, _ := newService(t, control.Config{EmbeddedTenantLimit: 1, Logger: zap.New(core)})
	for i := range 3 {
		if _, err := svc.Tenants.Create(ctx, identity.Actor{UserID: "test"}, fmt.Sprintf("Mongo %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := control.New(ctx, svc.Backend, rt, control.Config{DataDir: t.TempDir(), Plans: plans, EmbeddedTenantLimit: 1, Logger: zap.New(core)}); err != nil {
		t.Fatal(err)
	}
	if warned := logs.FilterMessageSnippet("more tenants than it serves well").All(); len(warned) != 0 {
		t.Errorf("MongoDB warned: %v", warned)
	}
}
