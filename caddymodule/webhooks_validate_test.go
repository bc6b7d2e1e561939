package caddymodule

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/saasgate/saasgate/control"
)

// usage_alerts and the webhooks block, as JSON users write them: validateConfig accepts the
// good ones and names the option in its refusals (the Caddyfile side is in testdata).
func TestValidateConfig_UsageAlertsAndWebhooks(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string // "": accepted
	}{
		{"Defaults", `{"webhooks": {}}`, ""},
		{"EverythingSet", `{"usage_alerts": [50, 80, 100], "webhooks": {"retry_schedule": ["0s", "5s", "5m", "10h", "10h"],
			"timeout": "5s", "allow_private": ["127.0.0.0/8", "::1/128", "fd00::/8"]}}`, ""},
		{"OneThreshold", `{"usage_alerts": [100]}`, ""},
		{"PercentAbove100", `{"usage_alerts": [80, 120]}`, "usage_alerts: 120 is not a percentage of the quota (1..100)"},
		{"PercentZero", `{"usage_alerts": [0]}`, "usage_alerts: 0 is not a percentage of the quota (1..100)"},
		{"Decreasing", `{"usage_alerts": [80, 50]}`, "usage_alerts: 50 must be above the threshold before it (80): thresholds increase"},
		{"Repeated", `{"usage_alerts": [80, 80]}`, "usage_alerts: 80 must be above the threshold before it (80)"},
		{"ElevenThresholds", `{"usage_alerts": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}`, "usage_alerts: at most 10 thresholds"},
		{"BadCIDR", `{"webhooks": {"allow_private": ["10.0.0.0/33"]}}`, `webhooks: allow_private: "10.0.0.0/33" is not a CIDR range`},
		{"HostnameAsCIDR", `{"webhooks": {"allow_private": ["localhost"]}}`, `webhooks: allow_private: "localhost" is not a CIDR range`},
		{"HostBits", `{"webhooks": {"allow_private": ["192.168.1.1/24"]}}`, `webhooks: allow_private: "192.168.1.1/24" has host bits set; write the network, 192.168.1.0/24`},
		{"NegativeTimeout", `{"webhooks": {"timeout": "-1s"}}`, "webhooks: timeout: -1s is not a positive duration"},
		{"NegativeRetry", `{"webhooks": {"retry_schedule": ["0s", "-5s"]}}`, "webhooks: retry_schedule: -5s must be positive"},
		{"LaterZero", `{"webhooks": {"retry_schedule": ["5s", "0s"]}}`, "webhooks: retry_schedule: 0s must be positive (only the first attempt may be 0: at once)"},
		{"TwentyOneAttempts", `{"webhooks": {"retry_schedule": [` + strings.Repeat(`"1s", `, 20) + `"1s"]}}`, "webhooks: retry_schedule: at most 20 attempts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			if err := json.Unmarshal([]byte(tc.json), &a); err != nil {
				t.Fatal(err)
			}
			err := validateConfig(&a)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// Provision fills the defaults of usage_alerts and of the webhooks block's timeout; a given
// schedule is handed to the control plane as written, an empty one left to notify's default.
func TestOptions_UsageAlertsAndWebhooksDefaults(t *testing.T) {
	a := &App{Webhooks: &WebhooksConfig{}}
	a.provisionOptions()
	if !reflect.DeepEqual(a.UsageAlerts, control.DefaultUsageAlerts) || time.Duration(a.Webhooks.Timeout) != control.DefaultWebhookTimeout {
		t.Errorf("usage_alerts %v, timeout %s; want the defaults %v, %s", a.UsageAlerts, time.Duration(a.Webhooks.Timeout),
			control.DefaultUsageAlerts, control.DefaultWebhookTimeout)
	}
	if webhookSchedule(nil) != nil {
		t.Error("an empty schedule should be left to notify's default")
	}
	got := webhookSchedule([]caddy.Duration{0, caddy.Duration(5 * time.Second)})
	if !reflect.DeepEqual(got, []time.Duration{0, 5 * time.Second}) {
		t.Errorf("schedule %v", got)
	}
}
