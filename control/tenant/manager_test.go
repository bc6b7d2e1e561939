package tenant_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

// billingManager is a tenant manager over a fresh database, with tenants ids on the free
// plan, that records the tenants it announces.
func billingManager(t *testing.T, ids ...string) (*tenant.Manager, *announced) {
	t.Helper()
	ctx := context.Background()
	s := &tenant.MongoStore{DB: testenv.DB(t)}
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := s.Insert(ctx, &tenant.Tenant{ID: id, Name: id, Status: tenant.StatusActive, Plan: "free"}); err != nil {
			t.Fatal(err)
		}
	}
	a := &announced{}
	return &tenant.Manager{Store: s, OnChange: a.hear}, a
}

type announced struct {
	mu      sync.Mutex
	tenants []*tenant.Tenant
}

func (a *announced) hear(_ context.Context, t *tenant.Tenant) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tenants = append(a.tenants, t)
}

func (a *announced) all() []*tenant.Tenant {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.tenants)
}

// An edit that changes something is stored, plan and billing together, as the next revision,
// and the stored tenant is announced to the caches; an edit that changes nothing writes and
// announces nothing.
func TestManager_UpdateBillingStoresTheNextRevisionAndAnnouncesIt(t *testing.T) {
	ctx := context.Background()
	m, heard := billingManager(t, "acme")

	updated, changed, err := m.UpdateBilling(ctx, "acme", func(t *tenant.Tenant, b *tenant.Billing) bool {
		t.Plan, b.CustomerID, b.Status = "pro", "cus_acme", tenant.BillingActive
		return true
	})
	if err != nil || !changed {
		t.Fatalf("UpdateBilling = %v, %v; want changed", changed, err)
	}
	stored, err := m.Lookup(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for name, tn := range map[string]*tenant.Tenant{"returned": updated, "stored": stored} {
		if b := tn.Billing; tn.Plan != "pro" || b == nil || b.Rev != 1 || b.CustomerID != "cus_acme" || b.Status != tenant.BillingActive {
			t.Errorf("%s: plan %s, billing %+v; want pro, active, cus_acme at revision 1", name, tn.Plan, b)
		}
	}
	if got := heard.all(); len(got) != 1 || got[0].ID != "acme" || got[0].Billing.Rev != 1 {
		t.Fatalf("announced %+v, want acme at revision 1 once", got)
	}

	same, changed, err := m.UpdateBilling(ctx, "acme", func(*tenant.Tenant, *tenant.Billing) bool { return false })
	if err != nil || changed || same.Billing.Rev != 1 {
		t.Fatalf("an edit changing nothing: %+v, %v, %v; want revision 1 unchanged", same.Billing, changed, err)
	}
	if n := len(heard.all()); n != 1 {
		t.Errorf("%d announcements after an edit that changed nothing, want 1", n)
	}
	if _, _, err := m.UpdateBilling(ctx, "nobody", func(*tenant.Tenant, *tenant.Billing) bool { return true }); err != tenant.ErrNotFound {
		t.Errorf("UpdateBilling of an unknown tenant = %v, want ErrNotFound", err)
	}
}

// Concurrent writers never lose each other's update: each claims its own revision, and a
// writer that loses a claim edits again on the newer state. Eight writers counting one each
// leave eight, at revision eight.
func TestManager_UpdateBillingConcurrentWritersLoseNoUpdate(t *testing.T) {
	ctx := context.Background()
	m, heard := billingManager(t, "acme")
	const writers = 8
	errs := make([]error, writers)
	testenv.AtOnce(writers, func(i int) {
		_, _, errs[i] = m.UpdateBilling(ctx, "acme", func(_ *tenant.Tenant, b *tenant.Billing) bool {
			b.Retries++
			return true
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	tn, err := m.Lookup(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if b := tn.Billing; b.Retries != writers || b.Rev != writers {
		t.Fatalf("billing %+v; want %d retries at revision %d", b, writers, writers)
	}
	if n := len(heard.all()); n != writers {
		t.Errorf("%d announcements, want %d", n, writers)
	}
}

// The scheduler's list holds the tenants in the billing status asked for, and only them.
func TestManager_ListByBillingStatus(t *testing.T) {
	ctx := context.Background()
	m, _ := billingManager(t, "late-a", "late-b", "paid", "never")
	for id, status := range map[string]tenant.BillingStatus{"late-a": tenant.BillingPastDue, "late-b": tenant.BillingPastDue, "paid": tenant.BillingActive} {
		if _, _, err := m.UpdateBilling(ctx, id, func(_ *tenant.Tenant, b *tenant.Billing) bool {
			b.Status, b.GraceUntil = status, time.Now().Add(time.Hour)
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	due, err := m.ListByBillingStatus(ctx, tenant.BillingPastDue)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tn := range due {
		ids = append(ids, tn.ID)
	}
	if !slices.Equal(ids, []string{"late-a", "late-b"}) {
		t.Errorf("past due: %v, want [late-a late-b]", ids)
	}
}

// Every update counts one more revision in the store, from 1 at creation; a record written
// before revisions existed counts from 0. Concurrent updates in one process each get their own
// revision, on FerretDB too.
func TestMongoStore_UpdateCountsARevision(t *testing.T) {
	ctx := context.Background()
	s := &tenant.MongoStore{DB: testenv.DB(t)}
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*tenant.Tenant{{ID: "fresh", Status: tenant.StatusActive, Plan: "free", Rev: 1},
		{ID: "legacy", Status: tenant.StatusActive, Plan: "free"}} {
		if err := s.Insert(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	name := "renamed"
	for _, tc := range []struct {
		id   string
		want int64
	}{{"fresh", 2}, {"fresh", 3}, {"legacy", 1}} {
		got, err := s.Update(ctx, tc.id, tenant.Patch{Name: &name, UpdatedAt: time.Now()})
		if err != nil || got.Rev != tc.want {
			t.Fatalf("Update(%s) = rev %v, %v; want %d", tc.id, got, err, tc.want)
		}
	}
	var wg sync.WaitGroup
	revs := make([]int64, 8)
	for i := range revs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.Update(ctx, "fresh", tenant.Patch{Name: &name, UpdatedAt: time.Now()})
			if err != nil {
				t.Error(err)
				return
			}
			revs[i] = got.Rev
		}()
	}
	wg.Wait()
	slices.Sort(revs)
	if revs = slices.Compact(revs); len(revs) != 8 {
		t.Fatalf("8 concurrent updates got revisions %v; want 8 distinct", revs)
	}
	if final, err := s.Get(ctx, "fresh"); err != nil || final.Rev != 11 {
		t.Fatalf("after them the store holds %v, %v; want rev 11", final, err)
	}
}

// EachN, the cache's lister, hands over the tenants one by one in id order, at most n of them,
// as they are stored; through it Resync fills a cache that then holds every tenant.
func TestMongoStore_EachNStreamsTheTenants(t *testing.T) {
	ctx := context.Background()
	s := &tenant.MongoStore{DB: testenv.DB(t)}
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"echo", "alpha", "delta", "charlie", "bravo"} {
		if err := s.Insert(ctx, &tenant.Tenant{ID: id, Name: strings.ToUpper(id), Status: tenant.StatusActive, Plan: "free", Rev: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.EachN(ctx, 3, func(tn *tenant.Tenant) { got = append(got, tn.ID+"/"+tn.Name) }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha/ALPHA", "bravo/BRAVO", "charlie/CHARLIE"}; !slices.Equal(got, want) {
		t.Fatalf("EachN(3) = %v, want %v", got, want)
	}
	c := tenant.NewCache(s.Get, tenant.CacheConfig{PreloadMax: 10})
	c.SetLister(s.EachN)
	if added, complete, err := c.Resync(ctx); err != nil || added != 5 || !complete {
		t.Fatalf("Resync = %d, %v, %v; want all 5, complete", added, complete, err)
	}
	if _, err := c.Get(ctx, "zulu"); err != tenant.ErrNotFound {
		t.Fatalf("an unknown id from the complete cache: %v", err)
	}
}
