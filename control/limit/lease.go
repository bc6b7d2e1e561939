package limit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseScript grants up to `want` requests of a tenant's bucket (and quota) at once: the
// GCRA arithmetic of takeScript (in microseconds, like it) for n requests. The instance then
// admits them from memory.
//
// KEYS: rate key, quota key. ARGV: now, interval, burst, quota (0: none), quota key TTL in
// seconds, want. Returns {granted, reason, tat, retry_after, used}.
var leaseScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local want = tonumber(ARGV[6])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local used = 0
if quota > 0 then
	used = tonumber(redis.call('GET', KEYS[2]) or '0')
	if used >= quota then
		return {0, 2, string.format('%.0f', tat), 0, used}
	end
	if quota - used < want then want = quota - used end
end
local avail = math.floor((now - tat + burst * interval) / interval)
if avail < want then want = avail end
if want <= 0 then
	return {0, 1, string.format('%.0f', tat), string.format('%.0f', tat + interval - burst * interval - now), used}
end
local newtat = tat + want * interval
redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', math.ceil((newtat - now) / 1000) + 1000)
if quota > 0 then
	used = redis.call('INCRBY', KEYS[2], want)
	if used == want then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5])) end
end
return {want, 0, string.format('%.0f', newtat), 0, used}
`)

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
	granted, v, used, err := l.lease(ctx, key, p, period, now, BlockSize(p))
	if err != nil {
		return Decision{}, err
	}
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

func (l *Leased) lease(ctx context.Context, key string, p Policy, period Period, now time.Time, want int64) (int64, verdict, int64, error) {
	rateKey, quotaKey := l.Redis.Keys(key, p, period)
	nowUS, intervalUS, _ := micro(p, now)
	ttl := int64(period.End.Sub(now)/time.Second) + 86400
	res, err := leaseScript.Run(ctx, l.Redis.Client, []string{rateKey, quotaKey},
		nowUS, intervalUS, p.Burst, p.Quota, ttl, want).Slice()
	if err != nil {
		return 0, verdict{}, 0, err
	}
	granted, v, used, err := reply(res)
	v.allowed = granted > 0
	return granted, v, used, err
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
