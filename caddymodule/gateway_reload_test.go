package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// ---------------------------------------------------------------------------------------------
// 8. Reload

func TestReload_InProcess_KeepsLimiterCountersAndTenantCache(t *testing.T) {
	testReloadKeepsCounters(t, false)
}

func TestReload_Redis_KeepsLimiterCountersAndTenantCache(t *testing.T) {
	testReloadKeepsCounters(t, true)
}

func testReloadKeepsCounters(t *testing.T, redis bool) {
	cfg := gatewayConfig{
		redis:   redis,
		options: "plan free {\n rate 20/1h\n}",
		sites:   []gatewaySite{{"gw", pipeline}},
	}
	g := startGateway(t, cfg)
	f := g.NewTenant(t, "reloader")
	for i := 1; i <= 10; i++ {
		r := g.get(t, "gw", "reloader", f.UserAccess)
		mustStatus(t, r, http.StatusOK)
		if i == 10 {
			wantHeader(t, "10th request", r.Header, "X-RateLimit-Remaining", "10")
		}
	}
	before := activeApp(t).Service()
	if known, _ := before.Runtime.Cache.Len(); known == 0 {
		t.Fatal("the tenant is not in the tenant cache after requests")
	}

	cfg.options += "\nplan extra {\n rate 5/1m\n}"
	g.reload(t, cfg)
	after := activeApp(t).Service()
	if after == before {
		t.Fatal("the reload did not build a new service")
	}
	if after.Runtime != before.Runtime {
		t.Error("the reload replaced the runtime (tenant cache, limiter state)")
	}
	if known, _ := after.Runtime.Cache.Len(); known == 0 {
		t.Error("the reload emptied the tenant cache")
	}
	if r := g.Do(t, "GET", "/plans", "", nil); !strings.Contains(string(r.Raw), `"id":"extra"`) {
		t.Fatalf("the reloaded config is not in use: %v", r)
	}

	r := g.get(t, "gw", "reloader", f.UserAccess)
	mustStatus(t, r, http.StatusOK)
	wantHeader(t, "after the reload", r.Header, "X-RateLimit-Remaining", "9")
	wantHeader(t, "after the reload", r.Header, "X-RateLimit-Limit", "20")
}

// ---------------------------------------------------------------------------------------------
// Stop

// Stopping (like a reload that changes redis_url, redis_prefix or redis_timeout) releases the
// Redis runtime; it must return promptly, not wait on the invalidation listener forever.
func TestGateway_StopWithRedisReturnsPromptly(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "plan free {\n rate 50/1h\n}",
		sites:   []gatewaySite{{"gw", pipeline}},
	})
	g.MustSignup(t, "owner@stopper.test", "stopper", "")
	mustStatus(t, g.get(t, "gw", "stopper", "", testenv.WithHeader("Authorization", "")), http.StatusUnauthorized)
}
