package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
	"go.mongodb.org/mongo-driver/bson"
)

// ---------------------------------------------------------------------------------------------
// 4. Admin and tenant creation

func TestAdmin_BootstrappedAdminLogsInThroughTheDirectory(t *testing.T) {
	s := startAPI(t)
	pair := testenv.PairOf(t, s.Login(t, testenv.AdminEmail, testenv.AdminPassword, ""))
	c := parseAccess(t, pair.Access)
	if c["tid"] != "system" || c["role"] != "admin" {
		t.Errorf("admin token claims %v, want tid system, role admin", c)
	}
	me := s.Do(t, "GET", "/me", pair.Access, nil)
	if wantStatus(t, me, http.StatusOK) && (me.Str("role") != "admin" || me.Str("email") != testenv.AdminEmail || me.Str("tenant_id") != "system") {
		t.Errorf("admin GET /me = %s", me.Raw)
	}
	testenv.PairOf(t, s.Login(t, testenv.AdminEmail, testenv.AdminPassword, "system"))
	wantProblem(t, s.Login(t, testenv.AdminEmail, "wrong-admin-password", ""), http.StatusUnauthorized, "invalid_credentials")
	// "system" is the admins' pseudo-tenant, not a tenant anyone can sign up to.
	wantProblem(t, s.Signup(t, "intruder@x.test", testenv.Password, "system", ""), http.StatusUnprocessableEntity, "tenant_reserved")
}

func TestAdmin_CreateTenantInvitesItsFirstOwner(t *testing.T) {
	s := startAPI(t)
	admin := s.AdminToken(t)

	r := s.Do(t, "POST", "/tenants", admin, map[string]string{"tenant_name": "Acme Corp", "admin_email": "boss@acme.test"})
	mustStatus(t, r, http.StatusCreated)
	wantKeys(t, r, "message", "tenant_id", "invitation")
	if r.Str("message") != "Tenant created successfully." || r.Str("tenant_id") != "acme-corp" {
		t.Errorf("POST /tenants = %s", r.Raw)
	}
	inv := r.Obj("invitation")
	token, _ := inv["token"].(string)
	if token == "" || inv["email"] != "boss@acme.test" || inv["role"] != "owner" || inv["tenant_id"] != "acme-corp" || inv["expires_at"] == nil {
		t.Fatalf("invitation %v", inv)
	}
	tr := s.Do(t, "GET", "/tenants/acme-corp", admin, nil)
	if wantStatus(t, tr, http.StatusOK) && (tr.Str("name") != "Acme Corp" || tr.Str("status") != "active" || tr.Str("plan") != "free") {
		t.Errorf("GET /tenants/acme-corp = %s", tr.Raw)
	}

	// The invitation is the way in, for its email only.
	wantProblem(t, s.Signup(t, "boss@acme.test", testenv.Password, "acme-corp", ""), http.StatusForbidden, "invitation_required")
	wantProblem(t, s.Signup(t, "mole@acme.test", testenv.Password, "acme-corp", token), http.StatusForbidden, "invalid_invitation")
	su := s.Signup(t, "boss@acme.test", testenv.Password, "acme-corp", token)
	mustStatus(t, su, http.StatusCreated)
	if su.Str("role") != "owner" || su.Str("tenant_id") != "acme-corp" {
		t.Errorf("boss signup = %s", su.Raw)
	}
	boss := s.MustLogin(t, "boss@acme.test", "")
	if c := parseAccess(t, boss.Access); c["role"] != "owner" || c["tid"] != "acme-corp" {
		t.Errorf("boss claims %v", c)
	}
	if got := s.users(t, boss.Access, "acme-corp"); len(got) != 1 || got[su.Str("user_id")] != "owner" {
		t.Errorf("acme-corp users %v", got)
	}
}

