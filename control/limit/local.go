package limit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

const localShards = 64

// Local keeps limiter state in process memory: exact for one instance, and the fallback when
// Redis is unreachable. Its zero value is not usable; call NewLocal.
type Local struct {
	seed   maphash.Seed
	shards [localShards]localShard
}

type localShard struct {
	mu   sync.Mutex
	keys keyMap[*localState]
}

type localState struct {
	tat         int64
	periodStart int64
	used        int64
	plan        string // the bucket is the plan's: a plan change starts a full one
}

// NewLocal returns an empty in-process store.
func NewLocal() *Local {
	l := &Local{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].keys = newKeyMap[*localState]()
	}
	return l
}

func (l *Local) shard(key string) *localShard {
	return &l.shards[maphash.String(l.seed, key)%localShards]
}

// Take implements Store.
func (l *Local) Take(_ context.Context, key string, p Policy, period Period, now time.Time) (Decision, error) {
	return l.do(key, p, period, now, true), nil
}

// Peek implements Store.
func (l *Local) Peek(_ context.Context, key string, p Policy, period Period, now time.Time) (Decision, error) {
	return l.do(key, p, period, now, false), nil
}

func (l *Local) do(key string, p Policy, period Period, now time.Time, take bool) Decision {
	ns := now.UnixNano()
	s := l.shard(key)
	s.mu.Lock()
	st := s.keys.m[key]
	if st == nil {
		if !take {
			s.mu.Unlock()
			return decision(p, period, ns, ns, verdict{allowed: true}, 0)
		}
		st = &localState{}
		s.keys.put(key, st)
	}
	if ps := period.Start.UnixNano(); st.periodStart != ps {
		st.periodStart, st.used = ps, 0
	}
	if st.plan != p.Name {
		st.plan, st.tat = p.Name, 0
	}
	if !take {
		tat, used := st.tat, st.used
		s.mu.Unlock()
		return decision(p, period, ns, tat, verdict{allowed: true}, used)
	}
	v := gcra(st.tat, ns, p, st.used)
	if v.allowed {
		st.tat = v.tat
		st.used++
	}
	used := st.used
	s.mu.Unlock()
	return decision(p, period, ns, v.tat, v, used)
}

// Sweep forgets keys idle long enough that their bucket is full and their quota period over,
// bounding memory to the tenants seen recently.
func (l *Local) Sweep(now time.Time) {
	ns := now.UnixNano()
	current := MonthOf(now).Start.UnixNano()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, st := range s.keys.m {
			if st.tat < ns && st.periodStart < current {
				delete(s.keys.m, k)
			}
		}
		s.keys.compact()
		s.mu.Unlock()
	}
}
