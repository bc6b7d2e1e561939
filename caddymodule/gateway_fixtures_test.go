package caddymodule_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/saasgate/saasgate/internal/testenv"
)

// These tests drive the data plane (saas_tenant, saas_auth, saas_rate_limit) over real HTTP
// through an in-process Caddy: tenants and users are made through the control API of the same
// Caddy, requests go to tenant sites in front of an echoing upstream, which records what the
// gateway let through.

// pipeline is the full gateway in front of the upstream, in the order the directives run
// without any `order` option.
const pipeline = `saas_tenant
saas_auth
saas_rate_limit
reverse_proxy UPSTREAM`

// gatewaySite is a tenant site, served on a port of its own at http://*.localhost:<port> and
// http://127.0.0.1:<port> (the latter has no subdomain). UPSTREAM in body is replaced by the
// echo upstream's address.
type gatewaySite struct{ name, body string }

type gatewayConfig struct {
	global  string        // more lines of Caddy's global options
	redis   bool          // set redis_url (and a redis_prefix of the test's own)
	options string        // more lines of the saas option: plans, default_plan, ...
	apiSite string        // more directives of the control-API site
	sites   []gatewaySite // tenant sites
}

type gateway struct {
	*apiServer // the control API, on http://127.0.0.1:<port>
	up         *testenv.Upstream
	hc         *http.Client // for the tenant sites
}

// saas is the gateway of cfg in front of the upstream up.
func (cfg gatewayConfig) saas(up string) testenv.SaasOptions {
	o := testenv.SaasOptions{Global: cfg.global, Redis: cfg.redis, Options: cfg.options, APISite: cfg.apiSite, Upstream: up}
	for _, s := range cfg.sites {
		o.Sites = append(o.Sites, testenv.Site{Name: s.name, Body: s.body})
	}
	return o
}

// startGateway runs Caddy with the saas app on a fresh database, the control API and the
// tenant sites of cfg.
func startGateway(t *testing.T, cfg gatewayConfig) *gateway {
	t.Helper()
	g := &gateway{up: testenv.EchoUpstream(t)}
	g.apiServer = &apiServer{testenv.NewSaas(t, cfg.saas(g.up.Addr))}
	// Enough idle connections that 200 concurrent requests do not open and close sockets.
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256}
	g.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	// Stopping releases the Redis runtime (its invalidation listener included): it must be
	// prompt. The first cleanup runs after Caddy has stopped, the second right before.
	var stopping time.Time
	t.Cleanup(func() {
		if d := time.Since(stopping); cfg.redis && d > stopBound {
			t.Errorf("stopping Caddy with redis_url set took %v, more than %v", d, stopBound)
		}
	})
	testenv.StartCaddy(t, g.Caddyfile)
	t.Cleanup(func() { stopping = time.Now() })
	g.WaitReady(t, 10*time.Second)
	return g
}

// stopBound is how long stopping Caddy may take once no request is in flight.
const stopBound = 2 * time.Second

// reload replaces the config with the one of cfg, on the same database, Redis prefix and ports.
func (g *gateway) reload(t *testing.T, cfg gatewayConfig) {
	t.Helper()
	g.Reload(t, cfg.saas(g.up.Addr))
	// The old config's servers closed the kept-alive connections of the tenant sites too.
	g.hc.CloseIdleConnections()
}

// client returns a client of a tenant site, on its 127.0.0.1 address.
func (g *gateway) client(t testing.TB, site string) *testenv.Client {
	t.Helper()
	port, ok := g.Ports[site]
	if !ok {
		t.Fatalf("no site %q in this gateway", site)
	}
	return &testenv.Client{Base: fmt.Sprintf("http://127.0.0.1:%d", port), HC: g.hc}
}

// hostOf sets the Host of tenant on site, "<tenant>.localhost:<port>"; for tenant "" it keeps
// the site's bare 127.0.0.1 address, which has no subdomain.
func (g *gateway) hostOf(site, tenant string) testenv.Option {
	if tenant == "" {
		return func(*http.Request) {}
	}
	return testenv.WithHost(fmt.Sprintf("%s.localhost:%d", tenant, g.Ports[site]))
}

// get sends GET /echo to site for tenant (its subdomain; "" for none) with token (none if "").
func (g *gateway) get(t testing.TB, site, tenant, token string, opts ...testenv.Option) testenv.Response {
	t.Helper()
	return g.client(t, site).Do(t, "GET", "/echo", token, nil, append([]testenv.Option{g.hostOf(site, tenant)}, opts...)...)
}

// rateLimitStatus is GET /rate-limit on the control API.
func (g *gateway) rateLimitStatus(t testing.TB, token string) testenv.Response {
	t.Helper()
	r := g.Do(t, "GET", "/rate-limit", token, nil)
	mustStatus(t, r, http.StatusOK)
	return r
}

// addHeader adds a value to a request header (a second call adds a second value).
func addHeader(key, value string) testenv.Option {
	return func(r *http.Request) { r.Header.Add(key, value) }
}

// addRawHeader adds a header under exactly the name given, not its canonical form.
func addRawHeader(key, value string) testenv.Option {
	return func(r *http.Request) { r.Header[key] = append(r.Header[key], value) }
}

// wantHeader checks that h has key with exactly the values want (none: absent).
func wantHeader(t testing.TB, where string, h http.Header, key string, want ...string) {
	t.Helper()
	got := h.Values(key)
	if len(got) != len(want) || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("%s: %s = %q, want %q", where, key, got, want)
	}
}

// headerInt reads an integer response header.
func headerInt(t testing.TB, r testenv.Response, key string) int64 {
	t.Helper()
	v := r.Header.Get(key)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%v: header %s = %q, want an integer", r, key, v)
	}
	return n
}

// num reads a number of a decoded JSON object; path names nested objects.
func num(t testing.TB, m map[string]any, path ...string) int64 {
	t.Helper()
	for _, k := range path[:len(path)-1] {
		m, _ = m[k].(map[string]any)
	}
	f, ok := m[path[len(path)-1]].(float64)
	if !ok {
		t.Fatalf("%s: %v is not a number in %v", strings.Join(path, "."), m[path[len(path)-1]], m)
	}
	return int64(f)
}

// nextMonthUTC is the first instant of the month after now's, UTC: the end of the quota period.
func nextMonthUTC(now time.Time) time.Time {
	now = now.UTC()
	return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
}

// accessToken mints an HS256 access token of userID in tenant with the role, signed with
// secret, expiring at exp.
func accessToken(t *testing.T, secret []byte, userID, tenant, role string, exp time.Time) string {
	t.Helper()
	return mintToken(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{
		"iss": testIssuer, "sub": userID, "tid": tenant, "role": role, "typ": "access",
		"iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix(), "jti": "gw-" + unique(),
	})
}
