package tenant_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/saasgate/saasgate/control/tenant"
)

// Exists answers from the cache when it holds every tenant: an unknown id costs no store read
// (in the embedded store, a read for an id it does not hold reads every tenant). Without a
// cache, or before it is complete, it asks the store; either way the answers are the same.
func TestManager_ExistsAsksTheCacheFirst(t *testing.T) {
	ctx := context.Background()
	m, _ := billingManager(t, "acme")
	var loads atomic.Int64
	cache := tenant.NewCache(func(ctx context.Context, id string) (*tenant.Tenant, error) {
		loads.Add(1)
		return m.Lookup(ctx, id)
	}, tenant.CacheConfig{})
	cache.SetLister(tenant.SliceLister(m.Store.ListN))

	check := func(stage string, wantLoads int64) {
		t.Helper()
		loads.Store(0)
		for id, want := range map[string]bool{"acme": true, "nobody-here": false} {
			if got, err := m.Exists(ctx, id); err != nil || got != want {
				t.Errorf("%s: Exists(%q) = %v, %v; want %v", stage, id, got, err, want)
			}
		}
		if got := loads.Load(); got != wantLoads {
			t.Errorf("%s: %d store reads through the cache, want %d", stage, got, wantLoads)
		}
	}
	check("no cache", 0)
	m.Cached = cache.Get
	check("cache not yet complete", 2)
	cache.Flush()
	if _, complete, err := cache.Resync(ctx); err != nil || !complete {
		t.Fatalf("Resync: complete %v, %v", complete, err)
	}
	check("complete cache", 0)
}
