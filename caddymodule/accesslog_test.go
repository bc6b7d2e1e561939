package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Caddy's JSON access log carries the tenant, the user and the limiter's decision of each
// request through the gateway (SPEC §8), refused ones included.
func TestAccessLog_CarriesTenantUserAndLimiterDecision(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	g := startGateway(t, gatewayConfig{
		options: "plan free {\n rate 2/1h\n}",
		sites: []gatewaySite{{"gw", "log {\n output file " + logPath + "\n format json\n}\n" +
			"saas_tenant\nsaas_auth\nsaas_rate_limit\nreverse_proxy UPSTREAM"}},
	})
	acme := g.NewTenant(t, "acme")
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		if r := g.get(t, "gw", "acme", acme.UserAccess); r.Status != want {
			t.Fatalf("request %d: %d, want %d", i, r.Status, want)
		}
	}

	type entry struct {
		Status  int    `json:"status"`
		UserID  string `json:"user_id"`
		Tenant  string `json:"tenant"`
		Limiter string `json:"limiter"`
	}
	var entries []entry
	deadline := time.Now().Add(5 * time.Second)
	for len(entries) < 3 && time.Now().Before(deadline) {
		entries = entries[:0]
		if f, err := os.Open(logPath); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var e entry
				if json.Unmarshal(sc.Bytes(), &e) == nil && e.Status != 0 {
					entries = append(entries, e)
				}
			}
			f.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(entries) != 3 {
		t.Fatalf("%d access log entries, want 3: %+v", len(entries), entries)
	}
	wantLimiter := []string{"allowed", "allowed", "rate_limited"}
	for i, e := range entries {
		if e.Tenant != "acme" || e.UserID != acme.UserID || e.Limiter != wantLimiter[i] {
			t.Errorf("entry %d = %+v, want tenant acme, user %s, limiter %s", i, e, acme.UserID, wantLimiter[i])
		}
	}
}
