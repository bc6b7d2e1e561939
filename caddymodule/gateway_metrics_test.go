package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// ---------------------------------------------------------------------------------------------
// 9. Metrics

func TestMetrics_LimiterDecisionsByPlanAndResultWithoutTenantOrUserLabels(t *testing.T) {
	// A plan no other test uses: the counters live for the whole test process.
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "default_plan observed\nplan observed {\n rate 3/1h\n}",
		apiSite: "\tmetrics /metrics",
		sites:   []gatewaySite{{"gw", pipeline}},
	})
	f := g.NewTenant(t, "watched")
	allowed := map[string]string{"plan": "observed", "result": "allowed"}
	limited := map[string]string{"plan": "observed", "result": "rate_limited"}
	alerts := map[string]string{"kind": "rate_limited"}
	before := testenv.Scrape(t, g.Client, "/metrics")

	for i := range 5 {
		want := http.StatusOK
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		mustStatus(t, g.get(t, "gw", "watched", f.UserAccess), want)
	}

	after := testenv.Scrape(t, g.Client, "/metrics")
	for _, c := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"saasgate_limiter_decisions_total", allowed, 3},
		{"saasgate_limiter_decisions_total", limited, 2},
		{"saasgate_usage_alerts_total", alerts, 1}, // debounced: one alert for both refusals
	} {
		if d := after.Value(c.name, c.labels) - before.Value(c.name, c.labels); d != c.delta {
			t.Errorf("%s%v grew by %v, want %v", c.name, c.labels, d, c.delta)
		}
	}
	for _, name := range []string{"saasgate_limiter_redis_errors_total", "saasgate_limiter_breaker_open"} {
		found := false
		for _, l := range after {
			found = found || l.Name == name
		}
		if !found {
			t.Errorf("metric %s is not exposed", name)
		}
	}

	// No label value names a tenant or a user, whatever the metric; saasgate's own carry no IP.
	forbidden := map[string]bool{f.ID: true, f.OwnerID: true, f.UserID: true, f.OwnerEmail: true, f.UserEmail: true}
	for _, l := range after {
		for k, v := range l.Labels {
			if forbidden[v] {
				t.Errorf("metric %s has label %s=%q, a tenant or user", l.Name, k, v)
			}
			if strings.HasPrefix(l.Name, "saasgate_") && strings.Contains(v, "127.0.0.1") {
				t.Errorf("metric %s has label %s=%q, an IP", l.Name, k, v)
			}
		}
	}
}
