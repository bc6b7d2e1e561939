package caddymodule_test

import (
	"net/http"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// massFields are the fields a caller must never set through a body: who they are, whose data
// it is, what they pay, and what only the store assigns.
var massFields = map[string]any{
	"role":       "admin",
	"tenant_id":  "attacker",
	"plan":       "pro",
	"status":     "suspended",
	"billing":    map[string]any{"status": "active", "plan": "pro"},
	"mfa":        map[string]any{"enabled": false},
	"_id":        "chosen_id",
	"created_at": "2001-01-01T00:00:00Z",
}

// with returns base plus one field.
func with(base map[string]any, key string, value any) map[string]any {
	out := map[string]any{key: value}
	for k, v := range base {
		out[k] = v
	}
	return out
}

func TestAttack_MassAssignment_RefusedAndNothingStored(t *testing.T) {
	s := startSweep(t)
	inv := s.MustInvite(t, s.victim.OwnerAccess, "victim", "joiner@victim.test", "user")
	s.secret("an invitation token", inv)
	type target struct {
		name, method, path, token string
		base                      map[string]any
		fields                    []string // the fields it must refuse; nil for all of massFields
	}
	targets := []target{
		{"signup for a new tenant", "POST", "/auth/signup", "",
			map[string]any{"email": "mass@mass.test", "password": testenv.Password, "tenant": "mass"}, nil},
		{"signup with an invitation", "POST", "/auth/signup", "",
			map[string]any{"email": "joiner@victim.test", "password": testenv.Password, "tenant": "victim", "invite_token": inv}, nil},
		// An owner may rename the tenant, but not choose its plan or status (billing and the
		// platform admin do).
		{"owner patching the tenant", "PATCH", "/tenants/victim", s.victim.OwnerAccess,
			map[string]any{"name": "Renamed"}, nil},
		// role is the point of this route: an owner may not make an admin.
		{"owner patching a user", "PATCH", "/tenants/victim/users/" + s.victim.UserID, s.victim.OwnerAccess,
			map[string]any{}, nil},
		{"owner inviting", "POST", "/tenants/victim/invitations", s.victim.OwnerAccess,
			map[string]any{"email": "invited@victim.test"}, nil},
		{"owner creating an endpoint", "POST", "/tenants/victim/webhook-endpoints", s.victim.OwnerAccess,
			map[string]any{"url": s.receiver}, append(keys(massFields), "secret")},
		{"owner patching an endpoint", "PATCH", "/tenants/victim/webhook-endpoints/" + s.endpointID, s.victim.OwnerAccess,
			map[string]any{"description": "patched"}, append(keys(massFields), "secret")},
	}
	for _, tg := range targets {
		fields := tg.fields
		if fields == nil {
			fields = keys(massFields)
		}
		for _, f := range fields {
			t.Run(tg.name+"/"+f, func(t *testing.T) {
				v, ok := massFields[f]
				if !ok {
					v = "whsec_chosen_by_the_caller"
				}
				before := s.dump(t)
				r := s.do(t, tg.method, tg.path, tg.token, with(tg.base, f, v))
				switch r.Status {
				case http.StatusBadRequest, http.StatusForbidden, http.StatusUnprocessableEntity:
				default:
					t.Errorf("%v; want it refused (400, 403 or 422)", r)
				}
				wantSameStore(t, tg.name+" with "+f, before, s.dump(t))
			})
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
