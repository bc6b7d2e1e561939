package caddymodule

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The checks of usage_alerts and of the webhooks block (see app_validate.go for how the
// checks are shared by Validate and the Caddyfile parser).

// maxUsageAlerts bounds usage_alerts: each threshold is an alert kind in the metrics.
const maxUsageAlerts = 10

// maxWebhookAttempts bounds the webhooks retry_schedule.
const maxWebhookAttempts = 20

// checkUsageAlerts wants 1 to 10 percentages of the quota, each 1..100, increasing.
func checkUsageAlerts(percents []int) error {
	if len(percents) > maxUsageAlerts {
		return fmt.Errorf("at most %d thresholds", maxUsageAlerts)
	}
	prev := 0
	for _, p := range percents {
		switch {
		case p < 1 || p > 100:
			return fmt.Errorf("%d is not a percentage of the quota (1..100)", p)
		case p <= prev:
			return fmt.Errorf("%d must be above the threshold before it (%d): thresholds increase", p, prev)
		}
		prev = p
	}
	return nil
}

// checkWebhooks checks the retry schedule: 1 to 20 delays, none negative, only the first 0
// (an attempt at once; a later zero would retry a failing receiver in a tight loop).
func checkWebhooks(w *WebhooksConfig) error {
	if len(w.RetrySchedule) > maxWebhookAttempts {
		return fmt.Errorf("retry_schedule: at most %d attempts", maxWebhookAttempts)
	}
	for i, d := range w.RetrySchedule {
		v := time.Duration(d)
		if v < 0 || v == 0 && i > 0 {
			return fmt.Errorf("retry_schedule: %s must be positive (only the first attempt may be 0: at once)", v)
		}
	}
	return nil
}

// checkCIDR wants a network in CIDR form (10.1.0.0/16, fd00::/8); a bare address is refused,
// so that a range is never let through wider or narrower than written.
func checkCIDR(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("%q is not a CIDR range (e.g. 10.1.0.0/16 or fd00::/8)", s)
	}
	if p != p.Masked() {
		return fmt.Errorf("%q has host bits set; write the network, %s", s, p.Masked())
	}
	return nil
}

// webhookSchedule converts the configured schedule (nil: notify's default).
func webhookSchedule(schedule []caddy.Duration) []time.Duration {
	if len(schedule) == 0 {
		return nil
	}
	out := make([]time.Duration, len(schedule))
	for i, d := range schedule {
		out[i] = time.Duration(d)
	}
	return out
}
