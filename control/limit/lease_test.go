package limit_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// scriptCalls counts the limiter scripts a client sends to Redis (EVALSHA and EVAL), each
// command of a pipeline included.
type scriptCalls struct{ n, pipelines atomic.Int64 }

func (c *scriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		before := c.n.Load()
		for _, cmd := range cmds {
			c.count(cmd)
		}
		if c.n.Load() > before {
			c.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

func (c *scriptCalls) count(cmd redis.Cmder) {
	if name := cmd.Name(); name == "evalsha" || name == "eval" {
		c.n.Add(1)
	}
}

// leasedStore is a leasing store whose script calls are counted, and the exact store over the
// same keys (another client, not counted) to look at what Redis holds.
func leasedStore(t *testing.T, ttl time.Duration) (*limit.Leased, *limit.Redis, *scriptCalls) {
	client, prefix := testenv.RedisClient(t), testenv.KeyPrefix(t)
	calls := new(scriptCalls)
	client.AddHook(calls)
	view := &limit.Redis{Client: testenv.RedisClient(t), Prefix: prefix}
	l := limit.NewLeased(&limit.Redis{Client: client, Prefix: prefix}, ttl)
	l.Prefetch = false // every renewal on the request path, where a test can count it
	return l, view, calls
}

// redisView is what Redis holds for key: the requests the bucket still has and the quota used,
// blocks in hand counted as spent.
func redisView(t *testing.T, r *limit.Redis, key string, p limit.Policy, at time.Time) (remaining, used int64) {
	t.Helper()
	d, err := r.Peek(context.Background(), key, p, limit.MonthOf(at), at)
	if err != nil {
		t.Fatal(err)
	}
	return d.Remaining, d.QuotaUsed
}

// admit takes one request of key at `at` through l, failing the test unless it is admitted.
func admit(t *testing.T, ctx context.Context, l *limit.Leased, key string, p limit.Policy, period limit.Period, at time.Time) limit.Decision {
	t.Helper()
	d, err := l.Take(ctx, key, p, period, at)
	if err != nil || !d.Allowed {
		t.Fatalf("%s at %v: %+v, %v; want admitted", key, at.Sub(t0), d, err)
	}
	return d
}

// A tenant's blocks grow with its traffic: 16 requests, then four times more each time one is
// used up, up to the plan's largest block; each lease is one script call, and the requests in a
// block count in Redis at once.
func TestLeased_BlocksGrowWithDemand(t *testing.T) {
	ctx := context.Background()
	l, r, calls := leasedStore(t, time.Minute)
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 16000, Quota: 100000} // blocks of at most 1000
	period := limit.MonthOf(t0)
	// request i (1-based) → the script calls so far, and what Redis has counted
	steps := map[int]struct{ calls, counted int64 }{
		1: {1, 16}, 16: {1, 16}, 17: {2, 80}, 80: {2, 80}, 81: {3, 336}, 336: {3, 336},
		337: {4, 1336}, 1336: {4, 1336}, 1337: {5, 2336},
	}
	for i := 1; i <= 1337; i++ {
		d, err := l.Take(ctx, "acme", p, period, t0)
		if err != nil || !d.Allowed || d.Remaining != int64(16000-i) || d.QuotaUsed != int64(i) {
			t.Fatalf("request %d: %+v, %v (want remaining %d, quota used %d)", i, d, err, 16000-i, i)
		}
		if want, ok := steps[i]; ok {
			remaining, used := redisView(t, r, "acme", p, t0)
			if got := calls.n.Load(); got != want.calls {
				t.Fatalf("after request %d: %d script calls, want %d leases", i, got, want.calls)
			}
			if used != want.counted || remaining != 16000-want.counted {
				t.Fatalf("after request %d: Redis counts %d used, %d remaining; want %d leased", i, used, remaining, want.counted)
			}
		}
	}
}

// What a block leaves unused when its lease ends goes back with the next lease: the bucket and
// the quota count only the requests admitted.
func TestLeased_UnusedRequestsGoBackWithTheNextLease(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 160, Quota: 1000}
	period := limit.MonthOf(t0)
	for i := 0; i < 2; i++ { // a block of 10 (the plan's largest), 8 left
		admit(t, ctx, l, "acme", p, period, t0)
	}
	if _, used := redisView(t, r, "acme", p, t0); used != 10 {
		t.Fatalf("Redis counts %d, want the block (10)", used)
	}
	later := t0.Add(2 * time.Second) // the block has expired with 8 unused
	d, err := l.Take(ctx, "acme", p, period, later)
	if err != nil || !d.Allowed || d.QuotaUsed != 3 {
		t.Fatalf("third request: %+v, %v; want quota used 3", d, err)
	}
	// The third lease handed back 8 and took 4 (twice what the last lease used), one of them
	// now spent: Redis counts 2 + 4.
	if remaining, used := redisView(t, r, "acme", p, later); used != 6 || remaining != 154 {
		t.Fatalf("Redis counts %d used, %d remaining; want 6 and 154", used, remaining)
	}
}

