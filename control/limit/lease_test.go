package limit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestBlockSize(t *testing.T) {
	for burst, want := range map[int64]int64{1: 1, 15: 1, 16: 1, 50: 3, 160: 10, 1_000_000: 1024} {
		if got := limit.BlockSize(limit.Policy{Burst: burst}); got != want {
			t.Errorf("BlockSize(burst %d) = %d, want %d", burst, got, want)
		}
	}
}

func TestLeased_OneRoundTripPerBlock(t *testing.T) {
	ctx := context.Background()
	r := &limit.Redis{Client: testenv.RedisClient(t), Prefix: testenv.KeyPrefix(t)}
	l := limit.NewLeased(r, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 160, Quota: 1000} // block of 10
	period := limit.MonthOf(t0)
	for i := 1; i <= 10; i++ {
		d, err := l.Take(ctx, "acme", p, period, t0)
		if err != nil || !d.Allowed || d.Remaining != int64(160-i) || d.QuotaUsed != int64(i) {
			t.Fatalf("request %d: %+v, %v", i, d, err)
		}
		if redisView, _ := r.Peek(ctx, "acme", p, period, t0); redisView.Remaining != 150 || redisView.QuotaUsed != 10 {
			t.Fatalf("request %d: Redis shows %d remaining, %d used; the block of 10 counts at once", i, redisView.Remaining, redisView.QuotaUsed)
		}
	}
	if d, _ := l.Take(ctx, "acme", p, period, t0); d.Remaining != 149 {
		t.Fatalf("11th request: %+v", d)
	}
	if redisView, _ := r.Peek(ctx, "acme", p, period, t0); redisView.Remaining != 140 {
		t.Fatalf("the 11th request leased the next block: Redis shows %d remaining", redisView.Remaining)
	}
}

func TestLeased_UnusedBlockExpires(t *testing.T) {
	ctx := context.Background()
	r := &limit.Redis{Client: testenv.RedisClient(t), Prefix: testenv.KeyPrefix(t)}
	l := limit.NewLeased(r, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 160}
	period := limit.MonthOf(t0)
	_, _ = l.Take(ctx, "acme", p, period, t0)
	d, _ := l.Take(ctx, "acme", p, period, t0.Add(2*time.Second))
	if redisView, _ := r.Peek(ctx, "acme", p, period, t0.Add(2*time.Second)); redisView.Remaining != 140 || d.Remaining != 149 {
		t.Fatalf("after the lease expired: Redis %d remaining (want 140: the 9 unused were dropped), decision %+v", redisView.Remaining, d)
	}
}

// Two instances sharing one Redis never admit more than the bucket holds, whatever the
// interleaving: every admission comes out of a block Redis granted.
func TestLeased_InstancesShareOneBucket(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.RedisClient(t), testenv.KeyPrefix(t)
	instances := []*limit.Leased{
		limit.NewLeased(&limit.Redis{Client: client, Prefix: prefix}, time.Second),
		limit.NewLeased(&limit.Redis{Client: client, Prefix: prefix}, time.Second),
	}
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 64, Quota: 10000}
	period := limit.MonthOf(t0)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, err := instances[i%2].Take(ctx, "shared", p, period, t0); err == nil && d.Allowed {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 64 {
		t.Fatalf("two instances admitted %d of 300 against a burst of 64", admitted.Load())
	}
}
