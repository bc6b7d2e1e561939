package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
	"go.mongodb.org/mongo-driver/bson"
)

// ---------------------------------------------------------------------------------------------
// 8. Audit

type auditEntry struct {
	TenantID  string    `bson:"tenant_id"`
	Time      time.Time `bson:"time"`
	ActorID   string    `bson:"actor_id"`
	ActorRole string    `bson:"actor_role"`
	Action    string    `bson:"action"`
	Target    string    `bson:"target"`
	IP        string    `bson:"ip"`
	RequestID string    `bson:"request_id"`
	Outcome   string    `bson:"outcome"`
	Detail    bson.M    `bson:"detail"`
}

func readAudit(t *testing.T, db *store.DB, tenantID string) []auditEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cur, err := db.C("t_"+tenantID+"_audit").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEntry
	if err := cur.All(ctx, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAudit_SignupLoginAndRoleChangesAreRecordedInTheTenantsCollection(t *testing.T) {
	s := startAPI(t)
	start := time.Now().Add(-time.Second)
	f := s.NewTenant(t, "monarch") // owner signup, owner login, invite, user signup, user login
	wantProblem(t, s.Login(t, f.UserEmail, "wrong-password", "monarch"), http.StatusUnauthorized, "invalid_credentials")
	mustStatus(t, s.Do(t, "PATCH", "/tenants/monarch/users/"+f.UserID, f.OwnerAccess, map[string]string{"role": "owner"}), http.StatusOK)
	wantProblem(t, s.Login(t, "stranger@nowhere.test", "wrong-password", ""), http.StatusUnauthorized, "invalid_credentials")
	next := testenv.PairOf(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.OwnerRefresh}))
	wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.OwnerRefresh}), http.StatusUnauthorized, "invalid_token")
	mustStatus(t, s.Do(t, "POST", "/auth/logout", next.Access, nil), http.StatusNoContent)

	db := s.store(t)
	entries := readAudit(t, db, "monarch")
	find := func(action, outcome, target string) *auditEntry {
		for i := range entries {
			e := &entries[i]
			if e.Action == action && e.Outcome == outcome && e.Target == target {
				return e
			}
		}
		t.Errorf("no %s %s entry for target %s in t_monarch_audit; entries:\n%+v", action, outcome, target, entries)
		return nil
	}
	requestIDs := map[string]string{}
	check := func(name string, e *auditEntry, actorID, actorRole string) {
		if e == nil {
			return
		}
		if e.TenantID != "monarch" || e.ActorID != actorID || e.ActorRole != actorRole || e.IP != "127.0.0.1" || e.RequestID == "" ||
			e.Time.Before(start) || e.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("%s entry %+v: want tenant monarch, actor %q (%s), ip 127.0.0.1, a request id and a recent time", name, *e, actorID, actorRole)
		}
		if prev, dup := requestIDs[e.RequestID]; dup {
			t.Errorf("%s and %s entries share request id %q", prev, name, e.RequestID)
		}
		requestIDs[e.RequestID] = name
	}
	check("owner signup", find("account.signup", "success", f.OwnerID), f.OwnerID, "owner")
	check("user signup", find("account.signup", "success", f.UserID), f.UserID, "user")
	check("owner login", find("auth.login", "success", f.OwnerID), f.OwnerID, "owner")
	check("user login", find("auth.login", "success", f.UserID), f.UserID, "user")
	check("invitation", find("tenant.invite", "success", f.UserEmail), f.OwnerID, "owner")
	// A failed login has no authenticated actor: the account it was aimed at is the target.
	check("failed login", find("auth.login", "failure", f.UserID), "", "")
	check("refresh reuse", find("auth.refresh_reuse", "denied", f.OwnerID), f.OwnerID, "")
	check("logout", find("auth.logout", "success", f.OwnerID), f.OwnerID, "owner")
	if e := find("user.role_change", "success", f.UserID); e != nil {
		check("role change", e, f.OwnerID, "owner")
		if e.Detail["from"] != "user" || e.Detail["to"] != "owner" {
			t.Errorf("role change detail %v, want from user to owner", e.Detail)
		}
	}
	if e := find("tenant.create", "success", "monarch"); e != nil && (e.ActorID != f.OwnerID || e.IP != "127.0.0.1") {
		t.Errorf("tenant.create entry %+v", *e)
	}

	// A login for an email no tenant knows is recorded on the platform's own log.
	found := false
	for _, e := range readAudit(t, db, "system") {
		if e.Action == "auth.login" && e.Outcome == "failure" && e.IP == "127.0.0.1" && e.RequestID != "" && e.Detail["email"] == "stranger@nowhere.test" {
			found = true
		}
	}
	if !found {
		t.Error("no failed-login entry for stranger@nowhere.test in t_system_audit")
	}
	// Nothing of monarch leaked into another tenant's log.
	for _, e := range readAudit(t, db, "system") {
		if e.Target == f.UserID || e.Target == f.OwnerID {
			t.Errorf("t_system_audit holds a monarch entry: %+v", e)
		}
	}
}
