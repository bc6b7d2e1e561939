package limit_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
)

// Configured thresholds each alert once per period; a count that jumps past several at once
// (another replica's share arriving) raises each of them, the lowest first.
func TestAlerter_ConfiguredThresholdsJumpedAtOnceEachAlert(t *testing.T) {
	var got []limit.AlertKind
	a := &limit.Alerter{Thresholds: []int{25, 50, 90}, Sink: func(al limit.Alert) { got = append(got, al.Kind) }}
	p := limit.Policy{Name: "free", Quota: 200}
	period := limit.MonthOf(t0)
	at := func(used int64) limit.Outcome {
		return limit.Outcome{Decision: limit.Decision{Allowed: true, QuotaLimit: 200, QuotaUsed: used, QuotaEnd: period.End}}
	}
	a.Observe("acme", p, at(49), t0)
	a.Observe("acme", p, at(120), t0) // 25 and 50 at once
	a.Observe("acme", p, at(150), t0)
	a.Observe("acme", p, at(180), t0)
	a.Observe("acme", p, at(200), t0)
	want := []limit.AlertKind{limit.QuotaAlert(25), limit.QuotaAlert(50), limit.QuotaAlert(90)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("alerts %v, want %v", got, want)
	}

	// Default thresholds: 80 and 100; a quota refusal past both is silent.
	got = nil
	d := &limit.Alerter{Sink: func(al limit.Alert) { got = append(got, al.Kind) }}
	d.Observe("acme", p, at(160), t0)
	d.Observe("acme", p, at(200), t0.Add(time.Second))
	d.Observe("acme", p, limit.Outcome{Decision: limit.Decision{Reason: limit.ReasonQuota, QuotaLimit: 200, QuotaUsed: 200, QuotaEnd: period.End}}, t0)
	if want := []limit.AlertKind{limit.AlertQuota80, limit.AlertQuota100}; !reflect.DeepEqual(got, want) {
		t.Fatalf("default thresholds: %v, want %v", got, want)
	}
}
