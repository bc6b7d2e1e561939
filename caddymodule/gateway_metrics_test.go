package caddymodule_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------------------------
// 9. Metrics

// metricSample matches one sample line of the Prometheus text format.
var (
	metricSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)`)
	metricLabel  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

type metricLine struct {
	name   string
	labels map[string]string
	value  float64
}

func (g *gateway) scrape(t *testing.T) []metricLine {
	t.Helper()
	url := g.base + "/metrics"
	resp, err := g.hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, raw)
	}
	var out []metricLine
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := metricSample.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		ml := metricLine{name: m[1], labels: map[string]string{}, value: v}
		for _, l := range metricLabel.FindAllStringSubmatch(m[2], -1) {
			ml.labels[l[1]] = l[2]
		}
		out = append(out, ml)
	}
	return out
}

// metricValue is the value of the sample of name with exactly labels; 0 when absent.
func metricValue(lines []metricLine, name string, labels map[string]string) float64 {
	for _, l := range lines {
		if l.name != name || len(l.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if l.labels[k] != v {
				match = false
			}
		}
		if match {
			return l.value
		}
	}
	return 0
}

func TestMetrics_LimiterDecisionsByPlanAndResultWithoutTenantOrUserLabels(t *testing.T) {
	// A plan no other test uses: the counters live for the whole test process.
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "default_plan observed\nplan observed {\n rate 3/1h\n}",
		apiSite: "\tmetrics /metrics",
		sites:   []gatewaySite{{"gw", pipeline}},
	})
	f := g.newTenant(t, "watched")
	allowed := map[string]string{"plan": "observed", "result": "allowed"}
	limited := map[string]string{"plan": "observed", "result": "rate_limited"}
	alerts := map[string]string{"kind": "rate_limited"}
	before := g.scrape(t)

	for i := range 5 {
		want := http.StatusOK
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		mustStatus(t, g.get(t, "gw", "watched", f.UserAccess), want)
	}

	after := g.scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"saasgate_limiter_decisions_total", allowed, 3},
		{"saasgate_limiter_decisions_total", limited, 2},
		{"saasgate_usage_alerts_total", alerts, 1}, // debounced: one alert for both refusals
	} {
		if d := metricValue(after, c.name, c.labels) - metricValue(before, c.name, c.labels); d != c.delta {
			t.Errorf("%s%v grew by %v, want %v", c.name, c.labels, d, c.delta)
		}
	}
	for _, name := range []string{"saasgate_limiter_redis_errors_total", "saasgate_limiter_breaker_open"} {
		found := false
		for _, l := range after {
			found = found || l.name == name
		}
		if !found {
			t.Errorf("metric %s is not exposed", name)
		}
	}

	// No label value names a tenant or a user, whatever the metric; saasgate's own carry no IP.
	forbidden := map[string]bool{f.ID: true, f.OwnerID: true, f.UserID: true, f.OwnerEmail: true, f.UserEmail: true}
	for _, l := range after {
		for k, v := range l.labels {
			if forbidden[v] {
				t.Errorf("metric %s has label %s=%q, a tenant or user", l.name, k, v)
			}
			if strings.HasPrefix(l.name, "saasgate_") && strings.Contains(v, "127.0.0.1") {
				t.Errorf("metric %s has label %s=%q, an IP", l.name, k, v)
			}
		}
	}
}
