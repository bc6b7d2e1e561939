package limit

import (
	"context"
	"sync"
	"time"
)

// renewQueue holds background renewals for one goroutine that sends them to Redis in
// pipelines: leases that end together (all of a busy instance's tenants after a restart) cost
// a round trip per batch instead of one each. The lease algorithm calls push, hurry and wait;
// what a batch does to the blocks is send's business.
type renewQueue struct {
	send    func(batch []*renewal) // sends a batch and brings its answers to the blocks
	pending sync.WaitGroup         // renewals queued or in flight

	mu        sync.Mutex
	waiting   []*renewal
	draining  bool          // a goroutine is sending the queue
	urgent    chan struct{} // a request waits for a queued renewal: send without lingering
	linger    time.Duration // renewLinger
	maxQueued int           // when the queue is this long, the request path renews
}

// maxQueued bounds the renewals waiting: with the queue full, a block is renewed by the
// request that needs it, as without Prefetch. It also bounds a request's wait for a renewal
// queued: a few pipelines, each bounded by the client's timeouts.
const maxQueued = 1024

// renewBatch is the most renewals sent in one pipeline, and renewLinger how long the first
// renewal of a batch waits for others: a renewal is due a fifth of a lease before it is
// needed, so a few milliseconds cost nothing, and tenants' renewals trickle in otherwise (each
// is queued by its tenant's first request in the last fifth) and would go one per round trip.
// A request that needs a renewal still lingering (its block ran out) has it sent at once.
const (
	renewBatch  = 128
	renewLinger = 20 * time.Millisecond
)

// renewTimeout is a ceiling on a background renewal's call; the client's own timeouts
// (redis_timeout on every dial, read, write and pool wait) bound it well before, which also
// bounds how long a request waits for a renewal in flight.
const renewTimeout = 2 * time.Second

// renewal is a background renewal of one tenant's block: want more requests, excess back.
type renewal struct {
	key          string
	st           *leaseState
	policy       Policy
	period       Period
	now          time.Time
	want, excess int64
	ttl          int64         // the renewed lease's length (ns)
	done         chan struct{} // the block's renewing
}

// init readies q to hand its batches to send.
func (q *renewQueue) init(send func(batch []*renewal)) {
	q.send, q.urgent, q.linger, q.maxQueued = send, make(chan struct{}, 1), renewLinger, maxQueued
}

// push queues r, starting a goroutine to send the queue if none is; with the queue full it
// does nothing and reports false.
func (q *renewQueue) push(r *renewal) bool {
	q.mu.Lock()
	if len(q.waiting) >= q.maxQueued {
		q.mu.Unlock()
		return false
	}
	q.waiting = append(q.waiting, r)
	q.pending.Add(1)
	start := !q.draining
	q.draining = true
	q.mu.Unlock()
	if start {
		go q.drain()
	}
	return true
}

// hurry has the renewals lingering in the queue sent now: a request waits for one.
func (q *renewQueue) hurry() {
	select {
	case q.urgent <- struct{}{}:
	default:
	}
}

// wait waits for the renewals queued or in flight.
func (q *renewQueue) wait() { q.pending.Wait() }

// drain sends the queued renewals, renewBatch to a pipeline, each batch after lingering for
// more, until the queue is empty.
func (q *renewQueue) drain() {
	linger := time.NewTimer(q.linger)
	defer linger.Stop()
	for {
		select {
		case <-linger.C:
		case <-q.urgent:
		}
		q.mu.Lock()
		n := min(len(q.waiting), renewBatch)
		batch := make([]*renewal, n)
		copy(batch, q.waiting)
		q.waiting = append(q.waiting[:0], q.waiting[n:]...)
		more := len(q.waiting) > 0
		q.draining = more // when not, the next renewal queued starts a goroutine of its own
		q.mu.Unlock()
		q.send(batch)
		q.pending.Add(-len(batch))
		if !more {
			return
		}
		linger.Reset(q.linger)
	}
}

// renew queues a background renewal that brings the block to twice what it served in this
// lease (topping it up, or handing the excess back) and extends its lease; with the queue full
// it does nothing. Called with st.mu held.
func (l *Leased) renew(key string, st *leaseState, p Policy, period Period, now time.Time) {
	ttl := l.leaseLength(st, p, now.UnixNano())
	target := 2 * st.served
	if ttl > int64(l.LeaseTTL) {
		target = max(target, firstBlock) // as nextBlock: a long lease's block is at least the first
	}
	target = min(max(target, 1), BlockSize(p))
	r := &renewal{key: key, st: st, policy: p, period: period, now: now, ttl: ttl,
		want: max(target-st.left, 0), excess: max(st.left-target, 0), done: make(chan struct{})}
	if !l.renewals.push(r) {
		return
	}
	st.left -= r.excess // handed back: no longer admissible here
	st.renewing = r.done
}

// renewAll sends a batch of renewals in one pipeline and brings their answers to the blocks.
func (l *Leased) renewAll(batch []*renewal) {
	calls := make([]scriptCall, len(batch))
	for i, r := range batch {
		calls[i] = l.Redis.call(r.key, r.policy, r.period, r.now, r.want, r.excess, r.excess)
	}
	var stale []remainder
	ctx, cancel := context.WithTimeout(context.Background(), renewTimeout)
	l.Redis.pipelined(ctx, calls, func(i int, granted int64, v verdict, used int64, err error) {
		r := batch[i]
		st := r.st
		st.mu.Lock()
		st.renewing = nil
		switch {
		case err != nil:
			// The excess may or may not have gone back: it is not admissible here either way.
		case st.policy.Name != r.policy.Name || st.period.Start != r.period.Start:
			// The plan or the period changed meanwhile: the new requests belong to a bucket
			// no longer used here.
			if granted > 0 {
				stale = append(stale, remainder{key: r.key, policy: r.policy, period: r.period, now: r.now, left: granted})
			}
		default:
			st.tat, st.used = v.tat, used
			st.left += granted
			st.granted, st.served = st.left, 0
			st.start, st.ttl = r.now.UnixNano(), r.ttl
			st.expires = max(st.expires, st.start+r.ttl)
		}
		st.mu.Unlock()
		close(r.done)
	})
	cancel()
	if len(stale) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), renewTimeout)
		_ = l.handBack(ctx, stale)
		cancel()
	}
}
