package caddymodule_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
	redisURL   string
	prefix     string // Redis key prefix; "" without Redis
	ports      map[string]int
	hc         *http.Client
}

// startGateway runs Caddy with the saas app on a fresh database, the control API and the
// tenant sites of cfg.
func startGateway(t *testing.T, cfg gatewayConfig) *gateway {
	t.Helper()
	g := &gateway{
		apiServer: &apiServer{mongoURI: testenv.Mongo(t), database: testenv.Database(t), port: testenv.FreePort(t)},
		up:        testenv.EchoUpstream(t),
		ports:     make(map[string]int),
	}
	g.apiClient = newClient(t, fmt.Sprintf("http://127.0.0.1:%d", g.port))
	if cfg.redis {
		g.redisURL, g.prefix = testenv.RedisURL(t), testenv.KeyPrefix(t)
	}
	for _, s := range cfg.sites {
		g.ports[s.name] = testenv.FreePort(t)
	}
	// Enough idle connections that 200 concurrent requests do not open and close sockets.
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256}
	g.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	// Registered before StartCaddy, so it runs after Caddy has stopped.
	t.Cleanup(func() { g.dropDatabase(t) })
	// Stopping releases the Redis runtime (its invalidation listener included): it must be
	// prompt. The first cleanup runs after Caddy has stopped, the second right before.
	var stopping time.Time
	t.Cleanup(func() {
		if d := time.Since(stopping); cfg.redis && d > stopBound {
			t.Errorf("stopping Caddy with redis_url set took %v, more than %v", d, stopBound)
		}
	})
	testenv.StartCaddy(t, g.caddyfile(cfg))
	t.Cleanup(func() { stopping = time.Now() })
	g.waitReady(t, 10*time.Second)
	return g
}

// stopBound is how long stopping Caddy may take once no request is in flight.
const stopBound = 2 * time.Second

// caddyfile is the config of cfg; the same cfg gives the same text (ports, prefix and
// database are the gateway's), so a reload changes only what cfg changes.
func (g *gateway) caddyfile(cfg gatewayConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n%s%s\n\tsaas {\n\t\tmongo_uri %q\n\t\tdatabase %s\n", testenv.CaddyGlobal(), cfg.global, g.mongoURI, g.database)
	if g.prefix != "" {
		fmt.Fprintf(&b, "\t\tredis_url %s\n\t\tredis_prefix %s\n", g.redisURL, g.prefix)
	}
	fmt.Fprintf(&b, "\t\tjwt_secret %s\n\t\tadmin_email %s\n\t\tadmin_password %s\n%s\n\t}\n}\n",
		testJWTSecret, adminEmail, adminPassword, cfg.options)
	fmt.Fprintf(&b, "\nhttp://127.0.0.1:%d {\n%s\n\tsaas_api\n}\n", g.port, cfg.apiSite)
	for _, s := range cfg.sites {
		p := g.ports[s.name]
		fmt.Fprintf(&b, "\nhttp://*.localhost:%d, http://127.0.0.1:%d {\n%s\n}\n", p, p,
			strings.ReplaceAll(s.body, "UPSTREAM", g.up.Addr))
	}
	return string(caddyfile.Format([]byte(b.String())))
}

func (g *gateway) reload(t *testing.T, cfg gatewayConfig) {
	t.Helper()
	testenv.ReloadCaddy(t, g.caddyfile(cfg))
	// The old config's servers closed the kept-alive connections; a request on one of them
	// could fail before the client notices.
	g.hc.CloseIdleConnections()
	g.apiClient.hc.CloseIdleConnections()
	g.waitReady(t, 10*time.Second)
}

// client returns a client of a tenant site, on its 127.0.0.1 address.
func (g *gateway) client(t testing.TB, site string) *apiClient {
	t.Helper()
	port, ok := g.ports[site]
	if !ok {
		t.Fatalf("no site %q in this gateway", site)
	}
	return &apiClient{base: fmt.Sprintf("http://127.0.0.1:%d", port), hc: g.hc}
}

// hostOf sets the Host of tenant on site, "<tenant>.localhost:<port>"; for tenant "" it keeps
// the site's bare 127.0.0.1 address, which has no subdomain.
func (g *gateway) hostOf(site, tenant string) reqOption {
	if tenant == "" {
		return func(*http.Request) {}
	}
	return withHost(fmt.Sprintf("%s.localhost:%d", tenant, g.ports[site]))
}

// get sends GET /echo to site for tenant (its subdomain; "" for none) with token (none if "").
func (g *gateway) get(t testing.TB, site, tenant, token string, opts ...reqOption) apiResponse {
	t.Helper()
	return g.client(t, site).do(t, "GET", "/echo", token, nil, append([]reqOption{g.hostOf(site, tenant)}, opts...)...)
}

// patchTenant changes a tenant as the platform admin.
func (g *gateway) patchTenant(t testing.TB, admin, id string, body map[string]string) {
	t.Helper()
	mustStatus(t, g.do(t, "PATCH", "/tenants/"+id, admin, body), http.StatusOK)
}

// rateLimitStatus is GET /rate-limit on the control API.
func (g *gateway) rateLimitStatus(t testing.TB, token string) apiResponse {
	t.Helper()
	r := g.do(t, "GET", "/rate-limit", token, nil)
	mustStatus(t, r, http.StatusOK)
	return r
}

// addHeader adds a value to a request header (a second call adds a second value).
func addHeader(key, value string) reqOption {
	return func(r *http.Request) { r.Header.Add(key, value) }
}

// addRawHeader adds a header under exactly the name given, not its canonical form.
func addRawHeader(key, value string) reqOption {
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
func headerInt(t testing.TB, r apiResponse, key string) int64 {
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
