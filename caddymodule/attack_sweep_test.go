package caddymodule_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/control/identity"
)

// The BOLA and BFLA sweeps walk api.Routes(), the route table as routes.go registers it: a
// route added there is attacked here without being listed anywhere else. A route with a path
// parameter the sweeps cannot fill (pathOf) fails them until pathOf learns it.

// sweepBodies are bodies that pass a route's own validation, so the answer shows the access
// rule rather than a 400 for the body; every other route gets {} (or no body when it reads
// none).
var sweepBodies = map[string]func(s *sweepEnv) any{
	"POST /tenants/{id}/invitations": func(*sweepEnv) any {
		return map[string]string{"email": "sweep" + unique() + "@victim.test", "role": "user"}
	},
	"PATCH /tenants/{id}":                         func(*sweepEnv) any { return map[string]string{"name": "Swept " + unique()} },
	"PATCH /tenants/{id}/users/{uid}":             func(*sweepEnv) any { return map[string]string{"role": "user"} },
	"POST /tenants/{id}/webhook-endpoints":        func(s *sweepEnv) any { return map[string]any{"url": s.receiver} },
	"PATCH /tenants/{id}/webhook-endpoints/{eid}": func(*sweepEnv) any { return map[string]any{"enabled": true} },
	"POST /tenants/{id}/webhook-endpoints/{eid}/recover": func(*sweepEnv) any {
		return map[string]any{"since": "2026-01-01T00:00:00Z"}
	},
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// pathOf fills a route's pattern with real ids of the victim tenant. fresh asks for an
// endpoint of its own, for a request that may change or delete it.
func (s *sweepEnv) pathOf(t *testing.T, pattern string, fresh bool) (method, path string) {
	return s.pathIn(t, pattern, fresh, s.victim.ID)
}

// pathIn is pathOf with tenantID for {id}: the victim's other ids under another tenant.
func (s *sweepEnv) pathIn(t *testing.T, pattern string, fresh bool, tenantID string) (method, path string) {
	t.Helper()
	method, path, _ = strings.Cut(pattern, " ")
	path = pathParam.ReplaceAllStringFunc(path, func(p string) string {
		switch p {
		case "{id}":
			return tenantID
		case "{uid}":
			return s.victim.UserID
		case "{eid}":
			if fresh {
				return s.newEndpoint(t)
			}
			return s.endpointID
		case "{did}":
			return s.deliveryID
		}
		t.Fatalf("%s: the sweeps have no value for %s: add one to pathOf", pattern, p)
		return ""
	})
	return method, path
}

func (s *sweepEnv) bodyOf(route string) any {
	if b, ok := sweepBodies[route]; ok {
		return b(s)
	}
	if m, _, _ := strings.Cut(route, " "); m == "GET" || m == "DELETE" {
		return nil
	}
	return map[string]any{}
}

func TestAttack_BOLA_AnotherTenantReachesNothingOfTheVictims(t *testing.T) {
	s := startSweep(t)
	swept := 0
	for _, rt := range api.Routes() {
		if !strings.Contains(rt.Pattern, "{id}") {
			continue
		}
		swept++
		attacks := []struct{ name, token, tenant string }{
			{"attacker's owner", s.attacker.OwnerAccess, s.victim.ID},
			{"attacker's user", s.attacker.UserAccess, s.victim.ID},
		}
		if len(pathParam.FindAllString(rt.Pattern, -1)) > 1 {
			// The victim's user, endpoint or delivery under the attacker's own tenant.
			attacks = append(attacks, struct{ name, token, tenant string }{
				"attacker's owner in its own tenant", s.attacker.OwnerAccess, s.attacker.ID})
		}
		for _, who := range attacks {
			t.Run(rt.Pattern+"/"+who.name, func(t *testing.T) {
				method, path := s.pathIn(t, rt.Pattern, false, who.tenant)
				before := s.dump(t)
				r := s.do(t, method, path, who.token, s.bodyOf(rt.Pattern))
				if r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
					t.Errorf("%v; want 403 or 404", r)
				}
				wantSameStore(t, r.Method+" "+r.Path, before, s.dump(t))
			})
		}
	}
	if swept == 0 {
		t.Fatal("api.Routes() lists no {id} route")
	}
}

// sweepRole is a caller of the BFLA sweep.
type sweepRole struct {
	name     string
	token    string
	role     identity.Role // "" for anonymous
	stranger bool          // of another tenant than the victim's
}

// denied says how the access rules answer role on rt: "" lets it through (to whatever the
// route answers), else "401", "403" or "403|404" (another tenant's resource).
func denied(rt api.Route, who sweepRole) string {
	switch {
	case rt.MinRole == "":
		return ""
	case who.role == "":
		return "401"
	case !who.role.AtLeast(rt.MinRole):
		return "403"
	case who.stranger && strings.Contains(rt.Pattern, "{id}"):
		return "403|404"
	}
	return ""
}

func TestAttack_BFLA_EachRoleGetsWhatTheRoutesMinimumRoleSays(t *testing.T) {
	s := startSweep(t)
	roles := []sweepRole{
		{"anonymous", "", "", false},
		{"user", s.victim.UserAccess, identity.RoleUser, false},
		{"another tenant's owner", s.attacker.OwnerAccess, identity.RoleOwner, true},
		{"owner", s.victim.OwnerAccess, identity.RoleOwner, false},
		{"admin", s.admin, identity.RoleAdmin, false},
	}
	routes := api.Routes()
	if len(routes) == 0 {
		t.Fatal("api.Routes() is empty")
	}
	for _, rt := range routes {
		for _, who := range roles {
			t.Run(rt.Pattern+"/"+who.name, func(t *testing.T) {
				want := denied(rt, who)
				method, path := s.pathOf(t, rt.Pattern, want == "")
				var before map[string][]string
				if want != "" {
					before = s.dump(t)
				}
				r := s.do(t, method, path, who.token, s.bodyOf(rt.Pattern))
				if want != "" {
					wantSameStore(t, r.Method+" "+r.Path+" by the "+who.name, before, s.dump(t))
				}
				switch want {
				case "401":
					wantUnauthenticated(t, r)
				case "403":
					wantProblem(t, r, http.StatusForbidden, "forbidden")
				case "403|404":
					if r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
						t.Errorf("%v; want 403 or 404", r)
					}
				default:
					// Through the access rules: the route's own answer, which may refuse the
					// body (an anonymous route its credentials too) but never a caller the
					// route admits, nor miss the victim's real resources.
					// The access rules refuse with these codes; a route's own 401 or 403 (a
					// wrong MFA code, say) has codes of its own.
					refused := (r.Status == http.StatusUnauthorized && r.Code() == "invalid_token") ||
						(r.Status == http.StatusForbidden && r.Code() == "forbidden")
					if (refused && rt.MinRole != "") || r.Status == http.StatusNotFound || r.Status >= 500 {
						t.Errorf("%v; want the route's own answer for the %s", r, who.name)
					}
				}
			})
		}
	}
}
