package tenant_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/saasgate/saasgate/control/tenant"
)

// BenchmarkCacheGet is a tenant lookup on the request path: a hit among 10,000 cached tenants.
func BenchmarkCacheGet(b *testing.B) {
	ids := make([]string, 10000)
	l := newLoader()
	for i := range ids {
		ids[i] = "tenant-" + strconv.Itoa(i)
		l.set(&tenant.Tenant{ID: ids[i], Status: tenant.StatusActive, Plan: "free"})
	}
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	ctx := context.Background()
	for _, id := range ids {
		if _, err := c.Get(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Get(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
