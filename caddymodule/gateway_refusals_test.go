package caddymodule_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
)

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
	acme := g.NewTenant(t, "acme")
	globex := g.NewTenant(t, "globex")
	admin := g.AdminToken(t)
	secret := []byte(testenv.JWTSecret)

	// What the refusals below differ from is admitted.
	admitted := []struct {
		name          string
		site, tenant  string
		token         string
		opts          []testenv.Option
		wantTenantHdr string
	}{
		{"Subdomain", "gw", "acme", acme.UserAccess, nil, "acme"},
		{"HeaderOnly", "gw", "", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "acme")}, "acme"},
		{"HeaderEqualToSubdomainIgnoringCase", "gw", "acme", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "ACME")}, "acme"},
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
		opts         []testenv.Option
		status       int
		code         string
	}{
		{"NoSubdomainNoHeader", "gw", "", acme.UserAccess, nil, 400, "tenant_missing"},
		{"EmptyHeader", "gw", "", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", " ")}, 400, "tenant_missing"},
		{"UnknownSubdomain", "gw", "initech", acme.UserAccess, nil, 404, "tenant_not_found"},
		{"UnknownHeader", "gw", "", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "initech")}, 404, "tenant_not_found"},
		{"MalformedHeader", "gw", "", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "Not A Tenant!")}, 404, "tenant_not_found"},
		{"MalformedHeaderOperator", "gw", "", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", `{"$ne":null}`)}, 404, "tenant_not_found"},
		{"SubdomainAndHeaderDiffer", "gw", "acme", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "globex")}, 400, "tenant_conflict"},
		{"SubdomainAndUnknownHeaderDiffer", "gw", "acme", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "initech")}, 400, "tenant_conflict"},
		{"TokenMissing", "gw", "acme", "", nil, 401, "invalid_token"},
		{"TokenGarbage", "gw", "acme", "not.a.jwt", nil, 401, "invalid_token"},
		{"TokenWrongSignature", "gw", "acme", wrongSignature, nil, 401, "invalid_token"},
		{"TokenExpired", "gw", "acme", expired, nil, 401, "invalid_token"},
		{"TokenNotBearer", "gw", "acme", "", []testenv.Option{testenv.WithHeader("Authorization", "Basic "+acme.UserAccess)}, 401, "invalid_token"},
		{"TokenEmptyBearer", "gw", "acme", "", []testenv.Option{testenv.WithHeader("Authorization", "Bearer ")}, 401, "invalid_token"},
		{"TokenOfAnotherTenant", "gw", "globex", acme.UserAccess, nil, 403, "tenant_mismatch"},
		{"OwnerTokenOfAnotherTenant", "owner", "globex", acme.OwnerAccess, nil, 403, "tenant_mismatch"},
		{"TokenOfAnotherTenantThroughHeader", "gw", "", acme.UserAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "globex")}, 403, "tenant_mismatch"},
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
			if want := "urn:saasgate:error:" + rf.code; r.Str("type") != want {
				t.Errorf("%v: type %q, want %q", r, r.Str("type"), want)
			}
		})
	}
	if n := g.up.Count(); n != 0 {
		t.Errorf("refused requests reached the upstream %d times: %+v", n, g.up.Requests())
	}

	t.Run("SuspendedTenantIsRefusedUntilReactivated", func(t *testing.T) {
		g.PatchTenant(t, admin, "acme", map[string]string{"status": "suspended"})
		g.up.Reset()
		for _, tc := range []struct {
			name   string
			tenant string
			token  string
			opts   []testenv.Option
		}{
			{"UserToken", "acme", acme.UserAccess, nil},
			{"NoToken", "acme", "", nil},
			{"Header", "", acme.OwnerAccess, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "acme")}},
		} {
			wantProblem(t, g.get(t, "gw", tc.tenant, tc.token, tc.opts...), http.StatusPaymentRequired, "tenant_suspended")
		}
		if n := g.up.Count(); n != 0 {
			t.Errorf("a suspended tenant's requests reached the upstream %d times", n)
		}
		// Another tenant is not affected.
		mustStatus(t, g.get(t, "gw", "globex", globex.UserAccess), http.StatusOK)

		g.PatchTenant(t, admin, "acme", map[string]string{"status": "active"})
		mustStatus(t, g.get(t, "gw", "acme", acme.UserAccess), http.StatusOK)
	})
}
