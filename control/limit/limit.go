// Package limit decides whether a tenant's request fits its plan: a GCRA rate limit (a steady
// rate with a burst) and a monthly quota. Stores keep the state (in Redis for a fleet, in
// process for one instance); the Limiter puts a timeout, a circuit breaker and a fallback
// policy in front of the store.
package limit

import (
	"context"
	"sync/atomic"
	"time"
)

// Policy is what a plan allows, in the limiter's terms.
type Policy struct {
	Name     string        // plan id: header policy name and metric label
	Interval time.Duration // emission interval: period / count
	Burst    int64         // requests allowed at once
	Quota    int64         // requests per quota period; 0 means none
	Exact    bool          // decide each request in the shared store, no leased blocks
}

// Period is the quota window a request counts against.
type Period struct {
	Start, End time.Time
}

// MonthOf is the calendar month (UTC) containing t.
func MonthOf(t time.Time) Period {
	t = t.UTC()
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return Period{Start: start, End: start.AddDate(0, 1, 0)}
}

// MonthFrom is the month-long period containing t in the sequence of months that starts at
// anchor (a subscription's period start): anchor + k months to anchor + k+1 months. A day the
// month lacks (an anchor on the 31st) clamps to the month's last day, as Stripe does.
func MonthFrom(anchor, t time.Time) Period {
	anchor, t = anchor.UTC(), t.UTC()
	k := (t.Year()-anchor.Year())*12 + int(t.Month()) - int(anchor.Month())
	start := addMonths(anchor, k)
	if start.After(t) {
		k--
		start = addMonths(anchor, k)
	}
	return Period{Start: start, End: addMonths(anchor, k+1)}
}

// PeriodCache remembers the quota period it last computed, so that the request path does the
// calendar arithmetic once a period instead of once a request. Safe for concurrent use; the
// zero value is ready.
type PeriodCache struct{ last atomic.Pointer[Period] }

// Get is the quota period containing now: the calendar month (MonthOf) when anchor is zero,
// else the month from anchor (MonthFrom). One cache serves one anchor.
func (c *PeriodCache) Get(anchor, now time.Time) Period {
	if p := c.last.Load(); p != nil && !now.Before(p.Start) && now.Before(p.End) {
		return *p
	}
	var p Period
	if anchor.IsZero() {
		p = MonthOf(now)
	} else {
		p = MonthFrom(anchor, now)
	}
	c.last.Store(&p)
	return p
}

// calendar is the cache of ThisMonth, shared by every tenant without an anchor.
var calendar PeriodCache

// ThisMonth is MonthOf(now), computed once a month.
func ThisMonth(now time.Time) Period { return calendar.Get(time.Time{}, now) }

func addMonths(anchor time.Time, k int) time.Time {
	first := time.Date(anchor.Year(), anchor.Month()+time.Month(k), 1, 0, 0, 0, 0, time.UTC)
	day := anchor.Day()
	if last := first.AddDate(0, 1, -1).Day(); day > last {
		day = last
	}
	return time.Date(first.Year(), first.Month(), day, anchor.Hour(), anchor.Minute(), anchor.Second(), anchor.Nanosecond(), time.UTC)
}

// Reason says why a request was rejected.
type Reason uint8

const (
	ReasonNone  Reason = iota
	ReasonRate         // over the rate: 429 rate_limited
	ReasonQuota        // over the quota: 429 quota_exceeded
)

// Decision is the answer for one request, with what the response headers need.
type Decision struct {
	Allowed    bool
	Reason     Reason
	Limit      int64         // the burst: requests allowed at once
	Remaining  int64         // requests allowed right now after this one
	ResetAfter time.Duration // until the bucket is full again
	RetryAfter time.Duration // when rejected: until a retry can succeed
	QuotaLimit int64         // 0 when the policy has no quota
	QuotaUsed  int64
	QuotaEnd   time.Time
}

// Store keeps limiter state. Take admits one request and consumes rate and quota, or rejects
// it and consumes nothing; it is atomic per key. Peek reports without consuming.
type Store interface {
	Take(ctx context.Context, key string, p Policy, period Period, now time.Time) (Decision, error)
	Peek(ctx context.Context, key string, p Policy, period Period, now time.Time) (Decision, error)
}

// verdict is the outcome of the GCRA arithmetic that every store shares. TAT is the
// theoretical arrival time of the next request, in nanoseconds since the epoch.
type verdict struct {
	allowed    bool
	reason     Reason
	tat        int64 // the TAT after the decision
	retryAfter int64
}

// gcra decides one request. Quota is checked first (it is the more useful answer to give), then
// the rate; a rejection changes neither.
func gcra(tat, now int64, p Policy, used int64) verdict {
	if tat < now {
		tat = now
	}
	if p.Quota > 0 && used >= p.Quota {
		return verdict{reason: ReasonQuota, tat: tat}
	}
	interval := int64(p.Interval)
	newTAT := tat + interval
	allowAt := newTAT - p.Burst*interval
	if now < allowAt {
		return verdict{reason: ReasonRate, tat: tat, retryAfter: allowAt - now}
	}
	return verdict{allowed: true, tat: newTAT}
}

// decision turns a TAT into the header figures.
func decision(p Policy, period Period, now, tat int64, v verdict, used int64) Decision {
	if tat < now {
		tat = now
	}
	interval := int64(p.Interval)
	remaining := (p.Burst*interval - (tat - now)) / interval
	if remaining < 0 || !v.allowed && v.reason == ReasonRate {
		remaining = 0
	}
	d := Decision{
		Allowed:    v.allowed,
		Reason:     v.reason,
		Limit:      p.Burst,
		Remaining:  remaining,
		ResetAfter: time.Duration(tat - now),
		RetryAfter: time.Duration(v.retryAfter),
	}
	if p.Quota > 0 {
		d.QuotaLimit, d.QuotaUsed, d.QuotaEnd = p.Quota, used, period.End
		if left := p.Quota - used; d.Remaining > left {
			d.Remaining = max(left, 0)
		}
		if v.reason == ReasonQuota {
			d.RetryAfter = period.End.Sub(time.Unix(0, now))
		}
	}
	return d
}

// Status is the body of GET /rate-limit.
type Status struct {
	TenantID     string       `json:"tenant_id"`
	Plan         string       `json:"plan"`
	Limit        int64        `json:"limit"`
	Remaining    int64        `json:"requests_remaining"`
	ResetSeconds int64        `json:"reset_seconds"`
	Quota        *QuotaStatus `json:"quota"`
}

// QuotaStatus is the quota part of Status.
type QuotaStatus struct {
	Limit     int64     `json:"limit"`
	Used      int64     `json:"used"`
	Remaining int64     `json:"remaining"`
	PeriodEnd time.Time `json:"period_end"`
}

// StatusOf reports d for tenantID; Quota is nil when the plan has none.
func StatusOf(tenantID string, p Policy, period Period, d Decision) *Status {
	s := &Status{TenantID: tenantID, Plan: p.Name, Limit: p.Burst, Remaining: d.Remaining,
		ResetSeconds: int64((d.ResetAfter + time.Second - 1) / time.Second)}
	if p.Quota > 0 {
		s.Quota = &QuotaStatus{Limit: p.Quota, Used: d.QuotaUsed, Remaining: max(p.Quota-d.QuotaUsed, 0), PeriodEnd: period.End}
	}
	return s
}
