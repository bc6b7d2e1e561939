package limit_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
)

// A tenant seen every couple of seconds keeps its block for up to MaxLeaseTTL: after its first
// (short) lease it costs one script for many requests, where fixed short leases cost one each.
// Its unused requests still go back, once the long lease has ended.
func TestLeased_QuietTenantKeepsALongLease(t *testing.T) {
	ctx := context.Background()
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000} // blocks of at most 1000
	period := limit.MonthOf(t0)
	quiet := func(maxTTL time.Duration) (calls int64, l *limit.Leased, r *limit.Redis) {
		l, r, c := leasedStore(t, time.Second)
		l.MaxLeaseTTL = maxTTL
		admit(t, ctx, l, "acme", p, period, t0)
		for i := 0; i < 10; i++ { // from +5s, every 2s: the first of these finds the lease ended
			admit(t, ctx, l, "acme", p, period, t0.Add(5*time.Second+time.Duration(i)*2*time.Second))
		}
		return c.n.Load(), l, r
	}
	if n, _, _ := quiet(0); n != 11 {
		t.Fatalf("fixed 1s leases: %d script calls for 11 requests 2s apart, want 11", n)
	}
	n, l, r := quiet(30 * time.Second)
	if n != 2 {
		t.Fatalf("with 30s leases: %d script calls, want 2 (the first lease, then one long lease)", n)
	}
	// The long lease (from +5s, 30s) took a block of 16 after the first's 15 went back.
	if _, used := redisView(t, r, "acme", p, t0.Add(30*time.Second)); used != 1+16 {
		t.Fatalf("during the long lease Redis counts %d, want 17: 1 admitted, then a block of 16", used)
	}
	if err := l.Sweep(ctx, t0.Add(34*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, used := redisView(t, r, "acme", p, t0.Add(34*time.Second)); used != 17 {
		t.Fatalf("a sweep before the long lease ended changed Redis: %d used", used)
	}
	if err := l.Sweep(ctx, t0.Add(36*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, used := redisView(t, r, "acme", p, t0.Add(36*time.Second)); used != 11 {
		t.Fatalf("after the long lease ended Redis counts %d, want the 11 admitted", used)
	}
}

// A tenant busy enough to need the plan's largest blocks keeps short leases: a block it stops
// using goes back one LeaseTTL after it was leased, as without MaxLeaseTTL.
func TestLeased_BusyTenantKeepsShortLeases(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, time.Second)
	l.MaxLeaseTTL = 30 * time.Second
	p := limit.Policy{Name: "p", Interval: time.Microsecond, Burst: 1_000_000, Quota: 10_000_000} // blocks of at most 1024
	period := limit.MonthOf(t0)
	const n = 3000 // blocks of 16, 64, 256, 1024, 1024, 1024: 3000 admitted, 408 in hand
	for i := 0; i < n; i++ {
		admit(t, ctx, l, "busy", p, period, t0.Add(time.Duration(i)*100*time.Microsecond))
	}
	if _, used := redisView(t, r, "busy", p, t0.Add(time.Second)); used != 3408 {
		t.Fatalf("Redis counts %d, want 3408 (six blocks)", used)
	}
	// The last block was leased at about +0.26s: a 1s lease has ended by +1.5s.
	if err := l.Sweep(ctx, t0.Add(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, used := redisView(t, r, "busy", p, t0.Add(1500*time.Millisecond)); used != n {
		t.Fatalf("after a short lease's end Redis counts %d, want the %d admitted", used, n)
	}
}

// With Prefetch, a quiet tenant's long lease is renewed in the background like a short one, and
// extended by a long lease again: one request every 2s for two minutes costs a handful of
// scripts, none of them on the request path after the first two.
func TestLeased_LongLeasesRenewInTheBackground(t *testing.T) {
	ctx := context.Background()
	l, r, calls := leasedStore(t, time.Second)
	l.Prefetch = true
	l.MaxLeaseTTL = 30 * time.Second
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000}
	period := limit.MonthOf(t0)
	const requests = 60
	for i := 0; i < requests; i++ {
		at := t0.Add(5*time.Second + time.Duration(i)*2*time.Second)
		if i == 0 {
			at = t0
		}
		before := calls.n.Load()
		admit(t, ctx, l, "acme", p, period, at)
		l.WaitRenewals()
		if i >= 2 && calls.n.Load()-before > 1 {
			t.Fatalf("request %d made %d script calls", i, calls.n.Load()-before)
		}
	}
	// The first lease, the long one at +5s, then a renewal in each long lease's last fifth
	// (about every 24-30s over 118s): at most 7.
	if n := calls.n.Load(); n > 7 {
		t.Fatalf("%d script calls for %d requests 2s apart, want at most 7", n, requests)
	}
	end := t0.Add(5*time.Second + requests*2*time.Second + time.Minute)
	if err := l.Sweep(ctx, end); err != nil {
		t.Fatal(err)
	}
	if _, used := redisView(t, r, "acme", p, end); used != requests {
		t.Fatalf("after every lease ended Redis counts %d, want the %d admitted", used, requests)
	}
	t.Logf("%d script calls for %d requests", calls.n.Load(), requests)
}

// A tenant seen once (most of a long tail) is forgotten a LeaseTTL after its lease ended, its
// leftovers handed back first; a tenant whose long lease still runs is kept.
func TestLeased_OneOffTenantsAreForgottenSoon(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, time.Second)
	l.MaxLeaseTTL = 30 * time.Second
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000}
	period := limit.MonthOf(t0)
	for i := 0; i < 500; i++ {
		admit(t, ctx, l, "once-"+strconv.Itoa(i), p, period, t0)
	}
	admit(t, ctx, l, "quiet", p, period, t0)
	admit(t, ctx, l, "quiet", p, period, t0.Add(5*time.Second)) // a 30s lease from +5s
	if err := l.Sweep(ctx, t0.Add(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n := l.Tracked(); n != 501 {
		t.Fatalf("half a LeaseTTL after the leases ended %d tenants are tracked, want 501", n)
	}
	if _, used := redisView(t, r, "once-7", p, t0.Add(1500*time.Millisecond)); used != 1 {
		t.Fatalf("Redis counts %d for a one-off tenant after the sweep, want 1", used)
	}
	if err := l.Sweep(ctx, t0.Add(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := l.Tracked(); n != 1 {
		t.Fatalf("a LeaseTTL after the one-off leases ended %d tenants are tracked, want only the quiet one", n)
	}
	admit(t, ctx, l, "once-7", p, period, t0.Add(7*time.Second)) // starts afresh
	if _, used := redisView(t, r, "once-7", p, t0.Add(7*time.Second)); used != 1+16 {
		t.Fatalf("Redis counts %d for the returning tenant, want 17: 1 admitted, then a first block", used)
	}
}