// A tenant that goes quiet gets its unused requests back from Sweep once its lease has ended,
// and an instance that stops hands back every block with Release: the quota counts exactly
// what was admitted.
func TestLeased_SweepAndReleaseHandBack(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 160, Quota: 1000}
	period := limit.MonthOf(t0)
	take6 := func(key string, at time.Time) { // a block of 10: 10 counted, 6 admitted
		for i := 0; i < 6; i++ {
			admit(t, ctx, l, key, p, period, at)
		}
	}
	take6("quiet", t0)
	if err := l.Sweep(ctx, t0.Add(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if remaining, used := redisView(t, r, "quiet", p, t0); used != 10 || remaining != 150 {
		t.Fatalf("a sweep before the lease ended changed Redis: %d used, %d remaining", used, remaining)
	}
	take6("stopping", t0.Add(time.Second)) // its lease runs until t0+2s
	late := t0.Add(1500 * time.Millisecond)
	if err := l.Sweep(ctx, late); err != nil {
		t.Fatal(err)
	}
	if remaining, used := redisView(t, r, "quiet", p, late); used != 6 || remaining != 154 {
		t.Fatalf("quiet after the sweep: Redis counts %d used, %d remaining; want the 6 admitted, 154", used, remaining)
	}
	if _, used := redisView(t, r, "stopping", p, late); used != 10 {
		t.Fatalf("stopping after the sweep: Redis counts %d, want 10 (its lease was still running)", used)
	}
	if err := l.Release(ctx, late); err != nil {
		t.Fatal(err)
	}
	if _, used := redisView(t, r, "stopping", p, late); used != 6 {
		t.Fatalf("stopping after Release: Redis counts %d, want the 6 admitted", used)
	}
	// Handing back is done once: another sweep changes nothing.
	if err := l.Sweep(ctx, late.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, used := redisView(t, r, "quiet", p, late); used != 6 {
		t.Fatalf("a second sweep handed back again: Redis counts %d", used)
	}
}

// A block that Sweep ended sizes the next lease by what it served, like one that the next
// lease ended: twice the requests used, not four times the block.
func TestLeased_BlockAfterSweepFollowsUse(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000} // first block 16
	period := limit.MonthOf(t0)
	for i := 0; i < 2; i++ {
		admit(t, ctx, l, "acme", p, period, t0)
	}
	if err := l.Sweep(ctx, t0.Add(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(2 * time.Second)
	if _, used := redisView(t, r, "acme", p, at); used != 2 {
		t.Fatalf("after the sweep Redis counts %d, want the 2 admitted", used)
	}
	if d := admit(t, ctx, l, "acme", p, period, at); d.QuotaUsed != 3 {
		t.Fatalf("third request: %+v", d)
	}
	if _, used := redisView(t, r, "acme", p, at); used != 2+4 {
		t.Fatalf("Redis counts %d, want 6: the 2 admitted and a block of 4 (twice the 2 used)", used)
	}
}

// With Prefetch, a block still in use in the last fifth of its lease is renewed in the
// background: brought to twice what it served (the excess handed back, or topped up) and its
// lease extended, so the request after the old lease's end does not wait for Redis.
func TestLeased_PrefetchRenewsBeforeTheLeaseEnds(t *testing.T) {
	ctx := context.Background()
	l, r, calls := leasedStore(t, 10*time.Second)
	l.Prefetch = true
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000} // first block 16
	period := limit.MonthOf(t0)
	take := func(key string, at time.Duration, wantUsed int64) {
		t.Helper()
		if d := admit(t, ctx, l, key, p, period, t0.Add(at)); d.QuotaUsed != wantUsed {
			t.Fatalf("%s at +%v: %+v; want quota used %d", key, at, d, wantUsed)
		}
	}
	// trim: 4 served by +8.5s (in the last fifth): the block of 16 is cut to 8, 4 go back.
	for i, at := range []time.Duration{0, time.Second, 2 * time.Second, 8500 * time.Millisecond} {
		take("trim", at, int64(i+1))
	}
	l.WaitRenewals()
	if n := calls.n.Load(); n != 2 {
		t.Fatalf("%d script calls, want 2: the first lease and one renewal", n)
	}
	if _, used := redisView(t, r, "trim", p, t0.Add(9*time.Second)); used != 12 {
		t.Fatalf("Redis counts %d, want 12: 16 leased, 4 handed back", used)
	}
	take("trim", 12*time.Second, 5) // after the first lease's end: from the renewed block
	if n := calls.n.Load(); n != 2 {
		t.Fatalf("the request after the lease's end made a script call (%d in all)", n)
	}

	// top up: 12 served by +9s: the block of 16 (4 left) grows to 24.
	for i := 0; i < 11; i++ {
		take("grow", 0, int64(i+1))
	}
	take("grow", 9*time.Second, 12)
	l.WaitRenewals()
	if _, used := redisView(t, r, "grow", p, t0.Add(9*time.Second)); used != 16+20 {
		t.Fatalf("Redis counts %d, want 36: 16 leased, then 20 more", used)
	}
	before := calls.n.Load()
	for i := int64(13); i <= 36; i++ {
		take("grow", 15*time.Second, i)
	}
	if n := calls.n.Load() - before; n != 0 {
		t.Fatalf("24 requests from the 24 in hand made %d script calls", n)
	}
	take("grow", 15*time.Second, 37) // the block used up: this one leases
	if n := calls.n.Load() - before; n != 1 {
		t.Fatalf("the request after the block ran out made %d script calls, want 1", n)
	}
}

// Renewals that fall due together go to Redis in pipelines, not a round trip each.
func TestLeased_RenewalsDueTogetherArePipelined(t *testing.T) {
	ctx := context.Background()
	l, r, calls := leasedStore(t, 10*time.Second)
	l.Prefetch = true
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000} // first block 16
	period := limit.MonthOf(t0)
	const tenants = 300
	key := func(i int) string { return "t" + strconv.Itoa(i) }
	for i := 0; i < tenants; i++ {
		admit(t, ctx, l, key(i), p, period, t0)
	}
	release := l.HoldRenewals()
	for i := 0; i < tenants; i++ { // the lease's last fifth: each queues a renewal
		admit(t, ctx, l, key(i), p, period, t0.Add(9*time.Second))
	}
	if n := calls.n.Load(); n != tenants {
		t.Fatalf("%d script calls before the renewals were sent, want %d", n, tenants)
	}
	release()
	l.WaitRenewals()
	if n, pipes := calls.n.Load(), calls.pipelines.Load(); n != 2*tenants || pipes != 3 {
		t.Fatalf("%d script calls in %d pipelines, want %d in 3 (batches of 128)", n, pipes, 2*tenants)
	}
	for _, i := range []int{0, 150, tenants - 1} {
		// 2 served: the block of 16 (14 left) is cut to 4, 10 go back.
		if _, used := redisView(t, r, key(i), p, t0.Add(9*time.Second)); used != 6 {
			t.Fatalf("Redis counts %d for %s, want 6: 16 leased, 10 handed back", used, key(i))
		}
		if d := admit(t, ctx, l, key(i), p, period, t0.Add(12*time.Second)); d.QuotaUsed != 3 {
			t.Fatalf("%s after the first lease's end: %+v; want quota used 3, from the renewed block", key(i), d)
		}
	}
	if n := calls.n.Load(); n != 2*tenants {
		t.Fatalf("requests from renewed blocks made %d script calls", n-2*tenants)
	}
}

// A request whose block ran out while its renewal lingers in the queue has it sent at once,
// and is admitted from it.
func TestLeased_RequestWaitingForALingeringRenewalSendsIt(t *testing.T) {
	l, _, calls := leasedStore(t, 10*time.Second)
	l.Prefetch = true
	l.LingerForever()
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000}
	period := limit.MonthOf(t0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 15; i++ { // 15 of the first block of 16
		admit(t, ctx, l, "acme", p, period, t0.Add(time.Duration(i)*time.Millisecond))
	}
	at := t0.Add(9 * time.Second) // the lease's last fifth
	admit(t, ctx, l, "acme", p, period, at)
	if n := calls.n.Load(); n != 1 {
		t.Fatalf("%d script calls before the renewal was sent, want 1", n)
	}
	// The block ran out with the renewal still queued: this request waits for it, which
	// would be forever without the nudge, and is answered from it (no lease of its own).
	d, err := l.Take(ctx, "acme", p, period, at)
	if err != nil || !d.Allowed {
		t.Fatalf("the request waiting for the renewal: %+v, %v", d, err)
	}
	l.WaitRenewals()
	if n := calls.n.Load(); n != 2 {
		t.Fatalf("%d script calls, want 2: the first lease and the renewal", n)
	}
}

// A plan change that lands while a renewal is on its way: the renewal's requests belong to the
// old plan's bucket and go back, so the quota counts only what was admitted and is held.
func TestLeased_RenewalOvertakenByAPlanChangeGoesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, r, calls := leasedStore(t, 10*time.Second)
	l.Prefetch = true
	l.LingerForever() // the renewal goes when the request under plan b waits for it
	a := limit.Policy{Name: "a", Interval: time.Millisecond, Burst: 16000, Quota: 100000}
	b := a
	b.Name = "b"
	period := limit.MonthOf(t0)
	for i := 0; i < 12; i++ { // 12 of the first block of 16
		admit(t, ctx, l, "acme", a, period, t0)
	}
	at := t0.Add(9 * time.Second)
	admit(t, ctx, l, "acme", a, period, at) // 3 left: renew to 26
	changed := make(chan error, 1)
	go func() { // waits for the renewal in flight, then leases under plan b
		d, err := l.Take(ctx, "acme", b, period, at)
		if err == nil && !d.Allowed {
			err = errors.New("refused")
		}
		changed <- err
	}()
	if err := <-changed; err != nil {
		t.Fatalf("the first request under plan b: %v", err)
	}
	l.WaitRenewals()
	if n := calls.n.Load(); n != 4 {
		t.Fatalf("%d script calls, want 4: the first lease, the renewal, its hand-back, plan b's lease", n)
	}
	// 13 admitted under a, 16 leased under b (1 admitted): the renewal's 23 went back, and
	// the 3 a's block still held went back with b's lease.
	if _, used := redisView(t, r, "acme", b, at); used != 13+16 {
		t.Fatalf("Redis counts %d, want 29", used)
	}
}

