package limit

import (
	"context"
	"sync/atomic"
	"time"
)

// OnError is what the Limiter does when its store fails (or the breaker is open).
type OnError string

const (
	OnErrorLocal OnError = "local" // decide with the in-process store at the plan's rate
	OnErrorAllow OnError = "allow" // let the request through
	OnErrorDeny  OnError = "deny"  // refuse it (503)
)

// Results, as reported to the Observer (metric label values).
const (
	ResultAllowed       = "allowed"
	ResultRateLimited   = "rate_limited"
	ResultQuotaExceeded = "quota_exceeded"
	ResultErrorAllowed  = "error_allowed"
	ResultErrorDenied   = "error_denied"
)

// Observer hears about decisions and store health; the Caddy adapter turns these into metrics.
type Observer interface {
	Decided(policy, result string)
	StoreError()
	BreakerChanged(open bool)
}

// Limiter decides through a store, and keeps deciding when the store fails: a circuit
// breaker stops calling a store that keeps failing, and OnError says what to answer meanwhile.
type Limiter struct {
	Store    Store  // the primary store (Redis, leased blocks); nil means Local only
	Exact    Store  // the store for Exact policies (Redis, a call per request); nil: Store
	Local    *Local // the in-process store: the primary when Store is nil, else the fallback
	OnError  OnError
	Breaker  *Breaker
	Observer Observer
}

// Outcome adds to a Decision how it was reached.
type Outcome struct {
	Decision
	// Degraded is true when the primary store could not be used.
	Degraded bool
	// Denied is true when the store failed and OnError is deny: answer 503.
	Denied bool
	// Unlimited is true when the store failed and OnError is allow: no figures to show.
	Unlimited bool
}

// Result names the outcome for metrics and logs.
func (o Outcome) Result() string {
	switch {
	case o.Denied:
		return ResultErrorDenied
	case o.Unlimited:
		return ResultErrorAllowed
	case o.Allowed:
		return ResultAllowed
	case o.Reason == ReasonQuota:
		return ResultQuotaExceeded
	}
	return ResultRateLimited
}

// Take decides one request for key (a tenant id).
func (l *Limiter) Take(ctx context.Context, key string, p Policy, period Period, now time.Time) Outcome {
	out := l.do(ctx, key, p, period, now, true)
	if l.Observer != nil {
		l.Observer.Decided(p.Name, out.Result())
	}
	return out
}

// Peek reports the state for key without consuming anything.
func (l *Limiter) Peek(ctx context.Context, key string, p Policy, period Period, now time.Time) Outcome {
	return l.do(ctx, key, p, period, now, false)
}

func (l *Limiter) do(ctx context.Context, key string, p Policy, period Period, now time.Time, take bool) Outcome {
	if l.Store == nil {
		return Outcome{Decision: l.local(key, p, period, now, take)}
	}
	if l.Breaker.Allow(now) {
		s := l.Store
		if p.Exact && l.Exact != nil {
			s = l.Exact
		}
		var d Decision
		var err error
		if take {
			d, err = s.Take(ctx, key, p, period, now)
		} else {
			d, err = s.Peek(ctx, key, p, period, now)
		}
		if err == nil {
			if l.Breaker.Success() && l.Observer != nil {
				l.Observer.BreakerChanged(false)
			}
			return Outcome{Decision: d}
		}
		if l.Observer != nil {
			l.Observer.StoreError()
		}
		if l.Breaker.Failure(now) && l.Observer != nil {
			l.Observer.BreakerChanged(true)
		}
	}
	switch l.OnError {
	case OnErrorAllow:
		return Outcome{Decision: Decision{Allowed: true, Limit: p.Burst, Remaining: p.Burst}, Degraded: true, Unlimited: true}
	case OnErrorDeny:
		return Outcome{Decision: Decision{Limit: p.Burst}, Degraded: true, Denied: true}
	}
	return Outcome{Decision: l.local(key, p, period, now, take), Degraded: true}
}

func (l *Limiter) local(key string, p Policy, period Period, now time.Time, take bool) Decision {
	if take {
		d, _ := l.Local.Take(context.Background(), key, p, period, now)
		return d
	}
	d, _ := l.Local.Peek(context.Background(), key, p, period, now)
	return d
}

// Breaker is a circuit breaker: after Threshold consecutive failures it opens for Cooldown,
// during which Allow answers false without calling the store; then one probe is let through,
// and its result closes the breaker or opens it again.
type Breaker struct {
	Threshold int64
	Cooldown  time.Duration

	failures  atomic.Int64
	openUntil atomic.Int64 // unix nanoseconds; 0 when closed
	probing   atomic.Bool
}

// NewBreaker returns a closed breaker.
func NewBreaker(threshold int64, cooldown time.Duration) *Breaker {
	return &Breaker{Threshold: threshold, Cooldown: cooldown}
}

// Allow reports whether to call the store now.
func (b *Breaker) Allow(now time.Time) bool {
	until := b.openUntil.Load()
	if until == 0 {
		return true
	}
	if now.UnixNano() < until {
		return false
	}
	return b.probing.CompareAndSwap(false, true) // half-open: one caller probes
}

// Success records a successful call; it reports whether the breaker just closed.
func (b *Breaker) Success() bool {
	b.failures.Store(0)
	if b.openUntil.Load() == 0 {
		return false
	}
	b.openUntil.Store(0)
	b.probing.Store(false)
	return true
}

// Failure records a failed call; it reports whether the breaker just opened.
func (b *Breaker) Failure(now time.Time) bool {
	n := b.failures.Add(1)
	wasOpen := b.openUntil.Load() != 0
	if n >= b.Threshold || wasOpen {
		b.openUntil.Store(now.Add(b.Cooldown).UnixNano())
		b.probing.Store(false)
		return !wasOpen
	}
	return false
}

// Open reports whether the breaker is open (or half-open).
func (b *Breaker) Open() bool { return b.openUntil.Load() != 0 }