func TestAdmin_CreateTenantRefusesBadNamesDuplicatesAndNonAdmins(t *testing.T) {
	s := startAPI(t)
	admin := s.AdminToken(t)
	f := s.NewTenant(t, "massive-dynamic")

	tests := []struct {
		name, tenantName, email string
		status                  int
		code                    string
	}{
		{"Reserved", "API", "x@x.test", http.StatusUnprocessableEntity, "tenant_reserved"},
		{"ReservedWww", "www", "x@x.test", http.StatusUnprocessableEntity, "tenant_reserved"},
		{"ReservedSystem", "System", "x@x.test", http.StatusUnprocessableEntity, "tenant_reserved"},
		{"TooShort", "a", "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"Empty", "", "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"NoLettersOrDigits", "!!!", "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"SlugTooLong", strings.Repeat("b", 64), "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"NameTooLong", strings.Repeat("!", 99) + "ok-name", "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"BadOwnerEmail", "Fine Name", "not-an-email", http.StatusUnprocessableEntity, "invalid_email"},
		{"Duplicate", "Massive Dynamic", "x@x.test", http.StatusConflict, "tenant_exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, s.Do(t, "POST", "/tenants", admin, map[string]string{"tenant_name": tt.tenantName, "admin_email": tt.email}), tt.status, tt.code)
		})
	}
	for _, tok := range []string{f.OwnerAccess, f.UserAccess} {
		wantProblem(t, s.Do(t, "POST", "/tenants", tok, map[string]string{"tenant_name": "Rogue", "admin_email": "r@rogue.test"}), http.StatusForbidden, "forbidden")
	}
	if ids := s.tenantIDs(t, admin); !slices.Equal(ids, []string{"massive-dynamic"}) {
		t.Errorf("tenants %v, want only massive-dynamic", ids)
	}
}

// ---------------------------------------------------------------------------------------------
// 6. Tenant isolation

