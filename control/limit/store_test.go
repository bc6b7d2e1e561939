package limit_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stores lists every Store implementation; the conformance suite runs against each.
func stores(t *testing.T) map[string]limit.Store {
	r := &limit.Redis{Client: testenv.RedisClient(t), Prefix: testenv.KeyPrefix(t)}
	return map[string]limit.Store{
		"local":  limit.NewLocal(),
		"redis":  r,
		"leased": limit.NewLeased(&limit.Redis{Client: r.Client, Prefix: testenv.KeyPrefix(t)}, time.Second),
	}
}

var t0 = time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)

func TestStore_Conformance(t *testing.T) {
	ctx := context.Background()
	period := limit.MonthOf(t0)
	for name, s := range stores(t) {
		t.Run(name+"/FirstRequestLeavesBurstMinusOne", func(t *testing.T) {
			p := limit.Policy{Name: "p", Interval: time.Second, Burst: 5}
			d, err := s.Take(ctx, "first", p, period, t0)
			if err != nil || !d.Allowed || d.Limit != 5 || d.Remaining != 4 || d.ResetAfter != time.Second {
				t.Fatalf("first Take = %+v, %v", d, err)
			}
		})
		t.Run(name+"/BurstThenRejectThenRefill", func(t *testing.T) {
			p := limit.Policy{Name: "p", Interval: 100 * time.Millisecond, Burst: 3}
			for i := 0; i < 3; i++ {
				if d, err := s.Take(ctx, "burst", p, period, t0); err != nil || !d.Allowed || d.Remaining != int64(2-i) {
					t.Fatalf("request %d: %+v, %v", i, d, err)
				}
			}
			d, err := s.Take(ctx, "burst", p, period, t0)
			if err != nil || d.Allowed || d.Reason != limit.ReasonRate || d.Remaining != 0 || d.RetryAfter != 100*time.Millisecond {
				t.Fatalf("over the burst: %+v, %v", d, err)
			}
			if d, _ := s.Take(ctx, "burst", p, period, t0.Add(99*time.Millisecond)); d.Allowed {
				t.Fatal("admitted before one interval passed")
			}
			if d, _ := s.Take(ctx, "burst", p, period, t0.Add(100*time.Millisecond)); !d.Allowed || d.Remaining != 0 {
				t.Fatalf("after one interval: %+v", d)
			}
		})
		t.Run(name+"/QuotaRejectionDoesNotConsume", func(t *testing.T) {
			p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 100, Quota: 3}
			for i := 0; i < 3; i++ {
				if d, _ := s.Take(ctx, "quota", p, period, t0); !d.Allowed || d.QuotaUsed != int64(i+1) {
					t.Fatalf("request %d: %+v", i, d)
				}
			}
			for i := 0; i < 5; i++ {
				d, _ := s.Take(ctx, "quota", p, period, t0.Add(time.Second))
				if d.Allowed || d.Reason != limit.ReasonQuota || d.RetryAfter != period.End.Sub(t0.Add(time.Second)) || d.Remaining != 0 {
					t.Fatalf("over the quota: %+v", d)
				}
			}
			if d, _ := s.Peek(ctx, "quota", p, period, t0.Add(time.Second)); d.QuotaUsed != 3 || d.Remaining != 0 {
				t.Fatalf("rejected requests consumed quota: %+v", d)
			}
			next := limit.MonthOf(period.End)
			if d, _ := s.Take(ctx, "quota", p, next, next.Start); !d.Allowed || d.QuotaUsed != 1 {
				t.Fatalf("a new period starts from zero: %+v", d)
			}
		})
		t.Run(name+"/RateRejectionDoesNotConsumeQuota", func(t *testing.T) {
			p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 2, Quota: 10}
			for i := 0; i < 6; i++ {
				_, _ = s.Take(ctx, "rate-quota", p, period, t0)
			}
			if d, _ := s.Peek(ctx, "rate-quota", p, period, t0); d.QuotaUsed != 2 {
				t.Fatalf("quota used = %d after 2 admitted and 4 rate-limited, want 2", d.QuotaUsed)
			}
		})
		t.Run(name+"/PeekDoesNotConsume", func(t *testing.T) {
			p := limit.Policy{Name: "p", Interval: time.Second, Burst: 2, Quota: 5}
			for i := 0; i < 5; i++ {
				d, err := s.Peek(ctx, "peek", p, period, t0)
				if err != nil || d.Remaining != 2 || d.QuotaUsed != 0 {
					t.Fatalf("Peek on an untouched key = %+v, %v", d, err)
				}
			}
			if d, _ := s.Take(ctx, "peek", p, period, t0); d.Remaining != 1 {
				t.Fatalf("Take after Peeks = %+v", d)
			}
			if d, _ := s.Peek(ctx, "peek", p, period, t0); d.Remaining != 1 || d.QuotaUsed != 1 {
				t.Fatalf("Peek after one Take = %+v", d)
			}
		})
		t.Run(name+"/FiguresAreExactAtAnyInstant", func(t *testing.T) {
			// Nanoseconds since the epoch exceed what a double holds exactly; an odd instant
			// shows any rounding in the figures.
			at := t0.Add(123_456_789*time.Nanosecond + 7)
			p := limit.Policy{Name: "p", Interval: 72 * time.Second, Burst: 50}
			for i := 0; i < 3; i++ {
				if d, _ := s.Peek(ctx, "instant", p, period, at); d.Remaining != 50 || d.ResetAfter != 0 {
					t.Fatalf("full bucket: remaining %d, reset %v", d.Remaining, d.ResetAfter)
				}
			}
			d, _ := s.Take(ctx, "instant", p, period, at)
			if d.Remaining != 49 || d.ResetAfter <= 71*time.Second || d.ResetAfter > 72*time.Second {
				t.Fatalf("after one request: remaining %d, reset %v (want 49, 72 s)", d.Remaining, d.ResetAfter)
			}
		})
		t.Run(name+"/PlanChangeStartsAFullBucketAndKeepsTheQuota", func(t *testing.T) {
			small := limit.Policy{Name: "small", Interval: time.Hour, Burst: 2, Quota: 100}
			big := limit.Policy{Name: "big", Interval: time.Second, Burst: 200, Quota: 100}
			for i := 0; i < 3; i++ {
				_, _ = s.Take(ctx, "upgrade", small, period, t0)
			}
			d, _ := s.Take(ctx, "upgrade", big, period, t0)
			if !d.Allowed || d.Remaining != 97 || d.QuotaUsed != 3 {
				t.Fatalf("first request on the new plan: %+v (want the big bucket nearly full and quota used 3)", d)
			}
		})
		t.Run(name+"/KeysAreIsolated", func(t *testing.T) {
			p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 1}
			_, _ = s.Take(ctx, "tenant-a", p, period, t0)
			if d, _ := s.Take(ctx, "tenant-a", p, period, t0); d.Allowed {
				t.Fatal("tenant-a was admitted over its burst")
			}
			if d, _ := s.Take(ctx, "tenant-b", p, period, t0); !d.Allowed {
				t.Fatal("tenant-a's use limited tenant-b")
			}
		})
		t.Run(name+"/ConcurrentRequestsAdmitExactlyTheBurst", func(t *testing.T) {
			p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 50, Quota: 1000}
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 200; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if d, err := s.Take(ctx, "concurrent", p, period, t0); err == nil && d.Allowed {
						admitted.Add(1)
					}
				}()
			}
			wg.Wait()
			if admitted.Load() != 50 {
				t.Fatalf("admitted %d of 200 concurrent requests, want exactly 50", admitted.Load())
			}
			if d, _ := s.Peek(ctx, "concurrent", p, period, t0); d.QuotaUsed != 50 {
				t.Fatalf("quota used %d, want 50", d.QuotaUsed)
			}
		})
	}
}

func TestRedis_KeysShareAClusterSlot(t *testing.T) {
	r := &limit.Redis{Prefix: "sg:"}
	rate, quota := r.Keys("acme", limit.Policy{Name: "pro"}, limit.MonthOf(t0))
	if rate != "sg:{acme}:r:pro" || quota != "sg:{acme}:q:"+strconv.FormatInt(limit.MonthOf(t0).Start.Unix(), 10) {
		t.Fatalf("keys = %q, %q: both must carry the {tenant} hash tag", rate, quota)
	}
}

func TestRedis_RecoversWhenTheScriptCacheIsFlushed(t *testing.T) {
	client := testenv.RedisClient(t)
	s := &limit.Redis{Client: client, Prefix: testenv.KeyPrefix(t)}
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 2}
	ctx := context.Background()
	if d, err := s.Take(ctx, "flush", p, limit.MonthOf(t0), t0); err != nil || !d.Allowed {
		t.Fatal(d, err)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Take(ctx, "flush", p, limit.MonthOf(t0), t0); err != nil || !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after SCRIPT FLUSH (NOSCRIPT fallback): %+v, %v", d, err)
	}
}
