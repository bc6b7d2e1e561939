package caddymodule

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/tenant"
)

// cachedTenantBytes fills a tenant cache with n tenants the way a gateway does at start (one
// Resync through the gateway's view hook), looks each up once and computes its quota period
// as the request path does (a subscription's anchored period is cached per tenant), and
// returns the heap it holds per tenant once the list it was filled from is garbage.
func cachedTenantBytes(tb testing.TB, n int) float64 {
	_, per, _ := fillTenantCache(tb, n)
	return per
}

// fillTenantCache is cachedTenantBytes, returning the cache too, and the live heap objects
// per tenant: what the collector visits on each cycle, and what its cost follows.
func fillTenantCache(tb testing.TB, n int) (c *tenant.Cache, bytes, objects float64) {
	tb.Helper()
	now := time.Now().UTC()
	// Every string is the tenant's own copy, as when decoded from the store.
	own := strings.Clone
	list := func(_ context.Context, limit int, each func(*tenant.Tenant)) error {
		for i := 0; i < n && i < limit; i++ {
			id := "tenant-" + strconv.Itoa(100000+i)
			t := &tenant.Tenant{ID: id, Name: "Tenant " + id, Status: tenant.Status(own("active")), Plan: own("free"), CreatedAt: now, UpdatedAt: now}
			if i%10 == 0 { // a tenth pay, a few of them late
				t.Plan = own("pro")
				t.Billing = &tenant.Billing{Status: tenant.BillingStatus(own("active")), CustomerID: "cus_" + id, SubscriptionID: "sub_" + id, PeriodStart: now}
				if i%100 == 0 {
					t.Billing.Status, t.Billing.GraceUntil = tenant.BillingStatus(own("past_due")), now.Add(time.Hour)
				}
			}
			each(t)
		}
		return nil
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c = tenant.NewCache(func(context.Context, string) (*tenant.Tenant, error) { return nil, tenant.ErrNotFound },
		tenant.CacheConfig{NewView: newTenantView, PreloadMax: 2 * n})
	c.SetLister(list)
	if added, _, err := c.Resync(context.Background()); err != nil || added != n {
		tb.Fatalf("Resync added %d, %v; want %d", added, err, n)
	}
	for i := 0; i < n; i++ {
		v, err := c.View(context.Background(), "tenant-"+strconv.Itoa(100000+i))
		if err != nil {
			tb.Fatal(err)
		}
		if tv := v.(*tenantView); !tv.snap.PeriodAnchor.IsZero() { // as control.Service.Admit: only anchored periods are cached per tenant
			tv.quota.Get(tv.snap.PeriodAnchor, now)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return c, float64(after.HeapAlloc-before.HeapAlloc) / float64(n), float64(after.HeapObjects-before.HeapObjects) / float64(n)
}

// BenchmarkTenantCacheMemory reports the heap one cached tenant costs the gateway (SPEC §10:
// at most 1 KB), with 100,000 cached.
func BenchmarkTenantCacheMemory(b *testing.B) {
	var per, objects float64
	for b.Loop() {
		_, per, objects = fillTenantCache(b, 100000)
	}
	b.ReportMetric(per, "B/tenant")
	b.ReportMetric(objects, "objects/tenant")
}

// The tenant cache keeps each tenant in under 1 KB of heap (SPEC §10), with a margin for the
// map's growth steps.
func TestTenantCacheMemoryBound(t *testing.T) {
	per := cachedTenantBytes(t, 20000)
	t.Logf("%.0f bytes of heap per cached tenant", per)
	if per > 1024 {
		t.Fatalf("a cached tenant holds %.0f bytes of heap, over the 1 KB budget", per)
	}
}

// BenchmarkGCCycle is one full collection with no tenant and with 100,000 cached: what the
// cache adds to every cycle the collector runs under load (each request leaves garbage).
// Entries held in arrays (viewSlabs, tenant.Cache.newEntry) rather than one object each took it
// from 12-14 ms to 5-6 ms on the development machine (1 ms with no tenant).
func BenchmarkGCCycle(b *testing.B) {
	for _, n := range []int{0, 100000} {
		b.Run("cached="+strconv.Itoa(n), func(b *testing.B) {
			var c *tenant.Cache
			if n > 0 {
				c, _, _ = fillTenantCache(b, n)
			}
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(c)
		})
	}
}
