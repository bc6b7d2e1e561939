package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
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

// ---------------------------------------------------------------------------------------------
// 1. Refusals: every code of SPEC §4, as problem+json, never reaching the upstream

func TestGateway_RefusalsAreProblemsWithTheirCodesAndNeverReachTheUpstream(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "plan free {\n rate 1000/1h\n}",
		sites: []gatewaySite{
			{"gw", pipeline},
			{"owner", "saas_tenant\nsaas_auth {\n require_role owner\n}\nsaas_rate_limit\nreverse_proxy UPSTREAM"},
		},
	})
	acme := g.newTenant(t, "acme")
	globex := g.newTenant(t, "globex")
	admin := g.adminToken(t)
	secret := []byte(testJWTSecret)

	// What the refusals below differ from is admitted.
	admitted := []struct {
		name          string
		site, tenant  string
		token         string
		opts          []reqOption
		wantTenantHdr string
	}{
		{"Subdomain", "gw", "acme", acme.UserAccess, nil, "acme"},
		{"HeaderOnly", "gw", "", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", "acme")}, "acme"},
		{"HeaderEqualToSubdomainIgnoringCase", "gw", "acme", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", "ACME")}, "acme"},
		{"OwnerOnOwnerSite", "owner", "acme", acme.OwnerAccess, nil, "acme"},
		{"AdminOnOwnerSite", "owner", "globex", admin, nil, "globex"},
	}
	for _, a := range admitted {
		t.Run("Admits"+a.name, func(t *testing.T) {
			g.up.Reset()
			r := g.get(t, a.site, a.tenant, a.token, a.opts...)
			if wantStatus(t, r, http.StatusOK) && g.up.Count() == 1 {
				wantHeader(t, a.name, g.up.Last(t).Header, "X-Tenant-Id", a.wantTenantHdr)
			} else {
				t.Errorf("the upstream received %d requests, want 1", g.up.Count())
			}
		})
	}

	wrongSignature := accessToken(t, []byte("another-secret-of-at-least-32-bytes!!"), acme.UserID, "acme", "user", time.Now().Add(time.Hour))
	expired := accessToken(t, secret, acme.UserID, "acme", "user", time.Now().Add(-2*time.Minute))
	refusals := []struct {
		name         string
		site, tenant string
		token        string
		opts         []reqOption
		status       int
		code         string
	}{
		{"NoSubdomainNoHeader", "gw", "", acme.UserAccess, nil, 400, "tenant_missing"},
		{"EmptyHeader", "gw", "", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", " ")}, 400, "tenant_missing"},
		{"UnknownSubdomain", "gw", "initech", acme.UserAccess, nil, 404, "tenant_not_found"},
		{"UnknownHeader", "gw", "", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", "initech")}, 404, "tenant_not_found"},
		{"MalformedHeader", "gw", "", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", "Not A Tenant!")}, 404, "tenant_not_found"},
		{"MalformedHeaderOperator", "gw", "", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", `{"$ne":null}`)}, 404, "tenant_not_found"},
		{"SubdomainAndHeaderDiffer", "gw", "acme", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", "globex")}, 400, "tenant_conflict"},
		{"SubdomainAndUnknownHeaderDiffer", "gw", "acme", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", "initech")}, 400, "tenant_conflict"},
		{"TokenMissing", "gw", "acme", "", nil, 401, "invalid_token"},
		{"TokenGarbage", "gw", "acme", "not.a.jwt", nil, 401, "invalid_token"},
		{"TokenWrongSignature", "gw", "acme", wrongSignature, nil, 401, "invalid_token"},
		{"TokenExpired", "gw", "acme", expired, nil, 401, "invalid_token"},
		{"TokenNotBearer", "gw", "acme", "", []reqOption{withHeader("Authorization", "Basic "+acme.UserAccess)}, 401, "invalid_token"},
		{"TokenEmptyBearer", "gw", "acme", "", []reqOption{withHeader("Authorization", "Bearer ")}, 401, "invalid_token"},
		{"TokenOfAnotherTenant", "gw", "globex", acme.UserAccess, nil, 403, "tenant_mismatch"},
		{"OwnerTokenOfAnotherTenant", "owner", "globex", acme.OwnerAccess, nil, 403, "tenant_mismatch"},
		{"TokenOfAnotherTenantThroughHeader", "gw", "", acme.UserAccess, []reqOption{withHeader("X-Tenant-ID", "globex")}, 403, "tenant_mismatch"},
		{"RoleTooLow", "owner", "acme", acme.UserAccess, nil, 403, "forbidden"},
		{"RoleTooLowOtherTenant", "owner", "globex", globex.UserAccess, nil, 403, "forbidden"},
	}
	g.up.Reset()
	for _, rf := range refusals {
		t.Run("Refuses"+rf.name, func(t *testing.T) {
			r := g.get(t, rf.site, rf.tenant, rf.token, rf.opts...)
			if rf.code == "invalid_token" {
				wantUnauthenticated(t, r)
			} else {
				wantProblem(t, r, rf.status, rf.code)
				if h := r.Header.Get("WWW-Authenticate"); h != "" {
					t.Errorf("%v: WWW-Authenticate %q on a %s refusal", r, h, rf.code)
				}
			}
			if want := "urn:saasgate:error:" + rf.code; r.str("type") != want {
				t.Errorf("%v: type %q, want %q", r, r.str("type"), want)
			}
		})
	}
	if n := g.up.Count(); n != 0 {
		t.Errorf("refused requests reached the upstream %d times: %+v", n, g.up.Requests())
	}

	t.Run("SuspendedTenantIsRefusedUntilReactivated", func(t *testing.T) {
		g.patchTenant(t, admin, "acme", map[string]string{"status": "suspended"})
		g.up.Reset()
		for _, tc := range []struct {
			name   string
			tenant string
			token  string
			opts   []reqOption
		}{
			{"UserToken", "acme", acme.UserAccess, nil},
			{"NoToken", "acme", "", nil},
			{"Header", "", acme.OwnerAccess, []reqOption{withHeader("X-Tenant-ID", "acme")}},
		} {
			wantProblem(t, g.get(t, "gw", tc.tenant, tc.token, tc.opts...), http.StatusPaymentRequired, "tenant_suspended")
		}
		if n := g.up.Count(); n != 0 {
			t.Errorf("a suspended tenant's requests reached the upstream %d times", n)
		}
		// Another tenant is not affected.
		mustStatus(t, g.get(t, "gw", "globex", globex.UserAccess), http.StatusOK)

		g.patchTenant(t, admin, "acme", map[string]string{"status": "active"})
		mustStatus(t, g.get(t, "gw", "acme", acme.UserAccess), http.StatusOK)
	})
}

// ---------------------------------------------------------------------------------------------
// 2. Identity headers

func TestGateway_UpstreamGetsIdentityHeadersAndNeverTheClientsCopies(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "plan free {\n rate 1000/1h\n}\nplan pro {\n rate 2000/1h\n}",
		sites: []gatewaySite{
			{"gw", pipeline},
			{"optional", "saas_tenant\nsaas_auth {\n optional\n}\nsaas_rate_limit\nreverse_proxy UPSTREAM"},
		},
	})
	acme := g.newTenant(t, "acme")
	admin := g.adminToken(t)
	adminID := g.do(t, "GET", "/me", admin, nil).str("user_id")
	if adminID == "" {
		t.Fatal("no user_id for the admin in GET /me")
	}

	// What a client may try to pass off as its identity: several copies of each header.
	spoofed := []reqOption{
		addHeader("X-User-ID", "evil-user"), addHeader("X-User-ID", "evil-user-2"),
		addHeader("X-User-Role", "admin"), addHeader("X-User-Role", "owner"),
		addHeader("X-Tenant-Plan", "pro"), addHeader("X-Tenant-Plan", "enterprise"),
	}
	withTenantHeader := func(v string) []reqOption {
		return append([]reqOption{withHeader("X-Tenant-ID", v)}, spoofed...)
	}
	tests := []struct {
		name         string
		site, tenant string
		token        string
		opts         []reqOption
		// Values the upstream must get; "" means the header must be absent.
		userID, role string
	}{
		{"User", "gw", "acme", acme.UserAccess, nil, acme.UserID, "user"},
		{"Owner", "gw", "acme", acme.OwnerAccess, nil, acme.OwnerID, "owner"},
		{"Admin", "gw", "acme", admin, nil, adminID, "admin"},
		{"UserSpoofing", "gw", "acme", acme.UserAccess, spoofed, acme.UserID, "user"},
		{"UserSpoofingWithMatchingTenantHeader", "gw", "acme", acme.UserAccess, withTenantHeader("acme"), acme.UserID, "user"},
		{"UserThroughTenantHeaderSpoofing", "gw", "", acme.UserAccess, withTenantHeader("acme"), acme.UserID, "user"},
		{"OptionalAnonymousSpoofing", "optional", "acme", "", spoofed, "", ""},
		{"OptionalAnonymousThroughTenantHeader", "optional", "", "", withTenantHeader("acme"), "", ""},
		{"OptionalWithToken", "optional", "acme", acme.OwnerAccess, spoofed, acme.OwnerID, "owner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.up.Reset()
			r := g.get(t, tt.site, tt.tenant, tt.token, tt.opts...)
			if !wantStatus(t, r, http.StatusOK) {
				return
			}
			if n := g.up.Count(); n != 1 {
				t.Fatalf("the upstream received %d requests, want 1", n)
			}
			h := g.up.Last(t).Header
			wantIdentity(t, h, "acme", "free", tt.userID, tt.role)
		})
	}

	t.Run("OptionalStillRefusesAnInvalidToken", func(t *testing.T) {
		g.up.Reset()
		wantUnauthenticated(t, g.get(t, "optional", "acme", "not.a.jwt", spoofed...))
		expired := accessToken(t, []byte(testJWTSecret), acme.UserID, "acme", "user", time.Now().Add(-2*time.Minute))
		wantUnauthenticated(t, g.get(t, "optional", "acme", expired))
		if n := g.up.Count(); n != 0 {
			t.Errorf("refused requests reached the upstream %d times", n)
		}
	})
}

// wantIdentity checks the identity headers the upstream got: the tenant's, and the user's
// unless userID is "" (anonymous: both user headers absent).
func wantIdentity(t *testing.T, h http.Header, tenantID, plan, userID, role string) {
	t.Helper()
	wantHeader(t, "upstream", h, "X-Tenant-Id", tenantID)
	wantHeader(t, "upstream", h, "X-Tenant-Plan", plan)
	if userID == "" {
		wantHeader(t, "upstream", h, "X-User-Id")
		wantHeader(t, "upstream", h, "X-User-Role")
		return
	}
	wantHeader(t, "upstream", h, "X-User-Id", userID)
	wantHeader(t, "upstream", h, "X-User-Role", role)
}

// CGI-style upstreams (PHP-FPM, WSGI) read X_User_Id, x-user_id and X-User-Id alike (PHP also
// X.User.Id). Caddy drops headers with `_` or `.` unless the server lets them through
// (expected_underscore_headers, expected_dot_headers); when it does, the gateway still removes
// every client spelling of the identity headers.
func TestGateway_IdentityHeadersInOtherSpellingsNeverReachTheUpstream(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		global: "servers {\n expected_underscore_headers x_user_id x-user_id x_user_role x-tenant_plan x_tenant_id\n expected_dot_headers x.user.role\n}",
		sites: []gatewaySite{
			{"gw", pipeline},
			{"optional", "saas_tenant\nsaas_auth {\n optional\n}\nsaas_rate_limit\nreverse_proxy UPSTREAM"},
		},
	})
	acme := g.newTenant(t, "acme")
	spellings := []reqOption{
		addRawHeader("X_User_Id", "evil-user"), addRawHeader("x-user_id", "evil-user-2"),
		addRawHeader("X_USER_ROLE", "admin"), addRawHeader("X-Tenant_Plan", "pro"),
		addRawHeader("x_tenant_id", "globex"), addRawHeader("X.User.Role", "owner"),
	}
	for _, tt := range []struct {
		name, site, token string
		userID, role      string
	}{
		{"User", "gw", acme.UserAccess, acme.UserID, "user"},
		{"OptionalAnonymous", "optional", "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g.up.Reset()
			if !wantStatus(t, g.get(t, tt.site, "acme", tt.token, spellings...), http.StatusOK) {
				return
			}
			h := g.up.Last(t).Header
			for name, values := range h {
				if isIdentityAlias(name) {
					t.Errorf("upstream: %s = %q, a client's spelling of an identity header", name, values)
				}
			}
			wantIdentity(t, h, "acme", "free", tt.userID, tt.role)
		})
	}
}

// isIdentityAlias reports whether name is read as an identity header by a CGI-style upstream
// (case folded, `_` and `.` as `-`) without being the gateway's own spelling of it.
func isIdentityAlias(name string) bool {
	switch alias := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name)); alias {
	case "x-tenant-id", "x-tenant-plan", "x-user-id", "x-user-role":
		return name != http.CanonicalHeaderKey(alias)
	}
	return false
}

