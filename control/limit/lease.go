package limit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Leased admits requests from blocks of the tenant's bucket leased from Redis, so most
// decisions cost no round trip: an instance takes up to BlockSize(p) requests at once (they
// count in Redis at once, for rate and quota), then admits them from memory. A block not
// used within LeaseTTL is dropped.
//
// Accuracy: a request is admitted only from a block Redis granted, so across a fleet the
// admitted requests never exceed what the bucket and quota allow, except that tokens granted
// earlier and spent later can add at most one block per instance to a burst. Blocks dropped
// unused were counted without being used: at most one block per instance and lease is lost.
// Plans with a burst under 32 lease one request at a time, which is exact.
type Leased struct {
	Redis    *Redis
	LeaseTTL time.Duration // default 1s

	seed   maphash.Seed
	shards [localShards]leaseShard
}

type leaseShard struct {
	mu   sync.Mutex
	keys map[string]*leaseState
}

// leaseState is one tenant's block on this instance. Its mutex is held across a lease call,
// so concurrent requests of a tenant wait for one lease instead of each asking Redis.
type leaseState struct {
	mu          sync.Mutex
	left        int64 // requests still admissible from the block
	expires     int64 // unix ns
	tat         int64 // the Redis TAT after our last lease
	used        int64 // the Redis quota count after our last lease
	periodStart int64
	plan        string // blocks are of one plan's bucket
}

// NewLeased builds a leasing store over r.
func NewLeased(r *Redis, ttl time.Duration) *Leased {
	if ttl <= 0 {
		ttl = time.Second
	}
	l := &Leased{Redis: r, LeaseTTL: ttl, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].keys = make(map[string]*leaseState)
	}
	return l
}

// BlockSize is how many requests one lease takes for p: a sixteenth of the burst, at most
// 1024, at least 1.
func BlockSize(p Policy) int64 { return min(max(p.Burst/16, 1), 1024) }

func (l *Leased) state(key string) *leaseState {
	s := &l.shards[maphash.String(l.seed, key)%localShards]
	s.mu.Lock()
	st := s.keys[key]
	if st == nil {
		st = &leaseState{}
		s.keys[key] = st
	}
	s.mu.Unlock()
	return st
}

// Take implements Store.
func (l *Leased) Take(ctx context.Context, key string, p Policy, period Period, now time.Time) (Decision, error) {
	ns := now.UnixNano()
	st := l.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	if ps := period.Start.UnixNano(); st.periodStart != ps || st.plan != p.Name {
		st.periodStart, st.plan, st.left = ps, p.Name, 0
	}
	_, _, p = micro(p, now) // the interval as the script sees it
	if st.left > 0 && ns < st.expires {
		st.left--
		return st.decision(p, period, ns), nil
	}
	granted, v, used, p, err := l.Redis.take(ctx, key, p, period, now, BlockSize(p))
	if err != nil {
		return Decision{}, err
	}
	v.allowed = granted > 0
	if granted == 0 {
		st.left = 0
		return decision(p, period, ns, v.tat, v, used), nil
	}
	st.left, st.expires, st.tat, st.used = granted-1, ns+int64(l.LeaseTTL), v.tat, used
	return st.decision(p, period, ns), nil
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

// Sweep forgets tenants whose block expired long ago, bounding memory to recent tenants.
func (l *Leased) Sweep(now time.Time) {
	ns := now.UnixNano() - int64(time.Minute)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, st := range s.keys {
			if st.mu.TryLock() {
				if st.expires < ns {
					delete(s.keys, k)
				}
				st.mu.Unlock()
			}
		}
		s.mu.Unlock()
	}
}
