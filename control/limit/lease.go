package limit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Leased admits requests from blocks of the tenant's bucket leased from Redis, so most
// decisions cost no round trip: an instance takes several requests at once (they count in
// Redis at once, for rate and quota), then admits them from memory. What a block leaves
// unused when its lease ends is handed back to Redis, with the next lease or by Sweep.
//
// Blocks follow demand: the first is 16 requests; a block used up within its lease makes the
// next four times larger, a lease that ends with requests left makes the next twice what was
// used, never more than BlockSize(p). With Prefetch, a block still in use in the last fifth of
// its lease is renewed in the background, before the request path needs it: brought to twice
// what it served (topped up, or its excess handed back) and its lease extended, so a tenant
// with steady traffic does not wait for Redis when its lease ends. (A block used up still
// waits for the next: leasing ahead of a burst would hold requests no one may need.) A
// refusal is remembered until the bucket can admit again (at most a second for the quota), so
// a tenant over its limit costs no round trips either.
//
// Leases follow demand too: a busy tenant's last LeaseTTL, a quiet tenant's up to MaxLeaseTTL
// (see leaseLength), so a tenant seen once every few seconds on an instance costs a script per
// many requests rather than one per lease. A long lease's block is never smaller than the
// first (16 requests): what a quiet tenant may ask for over a minute is not what it asked for
// in the last second.
//
// Accuracy: a request is admitted only from a block Redis granted, so across a fleet the
// admitted requests never exceed what the bucket and quota allow, except that tokens granted
// earlier and spent later can add at most one block per instance to a burst. Unused requests
// go back, so the quota counts what was admitted; only an instance that dies holding a block
// loses it (at most one block per instance). Plans with a burst under 32 lease one request at
// a time, which is exact.
type Leased struct {
	Redis    *Redis
	LeaseTTL time.Duration // the shortest lease, a busy tenant's; default 1s
	// MaxLeaseTTL is the longest lease, a quiet tenant's; at most LeaseTTL (the default) makes
	// every lease LeaseTTL long.
	MaxLeaseTTL time.Duration
	// Prefetch renews blocks in the background before they run out or expire (NewLeased
	// turns it on). Without it every renewal is made by the request that needs it.
	Prefetch bool

	seed     maphash.Seed
	shards   [localShards]leaseShard
	renewals renewQueue // background renewals (renew.go)
}

type leaseShard struct {
	mu   sync.Mutex
	keys keyMap[*leaseState]
}

// leaseState is one tenant's block on this instance. Its mutex is held across a lease call,
// so concurrent requests of a tenant wait for one lease instead of each asking Redis.
type leaseState struct {
	mu      sync.Mutex
	left    int64 // requests still admissible from the block
	granted int64 // the size of the current block
	served  int64 // requests admitted from it: served < granted once it ends means unused
	start   int64 // when it was leased or last renewed (unix ns): served counts from then
	ttl     int64 // its lease's length (ns)
	expires int64 // unix ns
	tat     int64 // the Redis TAT after our last lease
	used    int64 // the Redis quota count after our last lease
	policy  Policy
	period  Period // blocks are of one plan's bucket and one quota period

	// A refusal from Redis, answered locally until refusedUntil (unix ns).
	refusedUntil int64
	refusal      verdict

	// renewing is closed when the background renewal in flight ends; nil when none is.
	renewing chan struct{}
	// dead is set when Sweep forgets the state: a request that looked it up just before
	// must look again, or what it leases would never be swept.
	dead bool
}

// NewLeased builds a leasing store over r.
func NewLeased(r *Redis, ttl time.Duration) *Leased {
	if ttl <= 0 {
		ttl = time.Second
	}
	l := &Leased{Redis: r, LeaseTTL: ttl, Prefetch: true, seed: maphash.MakeSeed()}
	l.renewals.init(l.renewAll)
	for i := range l.shards {
		l.shards[i].keys = newKeyMap[*leaseState]()
	}
	return l
}

// BlockSize is the most requests one lease takes for p: a sixteenth of the burst, at most
// 1024, at least 1.
func BlockSize(p Policy) int64 { return min(max(p.Burst/16, 1), 1024) }