// Background renewals are bounded: with the queue full, a block in its lease's last fifth is
// not renewed ahead, and the request after the lease's end renews it itself.
func TestLeased_PrefetchBoundedFallsBackToTheRequestPath(t *testing.T) {
	ctx := context.Background()
	l, _, calls := leasedStore(t, 10*time.Second)
	l.Prefetch = true
	l.NoRenewalRoom()
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000}
	period := limit.MonthOf(t0)
	for _, at := range []time.Duration{0, 9 * time.Second} {
		admit(t, ctx, l, "acme", p, period, t0.Add(at))
	}
	l.WaitRenewals()
	if n := calls.n.Load(); n != 1 {
		t.Fatalf("%d script calls with no room to queue a renewal, want the first lease only", n)
	}
	admit(t, ctx, l, "acme", p, period, t0.Add(11*time.Second))
	if n := calls.n.Load(); n != 2 {
		t.Fatalf("%d script calls, want 2: the request after the lease's end leased", n)
	}
}

// A refusal is answered from memory until the bucket can admit again, with the right
// Retry-After; the first request after that asks Redis again.
func TestLeased_RefusalIsRememberedUntilRetry(t *testing.T) {
	ctx := context.Background()
	l, _, calls := leasedStore(t, time.Minute)
	p := limit.Policy{Name: "p", Interval: 100 * time.Millisecond, Burst: 2}
	period := limit.MonthOf(t0)
	for i := 0; i < 2; i++ {
		admit(t, ctx, l, "busy", p, period, t0)
	}
	before := calls.n.Load()
	for i, at := range []time.Duration{0, 40 * time.Millisecond, 99 * time.Millisecond} {
		d, err := l.Take(ctx, "busy", p, period, t0.Add(at))
		if err != nil || d.Allowed || d.Reason != limit.ReasonRate || d.RetryAfter != 100*time.Millisecond-at || d.Remaining != 0 {
			t.Fatalf("refusal %d at +%v: %+v, %v; want retry after %v", i, at, d, err, 100*time.Millisecond-at)
		}
	}
	if n := calls.n.Load() - before; n != 1 {
		t.Fatalf("three refusals made %d script calls, want 1", n)
	}
	admit(t, ctx, l, "busy", p, period, t0.Add(100*time.Millisecond))
	if n := calls.n.Load() - before; n != 2 {
		t.Fatalf("the request after the retry time made %d script calls in all, want 2", n)
	}
}

