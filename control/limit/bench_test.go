package limit_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/internal/testenv"
)

// BenchmarkTake compares one decision in each store, over 1,000 tenants with a limit high
// enough that nothing is refused. The leased store is measured once every tenant holds full
// blocks (1,024 requests: one lease per 1,024 decisions), not while its blocks grow.
func BenchmarkTake(b *testing.B) {
	client := testenv.RedisClient(b)
	stores := map[string]limit.Store{
		"local":  limit.NewLocal(),
		"leased": limit.NewLeased(&limit.Redis{Client: client, Prefix: testenv.KeyPrefix(b)}, time.Minute),
		"redis":  &limit.Redis{Client: client, Prefix: testenv.KeyPrefix(b)},
	}
	p := limit.Policy{Name: "bench", Interval: time.Microsecond, Burst: 1 << 30, Quota: 1 << 40}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
	}
	ctx := context.Background()
	for _, name := range []string{"local", "leased", "redis"} {
		s := stores[name]
		b.Run(name, func(b *testing.B) {
			if name == "leased" {
				for _, k := range keys {
					for range 1400 { // blocks of 16, 64, 256, then 1,024
						now := time.Now()
						if _, err := s.Take(ctx, k, p, limit.MonthOf(now), now); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				now := time.Now()
				if _, err := s.Take(ctx, keys[i%len(keys)], p, limit.MonthOf(now), now); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
