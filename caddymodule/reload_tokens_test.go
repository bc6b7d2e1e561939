package caddymodule_test

import (
	"net/http"
	"testing"

	"github.com/saasgate/saasgate/caddymodule"
	"github.com/saasgate/saasgate/internal/testenv"
)

// A reload that keeps jwt_secret and jwt_issuer keeps the verified-token cache: the token
// verified before is answered from memory after (no new check), while the plan the reload
// changed applies on that very request. A reload that changes the secret, or the issuer,
// starts an empty cache over the new keys, and the old token is refused.
func TestReload_TokenCacheKeptUnlessTheKeysChange(t *testing.T) {
	cfg := gatewayConfig{
		options: "plan free {\n rate 100/1h\n}",
		sites:   []gatewaySite{{"gw", pipeline}},
	}
	g := startGateway(t, cfg)
	f := g.NewTenant(t, "tokenkeeper")
	r := g.get(t, "gw", "tokenkeeper", f.UserAccess)
	mustStatus(t, r, http.StatusOK)
	wantHeader(t, "before the reload", r.Header, "X-RateLimit-Limit", "100")
	cache, cached, checks := caddymodule.TokenCacheOf(activeApp(t))
	if cached == 0 || checks == 0 {
		t.Fatalf("after a request the token cache holds %d tokens, made %d checks", cached, checks)
	}

	// Only the plan changes.
	cfg.options = "plan free {\n rate 250/1h\n}"
	g.reload(t, cfg)
	r = g.get(t, "gw", "tokenkeeper", f.UserAccess)
	mustStatus(t, r, http.StatusOK)
	wantHeader(t, "after a plan-only reload", r.Header, "X-RateLimit-Limit", "250")
	after, cachedAfter, checksAfter := caddymodule.TokenCacheOf(activeApp(t))
	if after != cache {
		t.Fatal("a reload that kept jwt_secret and jwt_issuer replaced the token cache")
	}
	if checksAfter != checks || cachedAfter < cached {
		t.Errorf("after a plan-only reload the cache made %d checks (had %d) and holds %d tokens (had %d): "+
			"the token was verified again", checksAfter, checks, cachedAfter, cached)
	}

	// reloadKeys reloads with another secret or issuer: a fresh cache, the old token refused
	// (checked against the new keys), a token of a new login admitted.
	reloadKeys := func(what string, opts testenv.SaasOptions, old string) string {
		t.Helper()
		before, _, _ := caddymodule.TokenCacheOf(activeApp(t))
		g.Reload(t, opts)
		g.hc.CloseIdleConnections()
		fresh, n, checks := caddymodule.TokenCacheOf(activeApp(t))
		if fresh == before || n != 0 || checks != 0 {
			t.Errorf("%s: the token cache was kept (same %v, %d tokens, %d checks), want a new, empty one", what, fresh == before, n, checks)
		}
		wantProblem(t, g.get(t, "gw", "tokenkeeper", old), http.StatusUnauthorized, "invalid_token")
		access := g.MustLogin(t, f.UserEmail, f.ID).Access
		r := g.get(t, "gw", "tokenkeeper", access)
		mustStatus(t, r, http.StatusOK)
		wantHeader(t, what, r.Header, "X-RateLimit-Limit", "250")
		return access
	}
	opts := cfg.saas(g.up.Addr)
	opts.JWTSecret = "another-signing-secret-0123456789abcdef"
	access := reloadKeys("after a reload with another jwt_secret", opts, f.UserAccess)
	opts.Options += "\njwt_issuer saasgate-staging"
	reloadKeys("after a reload with another jwt_issuer", opts, access)
}
