package limit

import (
	"context"
	"hash/maphash"
	"time"
)

// WaitRenewals waits for the background renewals queued or in flight.
func (l *Leased) WaitRenewals() { l.renewals.wait() }

// NoRenewalRoom leaves no room in the queue for a background renewal.
func (l *Leased) NoRenewalRoom() { l.renewals.maxQueued = 0 }

// HoldRenewals keeps renewals queued, unsent, until the returned func is called.
func (l *Leased) HoldRenewals() (release func()) {
	q := &l.renewals
	q.mu.Lock()
	held := !q.draining
	q.draining = true // no goroutine starts: push sees one running
	q.mu.Unlock()
	return func() {
		if held {
			q.drain()
		}
	}
}

// LingerForever keeps queued renewals waiting until a request needs one.
func (l *Leased) LingerForever() { l.renewals.linger = time.Hour }

// SweptWhileLookedUp reports whether a request that looked key's state up just before Sweep
// forgot it (at sweepAt) goes on with the state that replaced it.
func (l *Leased) SweptWhileLookedUp(ctx context.Context, key string, sweepAt time.Time) (bool, error) {
	looked := l.state(key)
	if err := l.Sweep(ctx, sweepAt); err != nil {
		return false, err
	}
	st := l.lockLive(key, looked)
	defer st.mu.Unlock()
	s := &l.shards[maphash.String(l.seed, key)%localShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	return st != looked && s.keys.m[key] == st, nil
}

// Tracked counts the tenants whose lease state this instance keeps.
func (l *Leased) Tracked() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.keys.m)
		s.mu.Unlock()
	}
	return n
}
