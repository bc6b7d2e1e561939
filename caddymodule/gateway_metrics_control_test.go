package caddymodule_test

import (
	"math"
	"testing"
	"time"

	"github.com/saasgate/saasgate/caddymodule"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/internal/testenv"
)

// The webhook and audit observers the saas app hands to the control plane move their series on
// the gateway's metrics endpoint, under bounded labels: a type or result outside its set is
// counted as "other".
func TestMetrics_WebhookAndAuditObserversMoveTheirSeries(t *testing.T) {
	g := startGateway(t, gatewayConfig{apiSite: "\tmetrics /metrics"})
	before := testenv.Scrape(t, g.Client, "/metrics")

	n := caddymodule.NotifyMetrics
	n.Emitted(notify.EventPaymentFailed)
	n.Emitted(notify.EventPaymentFailed)
	n.Emitted("tenant:acme") // not a catalogued type: must not become a label value
	n.Attempted(notify.ResultSuccess, 30*time.Millisecond)
	n.Attempted(notify.ResultFailure, 12*time.Second)
	n.Attempted(notify.ResultFailure, 2*time.Second)
	n.Attempted(notify.ResultDisabled, 40*time.Millisecond)
	n.OutboxDepth(3)
	n.OutboxDepth(7) // a sample replaces the last one
	a := caddymodule.AuditMetrics
	for range 3 {
		a.Appended()
	}
	a.VerifyFailed()

	after := testenv.Scrape(t, g.Client, "/metrics")
	for _, c := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"saasgate_webhooks_events_total", map[string]string{"type": "payment.failed"}, 2},
		{"saasgate_webhooks_events_total", map[string]string{"type": "other"}, 1},
		{"saasgate_webhooks_deliveries_total", map[string]string{"result": "success"}, 1},
		{"saasgate_webhooks_deliveries_total", map[string]string{"result": "failure"}, 2},
		{"saasgate_webhooks_deliveries_total", map[string]string{"result": "disabled"}, 1},
		{"saasgate_webhooks_attempt_duration_seconds_count", map[string]string{}, 4},
		{"saasgate_webhooks_attempt_duration_seconds_bucket", map[string]string{"le": "0.05"}, 2},
		{"saasgate_webhooks_attempt_duration_seconds_bucket", map[string]string{"le": "2.5"}, 3},
		{"saasgate_webhooks_attempt_duration_seconds_bucket", map[string]string{"le": "15"}, 4},
		{"saasgate_audit_appends_total", map[string]string{}, 3},
		{"saasgate_audit_verify_failures_total", map[string]string{}, 1},
	} {
		if d := after.Value(c.name, c.labels) - before.Value(c.name, c.labels); d != c.delta {
			t.Errorf("%s%v grew by %v, want %v", c.name, c.labels, d, c.delta)
		}
	}
	sum := after.Value("saasgate_webhooks_attempt_duration_seconds_sum", map[string]string{}) -
		before.Value("saasgate_webhooks_attempt_duration_seconds_sum", map[string]string{})
	if math.Abs(sum-14.07) > 1e-6 {
		t.Errorf("attempt durations sum grew by %v, want 14.07", sum)
	}
	// The gateway's own delivery workers sample the (empty) outbox every second and may set
	// the gauge back to 0 between the sample above and the scrape: set it again and scrape
	// again a few times; a gauge that never shows the sample fails.
	depth := after.Value("saasgate_webhooks_outbox_depth", map[string]string{})
	for i := 0; depth != 7 && i < 5; i++ {
		n.OutboxDepth(7)
		depth = testenv.Scrape(t, g.Client, "/metrics").Value("saasgate_webhooks_outbox_depth", map[string]string{})
	}
	if depth != 7 {
		t.Errorf("outbox depth %v, want 7", depth)
	}
	for _, s := range after {
		if s.Name == "saasgate_webhooks_events_total" && s.Labels["type"] == "tenant:acme" {
			t.Errorf("series %s: an uncatalogued event type became a label value", s.Series)
		}
	}
}

// The tenants' gauge counts the platform's tenants by the status the gateway enforces, and
// follows an admin's suspension through the control API at the next scrape, across a reload too
// (Caddy starts the new config before it stops the old one).
func TestMetrics_TenantsByStatusFollowsSuspension(t *testing.T) {
	cfg := gatewayConfig{apiSite: "\tmetrics /metrics"}
	g := startGateway(t, cfg)
	g.NewTenant(t, "counted")
	g.NewTenant(t, "suspendme")
	active := map[string]string{"status": "active"}
	suspended := map[string]string{"status": "suspended"}

	m := testenv.Scrape(t, g.Client, "/metrics")
	if a, s := m.Value("saasgate_tenants", active), m.Value("saasgate_tenants", suspended); a != 2 || s != 0 {
		t.Fatalf("tenants active %v, suspended %v; want 2 and 0", a, s)
	}
	if _, ok := m.Series(`saasgate_tenants{status="suspended"}`); !ok {
		t.Error("no suspended series while none is suspended: a dashboard would read no data, not 0")
	}

	g.PatchTenant(t, g.AdminToken(t), "suspendme", map[string]string{"status": "suspended"})
	m = testenv.Scrape(t, g.Client, "/metrics")
	if a, s := m.Value("saasgate_tenants", active), m.Value("saasgate_tenants", suspended); a != 1 || s != 1 {
		t.Errorf("after a suspension: tenants active %v, suspended %v; want 1 and 1", a, s)
	}

	cfg.options = "plan free {\n rate 100/1m\n}"
	g.reload(t, cfg)
	m = testenv.Scrape(t, g.Client, "/metrics")
	if a, s := m.Value("saasgate_tenants", active), m.Value("saasgate_tenants", suspended); a != 1 || s != 1 {
		t.Errorf("after a reload: tenants active %v, suspended %v; want 1 and 1", a, s)
	}
}
