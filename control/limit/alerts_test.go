package limit_test

import (
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
)

func TestAlerter_DebouncesRateLimitsAndRaisesEachQuotaThresholdOncePerPeriod(t *testing.T) {
	var got []limit.Alert
	a := &limit.Alerter{Debounce: time.Minute, Sink: func(al limit.Alert) { got = append(got, al) }}
	p := limit.Policy{Name: "free", Interval: time.Second, Burst: 10, Quota: 100}
	period := limit.MonthOf(t0)
	rejected := limit.Outcome{Decision: limit.Decision{Reason: limit.ReasonRate, QuotaLimit: 100, QuotaUsed: 10, QuotaEnd: period.End}}
	allowedAt := func(used int64) limit.Outcome {
		return limit.Outcome{Decision: limit.Decision{Allowed: true, QuotaLimit: 100, QuotaUsed: used, QuotaEnd: period.End}}
	}

	for i := 0; i < 50; i++ {
		a.Observe("acme", p, rejected, t0.Add(time.Duration(i)*time.Second))
	}
	a.Observe("globex", p, rejected, t0) // another tenant has its own debounce
	a.Observe("acme", p, rejected, t0.Add(61*time.Second))
	for used := int64(1); used <= 100; used++ {
		a.Observe("acme", p, allowedAt(used), t0.Add(2*time.Minute))
	}
	a.Observe("acme", p, allowedAt(100), t0.Add(3*time.Minute))

	want := []struct {
		kind   limit.AlertKind
		tenant string
	}{
		{limit.AlertRateLimited, "acme"}, {limit.AlertRateLimited, "globex"}, {limit.AlertRateLimited, "acme"},
		{limit.AlertQuota80, "acme"}, {limit.AlertQuota100, "acme"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d alerts %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].TenantID != w.tenant || got[i].Plan != "free" {
			t.Errorf("alert %d = %+v, want %s for %s", i, got[i], w.kind, w.tenant)
		}
	}
	if got[3].Used != 80 || got[4].Used != 100 || got[4].Limit != 100 || !got[4].PeriodEnd.Equal(period.End) {
		t.Errorf("quota alerts carry %+v and %+v", got[3], got[4])
	}

	// A new period raises the thresholds again.
	next := limit.MonthOf(period.End)
	a.Observe("acme", p, limit.Outcome{Decision: limit.Decision{Allowed: true, QuotaLimit: 100, QuotaUsed: 85, QuotaEnd: next.End}}, next.Start)
	if len(got) != 6 || got[5].Kind != limit.AlertQuota80 {
		t.Fatalf("after the period ended: %+v", got[len(got)-1])
	}
}