// A quota refusal is rechecked after a second: another instance handing back its unused
// requests makes room.
func TestLeased_QuotaRefusalRecheckedAfterHandBack(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.RedisClient(t), testenv.KeyPrefix(t)
	one := limit.NewLeased(&limit.Redis{Client: client, Prefix: prefix}, time.Second)
	two := limit.NewLeased(&limit.Redis{Client: client, Prefix: prefix}, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 1000, Quota: 10}
	period := limit.MonthOf(t0)
	// one leases 16, which the quota caps at 10: 10 counted, 6 admitted.
	for i := 0; i < 6; i++ {
		admit(t, ctx, one, "shared", p, period, t0)
	}
	d, _ := two.Take(ctx, "shared", p, period, t0)
	if d.Allowed || d.Reason != limit.ReasonQuota {
		t.Fatalf("two with the quota leased away: %+v, want a quota refusal", d)
	}
	if err := one.Release(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if d, _ := two.Take(ctx, "shared", p, period, t0.Add(500*time.Millisecond)); d.Allowed {
		t.Fatalf("two within a second of its refusal: %+v, want the remembered refusal", d)
	}
	if d := admit(t, ctx, two, "shared", p, period, t0.Add(time.Second)); d.QuotaUsed != 7 {
		t.Fatalf("two a second later: %+v, want admitted with 7 used", d)
	}
}

// A plan change within the quota period hands the old block's requests back to the quota.
func TestLeased_PlanChangeHandsBackQuota(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, time.Minute)
	free := limit.Policy{Name: "free", Interval: time.Hour, Burst: 160, Quota: 1000}
	pro := limit.Policy{Name: "pro", Interval: time.Minute, Burst: 1600, Quota: 1000}
	period := limit.MonthOf(t0)
	for i := 0; i < 2; i++ { // a block of 10: 10 counted, 2 admitted
		admit(t, ctx, l, "upgrader", free, period, t0)
	}
	d, err := l.Take(ctx, "upgrader", pro, period, t0)
	if err != nil || !d.Allowed || d.QuotaUsed != 3 {
		t.Fatalf("first request on pro: %+v, %v; want quota used 3", d, err)
	}
	if _, used := redisView(t, r, "upgrader", pro, t0); used != 2+16 {
		t.Fatalf("Redis counts %d, want 18: the 2 admitted on free (its 8 unused went back) and pro's first block of 16", used)
	}
}