func TestIsolation_TenantTokensNeverReachAnotherTenant(t *testing.T) {
	s := startAPI(t)
	a := s.NewTenant(t, "north")
	b := s.NewTenant(t, "south")
	db := s.store(t)

	bBefore := s.Do(t, "GET", "/tenants/south", b.OwnerAccess, nil)
	mustStatus(t, bBefore, http.StatusOK)

	type attempt struct {
		method, path string
		body         any
	}
	attempts := []attempt{
		{"GET", "/tenants/south", nil},
		{"PATCH", "/tenants/south", map[string]string{"name": "Hijacked"}},
		{"POST", "/tenants/south/invitations", map[string]string{"email": "spy@north.test", "role": "owner"}},
		{"GET", "/tenants/south/users", nil},
		{"PATCH", "/tenants/south/users/" + b.UserID, map[string]string{"role": "owner"}},
		{"PATCH", "/tenants/south/users/" + b.OwnerID, map[string]string{"role": "user"}},
	}
	hints := map[string][]testenv.Option{
		"NoHint":          nil,
		"HeaderNamesB":    {testenv.WithHeader("X-Tenant-ID", "south")},
		"SubdomainNamesB": {testenv.WithHost(fmt.Sprintf("south.localhost:%d", s.Opts.APIPort))},
	}
	for _, who := range []struct{ name, token string }{{"OwnerOfA", a.OwnerAccess}, {"UserOfA", a.UserAccess}} {
		for hintName, opts := range hints {
			for _, at := range attempts {
				t.Run(who.name+"/"+hintName+"/"+at.method+" "+at.path, func(t *testing.T) {
					wantProblem(t, s.Do(t, at.method, at.path, who.token, at.body, opts...), http.StatusForbidden, "forbidden")
				})
			}
		}
	}
	// B's user id through A's own path does not reach B's user.
	wantProblem(t, s.Do(t, "PATCH", "/tenants/north/users/"+b.UserID, a.OwnerAccess, map[string]string{"role": "owner"}),
		http.StatusNotFound, "user_not_found")

	// B is unchanged, as B's owner sees it.
	bAfter := s.Do(t, "GET", "/tenants/south", b.OwnerAccess, nil)
	if !bytes.Equal(bAfter.Raw, bBefore.Raw) {
		t.Errorf("tenant south changed:\nbefore %s\nafter  %s", bBefore.Raw, bAfter.Raw)
	}
	if got := s.users(t, b.OwnerAccess, "south"); len(got) != 2 || got[b.OwnerID] != "owner" || got[b.UserID] != "user" {
		t.Errorf("south users %v, want its owner and user unchanged", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := db.C("t_south_invitations").CountDocuments(ctx, bson.D{{Key: "email", Value: "spy@north.test"}}); err != nil || n != 0 {
		t.Errorf("south holds %d invitations for the spy (err %v), want 0", n, err)
	}

	// Owners list only their own tenant; users list nothing.
	if ids := s.tenantIDs(t, a.OwnerAccess); !slices.Equal(ids, []string{"north"}) {
		t.Errorf("owner of north lists %v, want [north]", ids)
	}
	if ids := s.tenantIDs(t, b.OwnerAccess); !slices.Equal(ids, []string{"south"}) {
		t.Errorf("owner of south lists %v, want [south]", ids)
	}
	if ids := s.tenantIDs(t, s.AdminToken(t)); !slices.Equal(ids, []string{"north", "south"}) {
		t.Errorf("admin lists %v, want [north south]", ids)
	}
}

// ---------------------------------------------------------------------------------------------
// 7. PATCH tenant and user roles

func TestPatchTenant_AdminSetsStatusAndPlanOwnerMayOnlyRename(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "gringotts")
	admin := s.AdminToken(t)
	path := "/tenants/gringotts"

	steps := []struct {
		name   string
		token  string
		body   any
		status int
		code   string            // for problems
		want   map[string]string // fields of the tenant afterwards ("" = absent)
	}{
		{"AdminSuspends", admin, map[string]string{"status": "suspended"}, 200, "", map[string]string{"status": "suspended"}},
		{"AdminReactivates", admin, map[string]string{"status": "active"}, 200, "", map[string]string{"status": "active"}},
		{"AdminOverridesPlan", admin, map[string]string{"plan": "pro"}, 200, "", map[string]string{"plan": "free", "plan_override": "pro"}},
		{"AdminUnknownPlan", admin, map[string]string{"plan": "platinum"}, 422, "unknown_plan", map[string]string{"plan_override": "pro"}},
		{"AdminBadStatus", admin, map[string]string{"status": "deleted"}, 422, "invalid_status", map[string]string{"status": "active"}},
		{"AdminBlankName", admin, map[string]string{"name": "   "}, 422, "invalid_tenant", map[string]string{"name": "gringotts"}},
		{"AdminNothingToChange", admin, map[string]string{}, 400, "bad_request", nil},
		{"AdminClearsOverride", admin, map[string]string{"plan": ""}, 200, "", map[string]string{"plan_override": ""}},
		{"OwnerRenames", f.OwnerAccess, map[string]string{"name": "Gringotts Bank"}, 200, "", map[string]string{"name": "Gringotts Bank"}},
		{"OwnerCannotSuspend", f.OwnerAccess, map[string]string{"status": "suspended"}, 403, "forbidden", map[string]string{"status": "active"}},
		{"OwnerCannotSetPlan", f.OwnerAccess, map[string]string{"plan": "pro"}, 403, "forbidden", map[string]string{"plan_override": ""}},
		{"OwnerCannotSneakStatusInARename", f.OwnerAccess, map[string]string{"name": "Sneaky", "status": "active"}, 403, "forbidden", map[string]string{"name": "Gringotts Bank"}},
		{"UserCannotRename", f.UserAccess, map[string]string{"name": "Mine"}, 403, "forbidden", map[string]string{"name": "Gringotts Bank"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := s.Do(t, "PATCH", path, st.token, st.body)
			if st.code != "" {
				wantProblem(t, r, st.status, st.code)
			} else if wantStatus(t, r, st.status) && r.Str("tenant_id") != "gringotts" {
				t.Errorf("PATCH answer %s", r.Raw)
			}
			got := s.Do(t, "GET", path, admin, nil)
			for k, v := range st.want {
				if got.Str(k) != v {
					t.Errorf("after %s: %s = %q, want %q (%s)", st.name, k, got.Str(k), v, got.Raw)
				}
			}
			owner := s.Do(t, "GET", path, f.OwnerAccess, nil)
			if got.Str("status") == "suspended" {
				// An admin's suspension shuts the tenant's members out of the API too.
				wantProblem(t, owner, http.StatusPaymentRequired, "tenant_suspended")
			} else if !bytes.Equal(owner.Raw, got.Raw) {
				t.Errorf("owner sees %s, admin sees %s", owner.Raw, got.Raw)
			}
		})
	}
	wantProblem(t, s.Do(t, "PATCH", "/tenants/no-such-tenant", admin, map[string]string{"status": "suspended"}), http.StatusNotFound, "tenant_not_found")
	wantProblem(t, s.Do(t, "GET", "/tenants/no-such-tenant", admin, nil), http.StatusNotFound, "tenant_not_found")
}

func TestPatchUser_OwnerChangesRolesButATenantKeepsAnOwner(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "dunder")
	userPath := "/tenants/dunder/users/" + f.UserID
	ownerPath := "/tenants/dunder/users/" + f.OwnerID

	wantProblem(t, s.Do(t, "PATCH", ownerPath, f.OwnerAccess, map[string]string{"role": "user"}), http.StatusConflict, "last_owner")
	for _, role := range []string{"admin", "", "root", "Owner"} {
		wantProblem(t, s.Do(t, "PATCH", userPath, f.OwnerAccess, map[string]string{"role": role}), http.StatusUnprocessableEntity, "invalid_role")
	}
	wantProblem(t, s.Do(t, "PATCH", "/tenants/dunder/users/usr_nobody", f.OwnerAccess, map[string]string{"role": "owner"}), http.StatusNotFound, "user_not_found")

	r := s.Do(t, "PATCH", userPath, f.OwnerAccess, map[string]string{"role": "owner"})
	if wantStatus(t, r, http.StatusOK) && (r.Str("role") != "owner" || r.Str("user_id") != f.UserID) {
		t.Errorf("promotion answer %s", r.Raw)
	}
	if _, leaked := r.Body["password_hash"]; leaked {
		t.Errorf("PATCH answer shows password_hash: %s", r.Raw)
	}
	if got := s.users(t, f.OwnerAccess, "dunder"); got[f.UserID] != "owner" {
		t.Errorf("users after promotion %v", got)
	}
	// A refresh carries the new role.
	promoted := testenv.PairOf(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}))
	if c := parseAccess(t, promoted.Access); c["role"] != "owner" {
		t.Errorf("refreshed role %v, want owner", c["role"])
	}
	mustStatus(t, s.Do(t, "GET", "/tenants/dunder/users", promoted.Access, nil), http.StatusOK)

	// Two owners: either may step down, but not both.
	r = s.Do(t, "PATCH", userPath, f.OwnerAccess, map[string]string{"role": "user"})
	if wantStatus(t, r, http.StatusOK) && r.Str("role") != "user" {
		t.Errorf("demotion answer %s", r.Raw)
	}
	mustStatus(t, s.Do(t, "PATCH", userPath, f.OwnerAccess, map[string]string{"role": "owner"}), http.StatusOK)
	mustStatus(t, s.Do(t, "PATCH", ownerPath, promoted.Access, map[string]string{"role": "user"}), http.StatusOK)
	wantProblem(t, s.Do(t, "PATCH", userPath, promoted.Access, map[string]string{"role": "user"}), http.StatusConflict, "last_owner")
	if got := s.users(t, promoted.Access, "dunder"); got[f.UserID] != "owner" || got[f.OwnerID] != "user" {
		t.Errorf("users at the end %v, want %s owner and %s user", got, f.UserID, f.OwnerID)
	}
}