// firstBlock is the size of a tenant's first lease on an instance (at most BlockSize): big
// enough that a busy tenant reaches full blocks in three leases, small enough to be handed back
// quickly.
const firstBlock = 16

// quotaRecheck bounds how long a quota refusal is answered locally: another instance handing
// back its unused requests can make room before the period ends.
const quotaRecheck = int64(time.Second)

func (l *Leased) state(key string) *leaseState {
	s := &l.shards[maphash.String(l.seed, key)%localShards]
	s.mu.Lock()
	st := s.keys.m[key]
	if st == nil {
		st = &leaseState{}
		s.keys.put(key, st)
	}
	s.mu.Unlock()
	return st
}

// lockLive locks st, key's state as looked up, or the state that replaced it if Sweep forgot
// it in between.
func (l *Leased) lockLive(key string, st *leaseState) *leaseState {
	for st.mu.Lock(); st.dead; st.mu.Lock() {
		st.mu.Unlock()
		st = l.state(key)
	}
	return st
}

// Take implements Store.
func (l *Leased) Take(ctx context.Context, key string, p Policy, period Period, now time.Time) (Decision, error) {
	ns := now.UnixNano()
	st := l.lockLive(key, l.state(key))
	defer st.mu.Unlock()
	_, _, p = micro(p, now) // the interval as the script sees it
	var backQuota int64
	if st.policy.Name != p.Name || st.period.Start != period.Start {
		// Another plan's bucket, or a new quota period: the block in hand is of no use. Its
		// requests still count against this period's quota if only the plan changed.
		if st.period.Start == period.Start {
			backQuota = st.left
		}
		st.left, st.granted, st.served, st.refusedUntil = 0, 0, 0, 0
	}
	st.policy, st.period = p, period
	if st.left > 0 && ns < st.expires {
		return l.admit(key, st, p, period, now), nil
	}
	if ns < st.refusedUntil {
		v := st.refusal
		if v.reason == ReasonRate {
			v.retryAfter = st.refusedUntil - ns
		}
		return decision(p, period, ns, v.tat, v, st.used), nil
	}
	if done := st.renewing; done != nil {
		// A renewal is on its way: wait for it rather than lease a second block, and have it
		// sent now if it is still lingering in the queue.
		l.renewals.hurry()
		st.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		st.mu.Lock()
		if err := ctx.Err(); err != nil {
			return Decision{}, err
		}
		if st.left > 0 && ns < st.expires && st.policy.Name == p.Name && st.period.Start == period.Start {
			return l.admit(key, st, p, period, now), nil
		}
	}
	back := st.left // an expired block's leftovers go back with the next lease
	ttl := l.leaseLength(st, p, ns)
	want := st.nextBlock(p, ttl > int64(l.LeaseTTL))
	st.left = 0 // if the call fails, whether the hand-back happened is unknown: never repeat it
	granted, v, used, p, err := l.Redis.take(ctx, key, p, period, now, want, back, back+backQuota)
	if err != nil {
		st.granted = 0
		return Decision{}, err
	}
	st.tat, st.used = v.tat, used
	if granted == 0 {
		st.granted = 0
		st.refusal, st.refusedUntil = v, ns+quotaRecheck
		if v.reason == ReasonRate {
			st.refusedUntil = ns + v.retryAfter
		}
		return decision(p, period, ns, v.tat, v, used), nil
	}
	st.granted, st.left, st.served = granted, granted-1, 1
	st.start, st.ttl, st.expires = ns, ttl, ns+ttl
	return st.decision(p, period, ns), nil
}

// admit takes one request from the block, and starts a renewal when its lease nears its end.
// Called with st.mu held.
func (l *Leased) admit(key string, st *leaseState, p Policy, period Period, now time.Time) Decision {
	ns := now.UnixNano()
	st.left--
	st.served++
	d := st.decision(p, period, ns)
	if l.Prefetch && st.renewing == nil && ns >= st.expires-st.ttl/5 {
		l.renew(key, st, p, period, now)
	}
	return d
}

