package limit

import (
	"time"

	"github.com/saasgate/saasgate/control/errs"
)

// Scope says whose requests a limit counts; a rate_limited refusal's detail names it.
type Scope uint8

const (
	PerTenant  Scope = iota // a tenant's plan, at the gateway
	PerAddress              // an anonymous auth route, per client address
)

var (
	// ErrUnavailable answers a request the limiter could not decide: its store failed and
	// on_limiter_error is deny. A second is as good a guess as any for the store's return.
	ErrUnavailable = &errs.Error{Kind: errs.KindUnavailable, Code: "limiter_unavailable",
		Message: "The rate limiter is unavailable; try again.", RetryAfter: time.Second}
	// ErrStatusUnavailable answers GET /rate-limit when the store cannot be read; a report
	// consumes nothing, so it names no time to retry.
	ErrStatusUnavailable = errs.E(errs.KindUnavailable, "limiter_unavailable", "The rate limiter's store is unavailable.")

	errQuotaExceeded = errs.E(errs.KindTooMany, "quota_exceeded", "The monthly quota of this tenant's plan is used up.")
	errRateLimited   = [...]*errs.Error{
		PerTenant:  errs.E(errs.KindTooMany, "rate_limited", "Too many requests for this tenant's plan; slow down."),
		PerAddress: errs.E(errs.KindTooMany, "rate_limited", "Too many requests from this address; try again later."),
	}
)

// Refusal is the error that answers o, or nil when o lets the request through:
// limiter_unavailable when the store failed under on_limiter_error deny, else quota_exceeded
// or rate_limited with o's Retry-After, a second at least (a client told 0 would retry at once).
func (o Outcome) Refusal(s Scope) *errs.Error {
	switch {
	case o.Denied:
		return ErrUnavailable
	case o.Allowed:
		return nil
	}
	e := *errRateLimited[s]
	if o.Reason == ReasonQuota {
		e = *errQuotaExceeded
	}
	e.RetryAfter = max(o.RetryAfter, time.Second)
	return &e
}