// ---------------------------------------------------------------------------------------------
// 3. Tenant sources

func TestGateway_TenantSourceArgumentsLimitWhereTheTenantIsRead(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		options: "plan free {\n rate 1000/1h\n}",
		sites: []gatewaySite{
			{"header", "saas_tenant header\nreverse_proxy UPSTREAM"},
			{"subdomain", "saas_tenant subdomain\nreverse_proxy UPSTREAM"},
		},
	})
	g.mustSignup(t, "owner@acme.test", "acme", "")
	g.mustSignup(t, "owner@globex.test", "globex", "")

	tests := []struct {
		name         string
		site, tenant string
		header       string // X-Tenant-ID sent; "" for none
		status       int
		code         string // for refusals
		want         string // X-Tenant-Id the upstream gets
	}{
		{"HeaderOnly/SubdomainIsIgnored", "header", "acme", "", 400, "tenant_missing", ""},
		{"HeaderOnly/HeaderWinsOverADifferentSubdomain", "header", "acme", "globex", 200, "", "globex"},
		{"HeaderOnly/UnknownSubdomainIsIgnored", "header", "initech", "acme", 200, "", "acme"},
		{"HeaderOnly/NoSubdomain", "header", "", "acme", 200, "", "acme"},
		{"HeaderOnly/UnknownHeader", "header", "acme", "initech", 404, "tenant_not_found", ""},
		{"SubdomainOnly/HeaderIsIgnored", "subdomain", "", "acme", 400, "tenant_missing", ""},
		{"SubdomainOnly/DifferentHeaderIsNoConflict", "subdomain", "acme", "globex", 200, "", "acme"},
		{"SubdomainOnly/UnknownHeaderIsIgnored", "subdomain", "globex", "initech", 200, "", "globex"},
		{"SubdomainOnly/UnknownSubdomain", "subdomain", "initech", "acme", 404, "tenant_not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.up.Reset()
			var opts []reqOption
			if tt.header != "" {
				opts = append(opts, withHeader("X-Tenant-ID", tt.header))
			}
			r := g.get(t, tt.site, tt.tenant, "", opts...)
			if tt.code != "" {
				wantProblem(t, r, tt.status, tt.code)
				if n := g.up.Count(); n != 0 {
					t.Errorf("a refused request reached the upstream")
				}
				return
			}
			if wantStatus(t, r, tt.status) && g.up.Count() == 1 {
				wantHeader(t, "upstream", g.up.Last(t).Header, "X-Tenant-Id", tt.want)
				wantHeader(t, "upstream", g.up.Last(t).Header, "X-Tenant-Plan", "free")
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// 4. Placeholders

func TestGateway_PlaceholdersCarryTenantUserAndRemaining(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		options: "plan free {\n rate 5000/1h\n}", // remaining counts above 1023 are formatted per request
		sites: []gatewaySite{{"placeholders", `route {
	saas_tenant
	saas_auth
	saas_rate_limit
	respond "{http.saas.tenant.id}|{http.saas.tenant.plan}|{http.saas.tenant.status}|{http.auth.user.id}|{http.saas.user.role}|{http.saas.ratelimit.remaining}"
}`}},
	})
	acme := g.newTenant(t, "acme")

	for i, tc := range []struct {
		token, want string
	}{
		{acme.UserAccess, "acme|free|active|" + acme.UserID + "|user|4999"},
		{acme.OwnerAccess, "acme|free|active|" + acme.OwnerID + "|owner|4998"},
	} {
		r := g.get(t, "placeholders", "acme", tc.token)
		if wantStatus(t, r, http.StatusOK) && string(r.Raw) != tc.want {
			t.Errorf("request %d answered %q, want %q", i+1, r.Raw, tc.want)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// 5. Exactness of the rate limit and its headers

func TestRateLimit_Redis_AdmitsExactlyTheBurstAndCountsDown(t *testing.T) {
	testRateLimitExactness(t, true)
}

func TestRateLimit_InProcess_AdmitsExactlyTheBurstAndCountsDown(t *testing.T) {
	testRateLimitExactness(t, false)
}

func testRateLimitExactness(t *testing.T, redis bool) {
	options := "plan free {\n rate 50/1h\n}"
	if redis {
		// With the default 50 ms bound, a burst of 200 requests on a busy 2-core machine makes
		// some Redis calls (or waits for a pooled connection) time out; on_limiter_error local
		// then decides them in process, from a full bucket, and admits more than the burst.
		// This test is about the atomicity of the Redis decision, so it gives Redis time.
		options += "\nredis_timeout 1s"
	}
	g := startGateway(t, gatewayConfig{
		redis:   redis,
		options: options,
		apiSite: "\tmetrics /metrics",
		sites:   []gatewaySite{{"gw", pipeline}},
	})
	countdown := g.newTenant(t, "countdown")
	stampede := g.newTenant(t, "stampede")
	const policy = `"free";q=50;w=3600`
	// wantStateInRedis checks that the decisions were Redis's, not an in-process fallback's.
	wantStateInRedis := func(t *testing.T, id string) {
		if !redis {
			return
		}
		key := g.prefix + "{" + id + "}:r:free"
		if n, err := testenv.RedisClient(t).Exists(context.Background(), key).Result(); err != nil || n != 1 {
			t.Errorf("Redis key %s: exists=%d err=%v; the limiter did not keep its state in Redis", key, n, err)
		}
	}

	t.Run("HeadersCountDownThenRefuse", func(t *testing.T) {
		g.up.Reset()
		for i := int64(1); i <= 50; i++ {
			r := g.get(t, "gw", "countdown", countdown.UserAccess)
			mustStatus(t, r, http.StatusOK)
			where := fmt.Sprintf("request %d", i)
			wantHeader(t, where, r.Header, "RateLimit-Policy", policy)
			wantHeader(t, where, r.Header, "X-RateLimit-Limit", "50")
			wantHeader(t, where, r.Header, "X-RateLimit-Remaining", strconv.FormatInt(50-i, 10))
			// Every admitted request costs 72 s (3600/50) of the bucket; the test takes far
			// less than a second.
			reset := headerInt(t, r, "X-RateLimit-Reset")
			if reset < 72*i-1 || reset > 72*i {
				t.Errorf("%s: X-RateLimit-Reset %d, want %d", where, reset, 72*i)
			}
			wantHeader(t, where, r.Header, "RateLimit", fmt.Sprintf(`"free";r=%d;t=%d`, 50-i, reset))
			if i == 1 {
				wantHeader(t, where, r.Header, "RateLimit", `"free";r=49;t=72`)
			}
			if r.Header.Get("Retry-After") != "" {
				t.Errorf("%s: Retry-After %q on an admitted request", where, r.Header.Get("Retry-After"))
			}
		}
		for i := 0; i < 3; i++ {
			r := g.get(t, "gw", "countdown", countdown.UserAccess)
			wantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
			wantHeader(t, "refusal", r.Header, "RateLimit-Policy", policy)
			wantHeader(t, "refusal", r.Header, "X-RateLimit-Limit", "50")
			wantHeader(t, "refusal", r.Header, "X-RateLimit-Remaining", "0")
			if ra := headerInt(t, r, "Retry-After"); ra < 70 || ra > 72 {
				t.Errorf("refusal: Retry-After %d, want 72 (one emission interval, 3600/50 s)", ra)
			}
			if reset := headerInt(t, r, "X-RateLimit-Reset"); reset < 3598 || reset > 3600 {
				t.Errorf("refusal: X-RateLimit-Reset %d, want 3600 (the whole bucket to refill)", reset)
			}
			if rl := r.Header.Get("RateLimit"); !strings.HasPrefix(rl, `"free";r=0;t=`) {
				t.Errorf("refusal: RateLimit %q, want \"free\";r=0;t=...", rl)
			}
		}
		if n := g.up.Count(); n != 50 {
			t.Errorf("the upstream received %d requests, want the 50 admitted", n)
		}
		wantStateInRedis(t, "countdown")
	})

	// Reading the status of a full bucket shows it full, every time: nothing to wait for.
	t.Run("StatusOfAFullBucket", func(t *testing.T) {
		var wrong []string
		for i := range 20 {
			r := g.rateLimitStatus(t, stampede.UserAccess)
			if num(t, r.Body, "requests_remaining") != 50 || num(t, r.Body, "reset_seconds") != 0 || num(t, r.Body, "limit") != 50 {
				wrong = append(wrong, fmt.Sprintf("read %d: %s", i+1, bytes.TrimSpace(r.Raw)))
			}
			if r.Body["quota"] != nil {
				t.Errorf("read %d: quota %v for a plan without one, want null", i+1, r.Body["quota"])
			}
		}
		if len(wrong) > 0 {
			t.Errorf("%d of 20 reads of an unused bucket are not requests_remaining 50, reset_seconds 0, limit 50:\n%s",
				len(wrong), strings.Join(wrong, "\n"))
		}
	})

	t.Run("ConcurrentRequestsAdmitExactlyTheBurst", func(t *testing.T) {
		g.up.Reset()
		c := g.client(t, "gw")
		host := g.hostOf("gw", "stampede")
		before := g.scrape(t)
		const n = 200
		statuses := make([]int, n)
		codes := make([]string, n)
		errs := make([]error, n)
		testenv.AtOnce(n, func(i int) {
			r, err := c.send("GET", "/echo", stampede.UserAccess, nil, host)
			statuses[i], codes[i], errs[i] = r.Status, r.str("code"), err
		})
		count := map[int]int{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			count[statuses[i]]++
			if statuses[i] == http.StatusTooManyRequests && codes[i] != "rate_limited" {
				t.Errorf("request %d: 429 with code %q, want rate_limited", i, codes[i])
			}
		}
		// A Redis call that fails or times out is decided by the in-process fallback
		// (on_limiter_error local), whose bucket for the tenant is still full.
		after := g.scrape(t)
		redisErrors := metricValue(after, "saasgate_limiter_redis_errors_total", nil) - metricValue(before, "saasgate_limiter_redis_errors_total", nil)
		if count[200] != 50 || count[429] != 150 || len(count) != 2 || redisErrors != 0 {
			t.Errorf("statuses %v, want exactly 50×200 and 150×429 (Redis errors during the burst: %v, want 0)", count, redisErrors)
		}
		reached := 0
		for _, req := range g.up.Requests() {
			if req.Header.Get("X-Tenant-Id") == "stampede" {
				reached++
			}
		}
		if reached != 50 {
			t.Errorf("the upstream received %d requests of the tenant, want 50", reached)
		}
		wantStateInRedis(t, "stampede")
	})

}

// ---------------------------------------------------------------------------------------------
// 6. Monthly quota

func TestQuota_RejectionsAndStatusReadsDoNotConsume(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "plan free {\n rate 1000/1s\n quota 5/month\n}",
		sites:   []gatewaySite{{"gw", pipeline}},
	})
	f := g.newTenant(t, "metered")
	periodEnd := nextMonthUTC(time.Now())

	wantStatusBody := func(t *testing.T, when string, used, remaining int64) {
		t.Helper()
		r := g.rateLimitStatus(t, f.UserAccess)
		if r.str("tenant_id") != "metered" || r.str("plan") != "free" {
			t.Errorf("%s: GET /rate-limit %s, want tenant metered on plan free", when, r.Raw)
		}
		if got := num(t, r.Body, "limit"); got != 1000 {
			t.Errorf("%s: limit %d, want 1000", when, got)
		}
		// What is left right now is the smaller of the bucket and the quota.
		if got := num(t, r.Body, "requests_remaining"); got != remaining {
			t.Errorf("%s: requests_remaining %d, want %d: %s", when, got, remaining, r.Raw)
		}
		if got := num(t, r.Body, "quota", "limit"); got != 5 {
			t.Errorf("%s: quota.limit %d, want 5", when, got)
		}
		if got := num(t, r.Body, "quota", "used"); got != used {
			t.Errorf("%s: quota.used %d, want %d: %s", when, got, used, r.Raw)
		}
		if got := num(t, r.Body, "quota", "remaining"); got != 5-used {
			t.Errorf("%s: quota.remaining %d, want %d", when, got, 5-used)
		}
		if got, _ := r.obj("quota")["period_end"].(string); got != periodEnd.Format(time.RFC3339) {
			t.Errorf("%s: quota.period_end %q, want %s", when, got, periodEnd.Format(time.RFC3339))
		}
	}

	t.Run("StatusBeforeAnyTrafficIsFullAndReadingItConsumesNothing", func(t *testing.T) {
		var wrong []int
		for i := range 10 {
			wantStatusBody(t, fmt.Sprintf("read %d", i+1), 0, 5)
			r := g.rateLimitStatus(t, f.UserAccess)
			if num(t, r.Body, "reset_seconds") != 0 {
				wrong = append(wrong, i+1)
			}
		}
		if len(wrong) > 0 {
			t.Errorf("reads %v of 10 before any traffic show a reset_seconds other than 0", wrong)
		}
		wantUnauthenticated(t, g.do(t, "GET", "/rate-limit", "", nil))
	})

	t.Run("QuotaAdmitsFiveThenRefusesUntilTheNextMonth", func(t *testing.T) {
		g.up.Reset()
		for i := int64(1); i <= 5; i++ {
			r := g.get(t, "gw", "metered", f.UserAccess)
			mustStatus(t, r, http.StatusOK)
			wantHeader(t, fmt.Sprintf("request %d", i), r.Header, "X-RateLimit-Remaining", strconv.FormatInt(5-i, 10))
		}
		wantStatusBody(t, "after the quota is used up", 5, 0)
		for i := range 10 {
			r := g.get(t, "gw", "metered", f.UserAccess)
			if !wantProblem(t, r, http.StatusTooManyRequests, "quota_exceeded") {
				continue
			}
			want := int64(math.Ceil(time.Until(periodEnd).Seconds()))
			if got := headerInt(t, r, "Retry-After"); got < want-5 || got > want+5 {
				t.Errorf("refusal %d: Retry-After %d, want %d (to %s)", i+1, got, want, periodEnd.Format(time.RFC3339))
			}
			wantHeader(t, "quota refusal", r.Header, "X-RateLimit-Remaining", "0")
			wantHeader(t, "quota refusal", r.Header, "X-RateLimit-Limit", "1000")
			wantHeader(t, "quota refusal", r.Header, "RateLimit-Policy", `"free";q=1000;w=1`)
		}
		wantStatusBody(t, "after 10 refused requests", 5, 0)
		if n := g.up.Count(); n != 5 {
			t.Errorf("the upstream received %d requests, want 5", n)
		}
		key := fmt.Sprintf("%s{metered}:q:%d", g.prefix, time.Date(periodEnd.Year(), periodEnd.Month()-1, 1, 0, 0, 0, 0, time.UTC).Unix())
		if v, err := testenv.RedisClient(t).Get(context.Background(), key).Result(); err != nil || v != "5" {
			t.Errorf("Redis quota counter %s = %q (err %v), want 5", key, v, err)
		}
	})
}

// ---------------------------------------------------------------------------------------------
// 7. Plan override

func TestPlanOverride_AppliesFromTheNextRequest(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "plan free {\n rate 50/1h\n}\nplan pro {\n name Pro\n rate 500/1h\n}",
		sites:   []gatewaySite{{"gw", pipeline}},
	})
	f := g.newTenant(t, "upgrader")
	admin := g.adminToken(t)

	check := func(t *testing.T, when, plan, limit, policy string) {
		t.Helper()
		g.up.Reset()
		r := g.get(t, "gw", "upgrader", f.UserAccess)
		if !wantStatus(t, r, http.StatusOK) || g.up.Count() != 1 {
			return
		}
		wantHeader(t, when, g.up.Last(t).Header, "X-Tenant-Plan", plan)
		wantHeader(t, when, r.Header, "X-RateLimit-Limit", limit)
		wantHeader(t, when, r.Header, "RateLimit-Policy", policy)
		if rl := r.Header.Get("RateLimit"); !strings.HasPrefix(rl, strconv.Quote(plan)+";r=") {
			t.Errorf("%s: RateLimit %q, want the %s policy", when, rl, plan)
		}
		st := g.rateLimitStatus(t, f.UserAccess)
		if st.str("plan") != plan || strconv.FormatInt(num(t, st.Body, "limit"), 10) != limit {
			t.Errorf("%s: GET /rate-limit %s, want plan %s limit %s", when, st.Raw, plan, limit)
		}
	}
	check(t, "before", "free", "50", `"free";q=50;w=3600`)
	g.patchTenant(t, admin, "upgrader", map[string]string{"plan": "pro"})
	check(t, "after the override", "pro", "500", `"pro";q=500;w=3600`)
	g.patchTenant(t, admin, "upgrader", map[string]string{"plan": ""})
	check(t, "after clearing it", "free", "50", `"free";q=50;w=3600`)
}

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
	f := g.newTenant(t, "reloader")
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
	if r := g.do(t, "GET", "/plans", "", nil); !strings.Contains(string(r.Raw), `"id":"extra"`) {
		t.Fatalf("the reloaded config is not in use: %v", r)
	}

	r := g.get(t, "gw", "reloader", f.UserAccess)
	mustStatus(t, r, http.StatusOK)
	wantHeader(t, "after the reload", r.Header, "X-RateLimit-Remaining", "9")
	wantHeader(t, "after the reload", r.Header, "X-RateLimit-Limit", "20")
}

