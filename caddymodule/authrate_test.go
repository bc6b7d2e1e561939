package caddymodule_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// The anonymous auth routes are limited per client IP, which is Caddy's: X-Forwarded-For
// counts only from trusted_proxies. The test serves the API twice, on a server that trusts
// the loopback proxy and on one that trusts nobody; the buckets are the saas app's, shared.
func TestAuthRate_AnonymousRoutesAreLimitedPerClientIP(t *testing.T) {
	port := testenv.FreePort(t)
	gw := testenv.StartSaas(t, testenv.SaasOptions{
		Global:  fmt.Sprintf("servers :%d {\n\ttrusted_proxies static 127.0.0.1/32\n}", port),
		Options: "auth_rate signup 3/1h\nauth_rate login 2/1m\nauth_rate refresh 2/1m",
		APIPort: port,
		Sites:   []testenv.Site{{Name: "untrusted", Body: "saas_api"}},
	})
	trusted, untrusted := gw.Client, testenv.NewClient(t, fmt.Sprintf("http://127.0.0.1:%d", gw.Ports["untrusted"]))

	from := func(ip string) testenv.Option { return testenv.WithHeader("X-Forwarded-For", ip) }
	signup := func(s *testenv.Client, ip string) testenv.Response {
		tenant := "rate-" + unique()
		return s.Do(t, "POST", "/auth/signup", "", testenv.SignupBody("owner@"+tenant+".test", testenv.Password, tenant, ""), from(ip))
	}
	for i := 0; i < 3; i++ {
		mustStatus(t, signup(trusted, "203.0.113.1"), http.StatusCreated)
	}
	r := signup(trusted, "203.0.113.1")
	if wantProblem(t, r, http.StatusTooManyRequests, "rate_limited") {
		// 3/1h: the next signup fits 20 minutes later.
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s <= 0 || s > 1200 {
			t.Errorf("Retry-After %q, want 1..1200 seconds", r.Header.Get("Retry-After"))
		}
	}
	mustStatus(t, signup(trusted, "203.0.113.2"), http.StatusCreated) // another address is unaffected

	// Untrusted: X-Forwarded-For is the client's claim, so all of these are 127.0.0.1.
	for i := 0; i < 3; i++ {
		mustStatus(t, signup(untrusted, "198.51.100."+strconv.Itoa(i+1)), http.StatusCreated)
	}
	wantProblem(t, signup(untrusted, "198.51.100.9"), http.StatusTooManyRequests, "rate_limited")

	// Login and refresh count every attempt, failed ones included, before any password check.
	for _, tc := range []struct{ path, body, code string }{
		{"/auth/login", `{"email":"nobody@rate.test","password":"wrong-password","tenant":"rate-x"}`, "invalid_credentials"},
		{"/auth/refresh", `{"refresh_token":"rt_unknown"}`, "invalid_token"},
	} {
		for i := 0; i < 2; i++ {
			wantProblem(t, trusted.Do(t, "POST", tc.path, "", tc.body, from("192.0.2.7")), http.StatusUnauthorized, tc.code)
		}
		wantProblem(t, trusted.Do(t, "POST", tc.path, "", tc.body, from("192.0.2.7")), http.StatusTooManyRequests, "rate_limited")
	}
}
