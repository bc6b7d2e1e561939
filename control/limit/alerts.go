package limit

import (
	"strconv"
	"sync"
	"time"
)

// AlertKind names an excessive-usage event: AlertRateLimited, or a quota threshold
// ("quota_<percent>", one per configured threshold, so at most 10 kinds).
type AlertKind string

const (
	AlertRateLimited AlertKind = "rate_limited" // a request was refused for the rate
	AlertQuota80     AlertKind = "quota_80"     // 80 % of the period's quota used
	AlertQuota100    AlertKind = "quota_100"    // the quota is used up
)

// QuotaAlert is the kind of the quota threshold percent.
func QuotaAlert(percent int) AlertKind { return AlertKind("quota_" + strconv.Itoa(percent)) }

// DefaultThresholds are the shares of the quota, in percent, that alert when none are set.
var DefaultThresholds = []int{80, 100}

// Alert is one excessive-usage event of a tenant.
type Alert struct {
	Kind      AlertKind
	TenantID  string
	Plan      string
	Percent   int // the threshold reached; 0 for AlertRateLimited
	Used      int64
	Limit     int64
	PeriodEnd time.Time
}

// Alerter turns decisions into alerts, debounced: a rate-limited tenant alerts at most once
// per Debounce, each quota threshold once per period. Sink receives them (a log line, a
// metric, a notification); it is called on the request path and must not block.
//
// The memory of what has alerted is this process's: replicas alert each on their own, and a
// restart forgets. Notifications made from alerts carry ids derived from the tenant, period
// and threshold, so the outbox keeps one of each.
type Alerter struct {
	// Thresholds are the shares of the quota, in percent and increasing, that alert
	// (default DefaultThresholds).
	Thresholds []int
	// Debounce is the least time between two rate alerts of a tenant (0: every refusal).
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

// Observe looks at one decision. It costs nothing unless the request was refused for the
// rate or the quota is past the lowest threshold. Thresholds passed at once (a jump of the
// count shared by replicas) each alert, the lowest first.
func (a *Alerter) Observe(tenantID string, p Policy, o Outcome, now time.Time) {
	thresholds := a.Thresholds
	if thresholds == nil {
		thresholds = DefaultThresholds
	}
	rate := !o.Allowed && o.Reason == ReasonRate
	reached := 0 // how many thresholds the quota has reached
	if o.QuotaLimit > 0 {
		for reached < len(thresholds) && o.QuotaUsed*100 >= o.QuotaLimit*int64(thresholds[reached]) {
			reached++
		}
	}
	if !rate && reached == 0 {
		return
	}
	ns := now.UnixNano()
	var raised []Alert
	a.mu.Lock()
	if a.last == nil {
		a.last = make(map[alertKey]int64)
	}
	if len(a.last) >= maxAlertKeys {
		for k, t := range a.last {
			if t <= ns {
				delete(a.last, k)
			}
		}
	}
	if rate && a.due(alertKey{tenantID, AlertRateLimited}, ns, now.Add(a.Debounce).UnixNano()) {
		raised = append(raised, Alert{Kind: AlertRateLimited, TenantID: tenantID, Plan: p.Name, Used: o.QuotaUsed, Limit: o.QuotaLimit, PeriodEnd: o.QuotaEnd})
	}
	// From the highest down: the thresholds below a silenced one alerted with it or before, so
	// a tenant past its thresholds costs one lookup per request.
	var quota []Alert
	for i := reached - 1; i >= 0; i-- {
		kind := QuotaAlert(thresholds[i])
		if !a.due(alertKey{tenantID, kind}, ns, o.QuotaEnd.UnixNano()) {
			break
		}
		quota = append(quota, Alert{Kind: kind, TenantID: tenantID, Plan: p.Name, Percent: thresholds[i], Used: o.QuotaUsed, Limit: o.QuotaLimit, PeriodEnd: o.QuotaEnd})
	}
	a.mu.Unlock()
	for i := len(quota) - 1; i >= 0; i-- {
		raised = append(raised, quota[i])
	}
	if a.Sink != nil {
		for _, al := range raised {
			a.Sink(al)
		}
	}
}

// due reports whether key may alert at ns and, if so, silences it until until. a.mu is held.
func (a *Alerter) due(key alertKey, ns, until int64) bool {
	if a.last[key] > ns {
		return false
	}
	a.last[key] = until
	return true
}
