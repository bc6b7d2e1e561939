package limit

import (
	"sync"
	"time"
)

// AlertKind names an excessive-usage event.
type AlertKind string

const (
	AlertRateLimited AlertKind = "rate_limited" // a request was refused for the rate
	AlertQuota80     AlertKind = "quota_80"     // 80 % of the period's quota used
	AlertQuota100    AlertKind = "quota_100"    // the quota is used up
)

// Alert is one excessive-usage event of a tenant.
type Alert struct {
	Kind      AlertKind
	TenantID  string
	Plan      string
	Used      int64
	Limit     int64
	PeriodEnd time.Time
}

// Alerter turns decisions into alerts, debounced: a rate-limited tenant alerts at most once
// per Debounce, each quota threshold once per period. Sink receives them (a log line, a
// metric, and in a later step a notification).
type Alerter struct {
	Debounce time.Duration
	Sink     func(Alert)

	mu   sync.Mutex
	last map[alertKey]int64 // → when the key may alert again (unix ns)
}

type alertKey struct {
	tenant string
	kind   AlertKind
}

// maxAlertKeys bounds the debounce memory; expired keys are dropped when it is reached.
const maxAlertKeys = 100_000

// Observe looks at one decision. It costs nothing unless the request was refused or the
// quota is past 80 %.
func (a *Alerter) Observe(tenantID string, p Policy, o Outcome, now time.Time) {
	var kind AlertKind
	var until int64
	switch {
	case !o.Allowed && o.Reason == ReasonRate:
		kind, until = AlertRateLimited, now.Add(a.Debounce).UnixNano()
	case o.QuotaLimit > 0 && o.QuotaUsed >= o.QuotaLimit:
		kind, until = AlertQuota100, o.QuotaEnd.UnixNano()
	case o.QuotaLimit > 0 && o.QuotaUsed*5 >= o.QuotaLimit*4:
		kind, until = AlertQuota80, o.QuotaEnd.UnixNano()
	default:
		return
	}
	key := alertKey{tenantID, kind}
	ns := now.UnixNano()
	a.mu.Lock()
	if a.last == nil {
		a.last = make(map[alertKey]int64)
	}
	if a.last[key] > ns {
		a.mu.Unlock()
		return
	}
	if len(a.last) >= maxAlertKeys {
		for k, t := range a.last {
			if t <= ns {
				delete(a.last, k)
			}
		}
	}
	a.last[key] = until
	a.mu.Unlock()
	if a.Sink != nil {
		a.Sink(Alert{Kind: kind, TenantID: tenantID, Plan: p.Name, Used: o.QuotaUsed, Limit: o.QuotaLimit, PeriodEnd: o.QuotaEnd})
	}
}