// nextBlock sizes the next lease from how the last one went; a long lease's is at least the
// first block.
func (st *leaseState) nextBlock(p Policy, long bool) int64 {
	var n int64
	switch {
	case st.granted == 0: // the first lease, or the last one was refused or failed
		n = firstBlock
	case st.served >= st.granted: // used up within the lease
		n = 4 * st.granted
	default: // the lease ended first (its leftovers go back now, or Sweep took them)
		n = 2 * st.served
	}
	if long {
		n = max(n, firstBlock)
	}
	return min(max(n, 1), BlockSize(p))
}

// leaseLength is how long st's next block may be used (ns): as long as the plan's largest
// block would last twice over at the rate the tenant was served at since its last lease or
// renewal, within [LeaseTTL, MaxLeaseTTL]. A tenant busy enough to need full blocks keeps
// short leases (its figures stay fresh and a block it stops using goes back soon); a quiet one
// keeps a small block for up to MaxLeaseTTL. Without a rate to go by (a first lease, or one
// after a refusal or a failure) the lease is short.
func (l *Leased) leaseLength(st *leaseState, p Policy, ns int64) int64 {
	short, long := int64(l.LeaseTTL), int64(l.MaxLeaseTTL)
	if long <= short || st.granted == 0 || st.served == 0 {
		return short
	}
	elapsed := min(max(ns-st.start, 1), long) // past long, the answer is long anyway
	return min(max(BlockSize(p)*elapsed/(2*st.served), short), long)
}

// decision reports an admission from the block: the figures are Redis's as of the last lease,
// with the requests still in hand counted as not yet spent.
func (st *leaseState) decision(p Policy, period Period, now int64) Decision {
	tat := st.tat - st.left*int64(p.Interval)
	return decision(p, period, now, tat, verdict{allowed: true, tat: tat}, st.used-st.left)
}

// Peek implements Store: Redis's view, which counts blocks in hand as spent.
func (l *Leased) Peek(ctx context.Context, key string, p Policy, period Period, now time.Time) (Decision, error) {
	return l.Redis.Peek(ctx, key, p, period, now)
}

// remainder is what a block left unused, on its way back to Redis, as of now.
type remainder struct {
	key    string
	policy Policy
	period Period
	now    time.Time
	left   int64
}

// Sweep hands back to Redis what expired blocks left unused, and forgets tenants whose lease
// ended a LeaseTTL ago or more (their leftovers went back by then), bounding memory to the
// tenants of the last minute or so: a tenant a gateway saw once (most of a long tail) costs
// nothing here soon after, neither memory nor the collector's time. Run it about once a lease
// TTL.
func (l *Leased) Sweep(ctx context.Context, now time.Time) error {
	return l.release(ctx, now, false)
}

// Release hands back every block in hand, expired or not, once the renewals in flight have
// ended (or ctx has): for an instance that stops.
func (l *Leased) Release(ctx context.Context, now time.Time) error {
	settled := make(chan struct{})
	go func() { l.renewals.wait(); close(settled) }()
	select {
	case <-settled:
	case <-ctx.Done():
	}
	return l.release(ctx, now, true)
}

func (l *Leased) release(ctx context.Context, now time.Time, all bool) error {
	ns := now.UnixNano()
	forget := ns - int64(l.LeaseTTL)
	var back []remainder
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, st := range s.keys.m {
			if !st.mu.TryLock() {
				continue // in a lease call: in use
			}
			if st.left > 0 && (all || st.expires <= ns) && (all || st.renewing == nil) {
				back = append(back, remainder{key: k, policy: st.policy, period: st.period, now: now, left: st.left})
				st.left = 0 // served < granted: the next lease is sized by what this one served
			}
			if st.expires < forget && st.refusedUntil < ns && st.renewing == nil {
				delete(s.keys.m, k)
				st.dead = true
			}
			st.mu.Unlock()
		}
		s.keys.compact()
		s.mu.Unlock()
	}
	return l.handBack(ctx, back)
}

// handBack returns unused requests to Redis, pipelined.
func (l *Leased) handBack(ctx context.Context, back []remainder) error {
	calls := make([]scriptCall, len(back))
	for i, b := range back {
		// The quota period of the block: the quota key must be the one it was counted in.
		calls[i] = l.Redis.call(b.key, b.policy, b.period, b.now, 0, b.left, b.left)
	}
	var firstErr error
	l.Redis.pipelined(ctx, calls, func(_ int, _ int64, _ verdict, _ int64, err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	})
	return firstErr
}
