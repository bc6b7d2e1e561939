package limit_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/store"
)

// deadRedis is a real client aimed at a port nothing listens on: every call fails at once.
func deadRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := store.OpenRedis(store.RedisOptions{URL: "redis://" + addr, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type recorder struct {
	decided  map[string]int
	errors   int
	breakers []bool
}

func (r *recorder) Decided(_, result string) { r.decided[result]++ }
func (r *recorder) StoreError()              { r.errors++ }
func (r *recorder) BreakerChanged(open bool) { r.breakers = append(r.breakers, open) }

func TestLimiter_StoreFailureFollowsOnError(t *testing.T) {
	p := limit.Policy{Name: "free", Interval: time.Hour, Burst: 2}
	period := limit.MonthOf(t0)
	tests := []struct {
		mode        limit.OnError
		wantAllowed []bool
		wantResult  string
	}{
		{limit.OnErrorLocal, []bool{true, true, false}, limit.ResultRateLimited},
		{limit.OnErrorAllow, []bool{true, true, true}, limit.ResultErrorAllowed},
		{limit.OnErrorDeny, []bool{false, false, false}, limit.ResultErrorDenied},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			rec := &recorder{decided: map[string]int{}}
			l := &limit.Limiter{Store: &limit.Redis{Client: deadRedis(t)}, Local: limit.NewLocal(), OnError: tt.mode,
				Breaker: limit.NewBreaker(3, time.Second), Observer: rec}
			var last limit.Outcome
			for i, want := range tt.wantAllowed {
				last = l.Take(context.Background(), "acme", p, period, t0)
				if last.Allowed != want || !last.Degraded {
					t.Fatalf("request %d: %+v, want allowed=%v and degraded", i, last, want)
				}
			}
			if last.Denied != (tt.mode == limit.OnErrorDeny) {
				t.Fatalf("Denied = %v in mode %s", last.Denied, tt.mode)
			}
			if rec.decided[tt.wantResult] == 0 {
				t.Fatalf("results %v, want some %s", rec.decided, tt.wantResult)
			}
		})
	}
}

func TestLimiter_BreakerStopsCallingADeadStoreThenProbes(t *testing.T) {
	rec := &recorder{decided: map[string]int{}}
	b := limit.NewBreaker(3, time.Second)
	l := &limit.Limiter{Store: &limit.Redis{Client: deadRedis(t)}, Local: limit.NewLocal(), OnError: limit.OnErrorLocal,
		Breaker: b, Observer: rec}
	p := limit.Policy{Name: "free", Interval: time.Millisecond, Burst: 1000}
	period := limit.MonthOf(t0)
	for i := 0; i < 50; i++ {
		l.Take(context.Background(), "acme", p, period, t0)
	}
	if rec.errors != 3 {
		t.Fatalf("%d store calls failed; after 3 the breaker must stop calling", rec.errors)
	}
	if len(rec.breakers) != 1 || !rec.breakers[0] || !b.Open() {
		t.Fatalf("breaker transitions %v, want one opening", rec.breakers)
	}
	// After the cooldown one probe goes through; it fails, so the breaker stays open.
	l.Take(context.Background(), "acme", p, period, t0.Add(1100*time.Millisecond))
	l.Take(context.Background(), "acme", p, period, t0.Add(1200*time.Millisecond))
	if rec.errors != 4 {
		t.Fatalf("%d failed calls, want exactly one probe after the cooldown", rec.errors)
	}
}

func TestBreaker_ClosesAfterASuccessfulProbe(t *testing.T) {
	b := limit.NewBreaker(2, time.Second)
	b.Failure(t0)
	if b.Failure(t0) != true || b.Allow(t0) {
		t.Fatal("two failures must open the breaker")
	}
	probeAt := t0.Add(time.Second)
	if !b.Allow(probeAt) {
		t.Fatal("after the cooldown one probe is allowed")
	}
	if b.Allow(probeAt) {
		t.Fatal("only one probe at a time")
	}
	if !b.Success() || b.Open() || !b.Allow(probeAt) {
		t.Fatal("a successful probe closes the breaker")
	}
}

// A server that accepts connections but never answers (overloaded, paused) costs a request at
// most the timeout, and after three such calls nothing at all: the breaker opens.
func TestLimiter_HangingRedisIsBoundedByTheTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection open, say nothing
		}
	}()
	client, err := store.OpenRedis(store.RedisOptions{URL: "redis://" + l.Addr().String(), Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	lim := &limit.Limiter{Store: &limit.Redis{Client: client}, Local: limit.NewLocal(), OnError: limit.OnErrorLocal,
		Breaker: limit.NewBreaker(3, time.Minute)}
	p := limit.Policy{Name: "free", Interval: time.Millisecond, Burst: 100}
	var slowest time.Duration
	for i := 0; i < 10; i++ {
		start := time.Now()
		out := lim.Take(context.Background(), "acme", p, limit.MonthOf(t0), t0)
		slowest = max(slowest, time.Since(start))
		if !out.Allowed || !out.Degraded {
			t.Fatalf("request %d: %+v, want allowed by the local fallback", i, out)
		}
	}
	// 50 ms per call; the bound leaves room for a loaded machine, not for retries or hangs.
	if slowest > 500*time.Millisecond {
		t.Fatalf("slowest request took %v with a 50 ms timeout", slowest)
	}
}
