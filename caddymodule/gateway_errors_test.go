package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------------------------
// 10. handle_errors

func TestHandleErrors_GatewayRefusalsReachTheErrorRoutes(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "plan free {\n rate 50/1h\n}\nplan tiny {\n rate 1/1h\n}",
		sites: []gatewaySite{{"errors", pipeline + `
handle_errors {
	respond "{http.error.status_code} {http.vars.saas.error_code}"
}`}},
	})
	f := g.NewTenant(t, "errco")
	other := g.NewTenant(t, "otherco")
	admin := g.AdminToken(t)

	type step struct {
		name   string
		tenant string
		token  string
		status int
		body   string
	}
	run := func(t *testing.T, steps []step) {
		t.Helper()
		for _, s := range steps {
			r := g.get(t, "errors", s.tenant, s.token)
			if r.Status != s.status || s.status != http.StatusOK && string(r.Raw) != s.body {
				t.Errorf("%s: %d %q, want %d %q", s.name, r.Status, r.Raw, s.status, s.body)
			}
		}
	}
	// Refusals that come before the rate limit, so the bucket stays full.
	run(t, []step{
		{"Missing", "", f.UserAccess, 400, "400 tenant_missing"},
		{"Unknown", "initech", f.UserAccess, 404, "404 tenant_not_found"},
		{"NoToken", "errco", "", 401, "401 invalid_token"},
		{"OtherTenantsToken", "errco", other.UserAccess, 403, "403 tenant_mismatch"},
	})
	if h := g.get(t, "errors", "errco", "").Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Errorf("401 through handle_errors: WWW-Authenticate %q, want a Bearer challenge", h)
	}

	g.PatchTenant(t, admin, "errco", map[string]string{"status": "suspended"})
	run(t, []step{{"Suspended", "errco", f.UserAccess, 402, "402 tenant_suspended"}})

	g.PatchTenant(t, admin, "errco", map[string]string{"status": "active", "plan": "tiny"})
	run(t, []step{{"Reactivated", "errco", f.UserAccess, 200, ""}})
	r := g.get(t, "errors", "errco", f.UserAccess)
	if r.Status != http.StatusTooManyRequests || string(r.Raw) != "429 rate_limited" {
		t.Errorf("over the rate: %d %q, want 429 \"429 rate_limited\"", r.Status, r.Raw)
	}
	if ra := r.Header.Get("Retry-After"); ra == "" {
		t.Error("429 through handle_errors has no Retry-After")
	}
}
