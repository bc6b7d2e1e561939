package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// The conformance suite of audit.MongoStore, run in both tenant layouts.

type layoutFixture struct {
	db     *store.DB
	layout store.Layout
	store  *audit.MongoStore
	log    *audit.Log
	clock  *testenv.Clock
}

func newLayoutFixture(t *testing.T, layout store.Layout) *layoutFixture {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	f := &layoutFixture{db: db, layout: layout, store: &audit.MongoStore{DB: db, Layout: layout},
		clock: testenv.NewClock(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))}
	f.log = &audit.Log{Store: f.store, Now: f.clock.Now, Logger: zap.NewNop()}
	if err := f.store.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{store.SystemTenant, "alpha", "bravo"} {
		if err := f.store.CreateTenantCollections(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// record appends n entries to each tenant in turn, the same actor, action and detail for all
// (the detail names bravo, as data).
func (f *layoutFixture) record(n int, tenants ...string) {
	for i := 0; i < n; i++ {
		for _, tenant := range tenants {
			f.log.Record(context.Background(), tenant, identity.Actor{UserID: "usr_same", Role: identity.RoleOwner, IP: "203.0.113.7"},
				audit.ActionTenantUpdate, "target", audit.OutcomeSuccess, map[string]any{"i": i, "tenant_id": "bravo"})
			f.clock.Set(f.clock.Now().Add(time.Minute))
		}
	}
}

// raw is the collection holding tenant's entries, and the filter selecting them there.
func (f *layoutFixture) raw(tenant string) (string, bson.D) {
	if f.layout == store.LayoutShared {
		return store.SuffixAudit, bson.D{{Key: "tenant_id", Value: tenant}}
	}
	return store.TenantCollection(tenant, store.SuffixAudit), bson.D{}
}

func (f *layoutFixture) count(t *testing.T, tenant string) int64 {
	t.Helper()
	name, filter := f.raw(tenant)
	n, err := f.db.C(name).CountDocuments(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *layoutFixture) newest(t *testing.T, tenant string, filter audit.Filter) []*audit.Entry {
	t.Helper()
	var out []*audit.Entry
	if err := f.store.Newest(context.Background(), tenant, filter, func(e *audit.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *layoutFixture) verify(t *testing.T, tenant string) *audit.Verification {
	t.Helper()
	v, err := f.log.Verify(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAuditStore_Conformance(t *testing.T) {
	for _, layout := range store.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			ctx := context.Background()
			f := newLayoutFixture(t, layout)
			start := f.clock.Now()
			// Interleaved: both chains number from 1, so seq is unique per tenant, not overall.
			f.record(5, "alpha", "bravo", store.SystemTenant)
			for tenant, want := range map[string]int64{"alpha": 5, "bravo": 5, store.SystemTenant: 5} {
				seq, hash, err := f.store.Head(ctx, tenant)
				if err != nil || seq != want || hash == "" {
					t.Errorf("Head(%s) = %d, %q, %v", tenant, seq, hash, err)
				}
				if v := f.verify(t, tenant); !v.OK || v.Checked != want {
					t.Errorf("Verify(%s) = %+v", tenant, v)
				}
			}
			// Insert of a seq the tenant holds is taken; the same seq in a new tenant is not.
			_, hash, _ := f.store.Head(ctx, "alpha")
			dup := &audit.Entry{ID: "dup-1", Seq: 5, TenantID: "alpha", Time: f.clock.Now(), Action: "x", Outcome: "success", PrevHash: hash}
			if taken, err := f.store.Insert(ctx, dup); err != nil || !taken {
				t.Errorf("Insert of alpha's seq 5 again = %v, %v; want taken", taken, err)
			}
			if err := f.store.CreateTenantCollections(ctx, "charlie"); err != nil {
				t.Fatal(err)
			}
			fresh := &audit.Entry{ID: "fresh-1", Seq: 1, TenantID: "charlie", Time: f.clock.Now(), Action: "x", Outcome: "success"}
			fresh.Hash = audit.Hash(fresh)
			if taken, err := f.store.Insert(ctx, fresh); err != nil || taken {
				t.Errorf("Insert of charlie's seq 1 = %v, %v", taken, err)
			}
			if v := f.verify(t, "charlie"); !v.OK || v.Checked != 1 {
				t.Errorf("Verify(charlie) = %+v", v)
			}

			all := f.newest(t, "alpha", audit.Filter{})
			if len(all) != 5 || all[0].Seq != 5 || all[4].Seq != 1 {
				t.Fatalf("Newest(alpha) = %d entries", len(all))
			}
			if got := f.newest(t, "alpha", audit.Filter{Limit: 2, Before: 4}); len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 2 {
				t.Errorf("Newest(alpha, before 4, limit 2) = %v", seqs(got))
			}
			if got := f.newest(t, "alpha", audit.Filter{Actor: "usr_other"}); len(got) != 0 {
				t.Errorf("Newest(alpha, another actor) = %v", seqs(got))
			}
			if got := f.newest(t, "alpha", audit.Filter{Action: audit.ActionTenantUpdate, Outcome: audit.OutcomeSuccess, Actor: "usr_same",
				From: all[3].Time, To: all[1].Time}); len(got) != 2 || got[0].Seq != 3 {
				t.Errorf("Newest(alpha, time range) = %v", seqs(got))
			}
			if got := all[0].Detail["tenant_id"]; got != "bravo" {
				t.Errorf("detail.tenant_id of an alpha entry = %v, want the data kept", got)
			}
			var asc []*audit.Entry
			if err := f.store.Ascending(ctx, "alpha", 2, func(e *audit.Entry) error { asc = append(asc, e); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(asc) != 3 || asc[0].Seq != 3 || asc[2].Seq != 5 {
				t.Errorf("Ascending(alpha, after 2) = %v", seqs(asc))
			}
			last, err := f.store.LastBefore(ctx, "alpha", all[2].Time.Add(time.Second))
			if err != nil || last == nil || last.Seq != 3 {
				t.Errorf("LastBefore(alpha) = %+v, %v", last, err)
			}
			if last, err := f.store.LastBefore(ctx, "alpha", start); err != nil || last != nil {
				t.Errorf("LastBefore(alpha, start) = %+v, %v", last, err)
			}

			// Retention: alpha's chain is cut at seq 3 and still verifies; bravo keeps all.
			f.clock.Set(all[2].Time.Add(time.Hour + time.Second))
			n, err := f.log.Sweep(ctx, "alpha", time.Hour)
			if err != nil || n != 3 {
				t.Fatalf("Sweep(alpha) = %d, %v", n, err)
			}
			if a, err := f.store.Anchor(ctx, "alpha"); err != nil || a.Seq != 3 || a.Hash != all[2].Hash {
				t.Errorf("Anchor(alpha) = %+v, %v", a, err)
			}
			if v := f.verify(t, "alpha"); !v.OK || v.AnchorSeq != 3 || v.Checked != 2 {
				t.Errorf("Verify(alpha) after sweep = %+v", v)
			}
			if c := f.count(t, "alpha"); c != 2 {
				t.Errorf("alpha holds %d entries after the sweep, want 2", c)
			}
			if c := f.count(t, "bravo"); c != 5 {
				t.Errorf("bravo holds %d entries after alpha's sweep, want 5", c)
			}
			f.record(1, "alpha")
			if v := f.verify(t, "alpha"); !v.OK || v.HeadSeq != 6 {
				t.Errorf("Verify(alpha) after appending past the anchor = %+v", v)
			}
		})
	}
}

func seqs(es []*audit.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// TestAuditStore_Isolation: alpha and bravo hold like entries (same seqs, actor, action and a
// detail naming bravo). Every read for alpha returns alpha's entries only; alpha's sweep and a
// tampered alpha entry leave bravo's chain whole and verified.
func TestAuditStore_Isolation(t *testing.T) {
	for _, layout := range store.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			ctx := context.Background()
			f := newLayoutFixture(t, layout)
			f.record(4, "alpha", "bravo")
			alphaOnly := func(what string, es []*audit.Entry) {
				t.Helper()
				for _, e := range es {
					if e.TenantID != "alpha" {
						t.Errorf("%s for alpha returned bravo's entry %+v", what, e)
					}
				}
			}
			for _, filter := range []audit.Filter{{}, {Actor: "usr_same"}, {Action: audit.ActionTenantUpdate}, {Before: 100}, {Limit: 50}} {
				got := f.newest(t, "alpha", filter)
				if len(got) != 4 {
					t.Errorf("Newest(alpha, %+v) = %d entries, want 4", filter, len(got))
				}
				alphaOnly(fmt.Sprintf("Newest %+v", filter), got)
			}
			var asc []*audit.Entry
			if err := f.store.Ascending(ctx, "alpha", -1000, func(e *audit.Entry) error { asc = append(asc, e); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(asc) != 4 {
				t.Errorf("Ascending(alpha) = %d entries", len(asc))
			}
			alphaOnly("Ascending", asc)
			last, err := f.store.LastBefore(ctx, "alpha", f.clock.Now().Add(time.Hour))
			if err != nil || last == nil {
				t.Fatalf("LastBefore(alpha) = %v, %v", last, err)
			}
			alphaOnly("LastBefore", []*audit.Entry{last})
			bravoHead, bravoHash, _ := f.store.Head(ctx, "bravo")

			// An entry for alpha whose detail names bravo, and alpha's sweep past bravo's head.
			if err := f.store.Sweep(ctx, audit.Anchor{TenantID: "alpha", Seq: 1000, Hash: "x", SweptAt: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			if c := f.count(t, "alpha"); c != 0 {
				t.Errorf("alpha holds %d entries after sweeping all", c)
			}
			if c := f.count(t, "bravo"); c != 4 {
				t.Errorf("bravo holds %d entries after alpha's sweep, want 4", c)
			}
			if seq, hash, err := f.store.Head(ctx, "bravo"); err != nil || seq != bravoHead || hash != bravoHash {
				t.Errorf("bravo's head moved: %d %s, %v", seq, hash, err)
			}
			if v := f.verify(t, "bravo"); !v.OK || v.Checked != 4 {
				t.Errorf("Verify(bravo) = %+v", v)
			}

			// Tampering with one tenant's entry breaks that tenant's chain only.
			name, filter := f.raw("bravo")
			filter = append(filter, bson.E{Key: "seq", Value: 2})
			if _, err := f.db.C(name).UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "action", Value: "forged"}}}}); err != nil {
				t.Fatal(err)
			}
			if v := f.verify(t, "bravo"); v.OK || v.Broken.Seq != 2 {
				t.Errorf("Verify(bravo) after tampering = %+v", v)
			}
			f.record(2, "alpha")
			if v := f.verify(t, "alpha"); !v.OK {
				t.Errorf("Verify(alpha) after bravo's tampering = %+v", v)
			}
		})
	}
}