// ---------------------------------------------------------------------------------------------
// 9. Metrics

// metricSample matches one sample line of the Prometheus text format.
var (
	metricSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)`)
	metricLabel  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

type metricLine struct {
	name   string
	labels map[string]string
	value  float64
}

func (g *gateway) scrape(t *testing.T) []metricLine {
	t.Helper()
	url := g.base + "/metrics"
	resp, err := g.hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, raw)
	}
	var out []metricLine
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := metricSample.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		ml := metricLine{name: m[1], labels: map[string]string{}, value: v}
		for _, l := range metricLabel.FindAllStringSubmatch(m[2], -1) {
			ml.labels[l[1]] = l[2]
		}
		out = append(out, ml)
	}
	return out
}

// metricValue is the value of the sample of name with exactly labels; 0 when absent.
func metricValue(lines []metricLine, name string, labels map[string]string) float64 {
	for _, l := range lines {
		if l.name != name || len(l.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if l.labels[k] != v {
				match = false
			}
		}
		if match {
			return l.value
		}
	}
	return 0
}

func TestMetrics_LimiterDecisionsByPlanAndResultWithoutTenantOrUserLabels(t *testing.T) {
	// A plan no other test uses: the counters live for the whole test process.
	g := startGateway(t, gatewayConfig{
		redis:   true,
		options: "default_plan observed\nplan observed {\n rate 3/1h\n}",
		apiSite: "\tmetrics /metrics",
		sites:   []gatewaySite{{"gw", pipeline}},
	})
	f := g.newTenant(t, "watched")
	allowed := map[string]string{"plan": "observed", "result": "allowed"}
	limited := map[string]string{"plan": "observed", "result": "rate_limited"}
	alerts := map[string]string{"kind": "rate_limited"}
	before := g.scrape(t)

	for i := range 5 {
		want := http.StatusOK
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		mustStatus(t, g.get(t, "gw", "watched", f.UserAccess), want)
	}

	after := g.scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"saasgate_limiter_decisions_total", allowed, 3},
		{"saasgate_limiter_decisions_total", limited, 2},
		{"saasgate_usage_alerts_total", alerts, 1}, // debounced: one alert for both refusals
	} {
		if d := metricValue(after, c.name, c.labels) - metricValue(before, c.name, c.labels); d != c.delta {
			t.Errorf("%s%v grew by %v, want %v", c.name, c.labels, d, c.delta)
		}
	}
	for _, name := range []string{"saasgate_limiter_redis_errors_total", "saasgate_limiter_breaker_open"} {
		found := false
		for _, l := range after {
			found = found || l.name == name
		}
		if !found {
			t.Errorf("metric %s is not exposed", name)
		}
	}

	// No label value names a tenant or a user, whatever the metric; saasgate's own carry no IP.
	forbidden := map[string]bool{f.ID: true, f.OwnerID: true, f.UserID: true, f.OwnerEmail: true, f.UserEmail: true}
	for _, l := range after {
		for k, v := range l.labels {
			if forbidden[v] {
				t.Errorf("metric %s has label %s=%q, a tenant or user", l.name, k, v)
			}
			if strings.HasPrefix(l.name, "saasgate_") && strings.Contains(v, "127.0.0.1") {
				t.Errorf("metric %s has label %s=%q, an IP", l.name, k, v)
			}
		}
	}
}

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
	f := g.newTenant(t, "errco")
	other := g.newTenant(t, "otherco")
	admin := g.adminToken(t)

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

	g.patchTenant(t, admin, "errco", map[string]string{"status": "suspended"})
	run(t, []step{{"Suspended", "errco", f.UserAccess, 402, "402 tenant_suspended"}})

	g.patchTenant(t, admin, "errco", map[string]string{"status": "active", "plan": "tiny"})
	run(t, []step{{"Reactivated", "errco", f.UserAccess, 200, ""}})
	r := g.get(t, "errors", "errco", f.UserAccess)
	if r.Status != http.StatusTooManyRequests || string(r.Raw) != "429 rate_limited" {
		t.Errorf("over the rate: %d %q, want 429 \"429 rate_limited\"", r.Status, r.Raw)
	}
	if ra := r.Header.Get("Retry-After"); ra == "" {
		t.Error("429 through handle_errors has no Retry-After")
	}
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
	g.mustSignup(t, "owner@stopper.test", "stopper", "")
	mustStatus(t, g.get(t, "gw", "stopper", "", withHeader("Authorization", "")), http.StatusUnauthorized)
}
