package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
)

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
	acme := g.NewTenant(t, "acme")
	admin := g.AdminToken(t)
	adminID := g.Do(t, "GET", "/me", admin, nil).Str("user_id")
	if adminID == "" {
		t.Fatal("no user_id for the admin in GET /me")
	}

	// What a client may try to pass off as its identity: several copies of each header.
	spoofed := []testenv.Option{
		addHeader("X-User-ID", "evil-user"), addHeader("X-User-ID", "evil-user-2"),
		addHeader("X-User-Role", "admin"), addHeader("X-User-Role", "owner"),
		addHeader("X-Tenant-Plan", "pro"), addHeader("X-Tenant-Plan", "enterprise"),
	}
	withTenantHeader := func(v string) []testenv.Option {
		return append([]testenv.Option{testenv.WithHeader("X-Tenant-ID", v)}, spoofed...)
	}
	tests := []struct {
		name         string
		site, tenant string
		token        string
		opts         []testenv.Option
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
		expired := accessToken(t, []byte(testenv.JWTSecret), acme.UserID, "acme", "user", time.Now().Add(-2*time.Minute))
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
	acme := g.NewTenant(t, "acme")
	spellings := []testenv.Option{
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
	g.MustSignup(t, "owner@acme.test", "acme", "")
	g.MustSignup(t, "owner@globex.test", "globex", "")

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
			var opts []testenv.Option
			if tt.header != "" {
				opts = append(opts, testenv.WithHeader("X-Tenant-ID", tt.header))
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
	acme := g.NewTenant(t, "acme")

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
