package audit_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// counter is an audit.Observer that counts.
type counter struct{ appended, failed atomic.Int64 }

func (c *counter) Appended()     { c.appended.Add(1) }
func (c *counter) VerifyFailed() { c.failed.Add(1) }

type chainFixture struct {
	db    *store.DB
	store *audit.MongoStore
	log   *audit.Log
	obs   *counter
	clock *testenv.Clock
}

func newChain(t *testing.T, tenants ...string) *chainFixture {
	t.Helper()
	db := testenv.DB(t)
	f := &chainFixture{db: db, store: &audit.MongoStore{DB: db}, obs: &counter{},
		clock: testenv.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 123456789, time.UTC))}
	f.log = f.replica()
	ctx := context.Background()
	if err := f.store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range tenants {
		if err := f.store.CreateTenantCollections(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// replica is another Log over the same database, as a second gateway would build.
func (f *chainFixture) replica() *audit.Log {
	return &audit.Log{Store: &audit.MongoStore{DB: f.db}, Now: f.clock.Now, Observer: f.obs, Logger: zap.NewNop()}
}

func (f *chainFixture) record(n int, tenantID string) {
	for i := 0; i < n; i++ {
		f.log.Record(context.Background(), tenantID, identity.Actor{UserID: "usr_1", Role: identity.RoleOwner, IP: "203.0.113.9"},
			audit.ActionTenantUpdate, tenantID, audit.OutcomeSuccess,
			map[string]any{"n": i, "when": f.clock.Now(), "nested": map[string]any{"b": 1, "a": []any{"x", 2.5}}})
		f.clock.Set(f.clock.Now().Add(time.Minute))
	}
}

func (f *chainFixture) verify(t *testing.T, tenantID string) *audit.Verification {
	t.Helper()
	v, err := f.log.Verify(context.Background(), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *chainFixture) coll(tenantID string) string { return "t_" + tenantID + "_audit" }

func (f *chainFixture) update(t *testing.T, tenantID string, seq int64, set bson.D) {
	t.Helper()
	res, err := f.db.C(f.coll(tenantID)).UpdateOne(context.Background(), bson.D{{Key: "seq", Value: seq}}, bson.D{{Key: "$set", Value: set}})
	if err != nil || res.ModifiedCount != 1 {
		t.Fatalf("tampering with seq %d: %v (modified %d)", seq, err, res.ModifiedCount)
	}
}

func wantBroken(t *testing.T, v *audit.Verification, seq int64, reason string) {
	t.Helper()
	if v.OK || v.Broken == nil || v.Broken.Seq != seq || !strings.Contains(v.Broken.Reason, reason) {
		t.Fatalf("verification %+v (broken %+v), want broken at seq %d (%s)", v, v.Broken, seq, reason)
	}
}

func TestChain_AnUntouchedChainVerifies(t *testing.T) {
	f := newChain(t, "acme")
	f.record(5, "acme")
	v := f.verify(t, "acme")
	if !v.OK || v.Checked != 5 || v.HeadSeq != 5 {
		t.Fatalf("verification %+v, want ok with 5 entries", v)
	}
	if f.obs.appended.Load() != 5 || f.obs.failed.Load() != 0 {
		t.Errorf("observer heard %d appends, %d failures; want 5, 0", f.obs.appended.Load(), f.obs.failed.Load())
	}
}

// Every field of an entry is covered: changing any one of them in the database is found at
// that entry, and rewriting its hash too is found at the next one.
func TestChain_AnEditedEntryIsFound(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    bson.D
		seq    int64
		reason string
	}{
		{"outcome", bson.D{{Key: "outcome", Value: audit.OutcomeFailure}}, 3, "hash does not match"},
		{"actor", bson.D{{Key: "actor_id", Value: "usr_2"}}, 3, "hash does not match"},
		{"time", bson.D{{Key: "time", Value: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}, 3, "hash does not match"},
		{"detail", bson.D{{Key: "detail.nested.b", Value: 2}}, 3, "hash does not match"},
		{"ip", bson.D{{Key: "ip", Value: "198.51.100.1"}}, 3, "hash does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newChain(t, "acme")
			f.record(5, "acme")
			f.update(t, "acme", 3, tc.set)
			wantBroken(t, f.verify(t, "acme"), tc.seq, tc.reason)
			if f.obs.failed.Load() != 1 {
				t.Errorf("observer heard %d failed verifications, want 1", f.obs.failed.Load())
			}
		})
	}
}

// Whoever edits an entry and writes its new hash breaks the next link instead.
func TestChain_AnEditedEntryWithItsHashRecomputedIsFoundAtTheNext(t *testing.T) {
	f := newChain(t, "acme")
	f.record(5, "acme")
	var e audit.Entry
	if err := f.db.C(f.coll("acme")).FindOne(context.Background(), bson.D{{Key: "seq", Value: 3}}).Decode(&e); err != nil {
		t.Fatal(err)
	}
	e.Outcome = audit.OutcomeFailure
	f.update(t, "acme", 3, bson.D{{Key: "outcome", Value: e.Outcome}, {Key: "hash", Value: audit.Hash(&e)}})
	wantBroken(t, f.verify(t, "acme"), 4, "prev_hash")
}

func TestChain_ADeletedMiddleEntryIsFound(t *testing.T) {
	f := newChain(t, "acme")
	f.record(5, "acme")
	if _, err := f.db.C(f.coll("acme")).DeleteOne(context.Background(), bson.D{{Key: "seq", Value: 3}}); err != nil {
		t.Fatal(err)
	}
	wantBroken(t, f.verify(t, "acme"), 3, "missing")
}

// Two replicas appending at once leave one chain: every seq from 1 to 100 once, each linked
// to the one before.
func TestChain_TwoReplicasAppendingAtOnceDoNotFork(t *testing.T) {
	f := newChain(t, "acme")
	replicas := []*audit.Log{f.replica(), f.replica()}
	core, logs := observer.New(zap.ErrorLevel)
	for _, r := range replicas {
		r.Logger = zap.New(core)
	}
	testenv.AtOnce(100, func(i int) {
		replicas[i%2].Record(context.Background(), "acme", identity.Actor{UserID: "usr_1"}, audit.ActionLogin, "usr_1",
			audit.OutcomeSuccess, map[string]any{"i": i})
	})
	for _, e := range logs.All() {
		t.Errorf("logged: %s %v", e.Message, e.ContextMap())
	}
	v := f.verify(t, "acme")
	if !v.OK || v.Checked != 100 || v.HeadSeq != 100 {
		t.Fatalf("verification %+v (broken %+v), want one chain of seq 1..100", v, v.Broken)
	}
	if n, _ := f.db.C(f.coll("acme")).CountDocuments(context.Background(), bson.D{}); n != 100 {
		t.Errorf("%d entries stored, want 100", n)
	}
}

// Chains are per tenant: one tenant's entries start at seq 1 whatever the other holds.
func TestChain_ChainsArePerTenant(t *testing.T) {
	f := newChain(t, "acme", "globex")
	f.record(3, "acme")
	f.record(2, "globex")
	if v := f.verify(t, "globex"); !v.OK || v.HeadSeq != 2 {
		t.Fatalf("globex: %+v, want ok at seq 2", v)
	}
	if v := f.verify(t, "acme"); !v.OK || v.HeadSeq != 3 {
		t.Fatalf("acme: %+v, want ok at seq 3", v)
	}
}

// A write that fails is logged, not returned: Record's callers have already made the change.
func TestChain_AFailedAppendIsLogged(t *testing.T) {
	db, err := store.Connect(context.Background(), testenv.Mongo(t), testenv.Database(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.ErrorLevel)
	log := &audit.Log{Store: &audit.MongoStore{DB: db}, Logger: zap.New(core)}
	log.Record(context.Background(), "acme", identity.Actor{UserID: "usr_1"}, audit.ActionLogin, "usr_1", audit.OutcomeSuccess, nil)
	if logs.FilterMessage("audit entry not written").Len() != 1 {
		t.Fatalf("logged %v, want one 'audit entry not written'", logs.All())
	}
}