// When Redis fails mid-lease, whether the hand-back happened is unknown: the leftovers are
// dropped, never handed back twice.
func TestLeased_FailedLeaseDropsLeftovers(t *testing.T) {
	ctx := context.Background()
	prefix := testenv.KeyPrefix(t)
	good := &limit.Redis{Client: testenv.RedisClient(t), Prefix: prefix}
	l := limit.NewLeased(good, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 160, Quota: 1000}
	period := limit.MonthOf(t0)
	for i := 0; i < 2; i++ { // 10 counted, 8 in hand
		admit(t, ctx, l, "acme", p, period, t0)
	}
	dead := deadRedis(t)
	l.Redis = &limit.Redis{Client: dead, Prefix: prefix}
	if _, err := l.Take(ctx, "acme", p, period, t0.Add(2*time.Second)); err == nil {
		t.Fatal("a lease against a dead Redis succeeded")
	}
	l.Redis = good
	if err := l.Release(ctx, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, used := redisView(t, good, "acme", p, t0); used != 10 {
		t.Fatalf("Redis counts %d, want 10: leftovers of a failed lease are not handed back", used)
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

// Whatever the interleaving of requests, refusals, expiries and sweeps on two instances, once
// both have released their blocks Redis's quota count is exactly the number of requests
// admitted: every unused request went back once, none twice.
// With MaxLeaseTTL, leases of quiet keys grow long and still go back exactly once.
func TestLeased_QuotaCountsExactlyWhatWasAdmitted(t *testing.T) {
	t.Run("fixed leases", func(t *testing.T) { quotaCountsExactly(t, 0) })
	t.Run("leases up to 1s", func(t *testing.T) { quotaCountsExactly(t, time.Second) })
}

func quotaCountsExactly(t *testing.T, maxTTL time.Duration) {
	ctx := context.Background()
	client, prefix := testenv.RedisClient(t), testenv.KeyPrefix(t)
	r := &limit.Redis{Client: client, Prefix: prefix}
	instances := []*limit.Leased{limit.NewLeased(r, 50*time.Millisecond), limit.NewLeased(r, 50*time.Millisecond)}
	for _, l := range instances {
		l.MaxLeaseTTL = maxTTL
	}
	// 1,000 requests/s with a burst of 200 (blocks of at most 12), driven at about 5,000/s of
	// the fake clock: many are refused.
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 200, Quota: 1_000_000}
	period := limit.MonthOf(t0)
	keys := []string{"k0", "k1", "k2"}
	var ticks atomic.Int64 // the fake clock, in 200 µs steps
	now := func() time.Time { return t0.Add(time.Duration(ticks.Add(1)) * 200 * time.Microsecond) }
	clock := func() time.Time { return t0.Add(time.Duration(ticks.Load()) * 200 * time.Microsecond) }
	var admitted [3]atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 400; i++ {
				k := (g + i) % len(keys)
				d, err := instances[(g+i)%2].Take(ctx, keys[k], p, period, now())
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted[k].Add(1)
				}
			}
		}()
	}
	stop := make(chan struct{})
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, l := range instances {
				if err := l.Sweep(ctx, clock()); err != nil {
					t.Error(err)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(stop)
	<-swept
	end := now()
	for _, l := range instances {
		if err := l.Release(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for k, key := range keys {
		_, used := redisView(t, r, key, p, end)
		if used != admitted[k].Load() {
			t.Errorf("%s: Redis counts %d, %d were admitted", key, used, admitted[k].Load())
		}
		total += admitted[k].Load()
	}
	if total == 0 || total == 8*400 {
		t.Fatalf("%d of %d admitted: the test wants both admissions and refusals", total, 8*400)
	}
	t.Logf("%d of %d requests admitted", total, 8*400)
}

// A background renewal that fails leaves the block serving what it still holds (the excess it
// meant to hand back is dropped, never handed back twice), and the next renewal can start.
func TestLeased_FailedRenewalKeepsTheBlock(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, 10*time.Second)
	l.Prefetch = true
	good := l.Redis
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000} // first block 16
	period := limit.MonthOf(t0)
	admit(t, ctx, l, "acme", p, period, t0)
	l.Redis = &limit.Redis{Client: deadRedis(t), Prefix: good.Prefix}
	// In the lease's last fifth: a renewal to twice the 2 served starts, and fails.
	admit(t, ctx, l, "acme", p, period, t0.Add(9*time.Second))
	l.WaitRenewals()
	l.Redis = good
	if _, used := redisView(t, r, "acme", p, t0); used != 16 {
		t.Fatalf("Redis counts %d, want 16: the failed renewal handed nothing back", used)
	}
	// The block, trimmed to 4 by the failed renewal, still serves; the 10 it meant to hand back
	// stay counted (16 used, 3 in hand: 13). Being in its lease's last fifth, this request
	// starts the next renewal: to twice the 3 served, 3 more from Redis.
	if d := admit(t, ctx, l, "acme", p, period, t0.Add(9500*time.Millisecond)); d.QuotaUsed != 13 {
		t.Fatalf("third request after the failed renewal: %+v; want quota used 13", d)
	}
	l.WaitRenewals()
	if _, used := redisView(t, r, "acme", p, t0); used != 16+3 {
		t.Fatalf("Redis counts %d, want 19: the renewal after the failed one topped the block up", used)
	}
}

// Hand-backs and renewals go in pipelines of EVALSHA; after a SCRIPT FLUSH each call falls back
// to EVAL instead of failing (and leaving the requests counted).
func TestLeased_PipelinesRecoverWhenTheScriptCacheIsFlushed(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000} // first block 16
	period := limit.MonthOf(t0)
	admit(t, ctx, l, "acme", p, period, t0)
	if err := r.Client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Sweep(ctx, t0.Add(2*time.Second)); err != nil {
		t.Fatalf("sweep after SCRIPT FLUSH: %v", err)
	}
	if _, used := redisView(t, r, "acme", p, t0.Add(2*time.Second)); used != 1 {
		t.Fatalf("Redis counts %d, want the 1 admitted: the 15 unused went back", used)
	}
}

// Sweep forgets a tenant quiet for a minute; a request that looked its state up just before
// must not lease into the forgotten state, whose block no sweep would ever hand back.
func TestLeased_RequestRacingSweepUsesTheLiveState(t *testing.T) {
	ctx := context.Background()
	l, _, _ := leasedStore(t, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000}
	admit(t, ctx, l, "acme", p, limit.MonthOf(t0), t0)
	live, err := l.SweptWhileLookedUp(ctx, "acme", t0.Add(2*time.Minute))
	if err != nil || !live {
		t.Fatalf("after the sweep the request holds the forgotten state (live %v, %v)", live, err)
	}
}

// A sweep against a Redis that is down reports the error and drops the leftovers: whether they
// reached Redis is unknown, so they are never handed back a second time.
func TestLeased_SweepWithRedisDown(t *testing.T) {
	ctx := context.Background()
	l, r, _ := leasedStore(t, time.Second)
	good := l.Redis
	p := limit.Policy{Name: "p", Interval: time.Hour, Burst: 160, Quota: 1000} // a block of 10
	period := limit.MonthOf(t0)
	admit(t, ctx, l, "acme", p, period, t0)
	l.Redis = &limit.Redis{Client: deadRedis(t), Prefix: good.Prefix}
	if err := l.Sweep(ctx, t0.Add(2*time.Second)); err == nil {
		t.Fatal("a sweep against a dead Redis reported no error")
	}
	l.Redis = good
	if err := l.Sweep(ctx, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, used := redisView(t, r, "acme", p, t0); used != 10 {
		t.Fatalf("Redis counts %d, want 10: the leftovers of the failed sweep stay counted", used)
	}
}
