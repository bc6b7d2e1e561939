package caddymodule_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// startAPIWithBilling is startAPI with billing on (stripe-mock), so that the billing routes
// answer with their rules rather than 503 billing_disabled, and "team", a plan one can buy.
func startAPIWithBilling(t *testing.T) *apiServer {
	t.Helper()
	return startAPI(t, fmt.Sprintf(`stripe {
	secret_key %s
	webhook_secret %s
	api_base %s
	success_url https://app.roles.test/billing/done
}
plan team {
	rate 10/1s
	stripe_price price_team
}`, testenv.StripeMockKey, testenv.WebhookSecret, testenv.StripeMock(t)))
}

// suspendForNonPayment leaves tenant id as the billing scheduler does when a grace period ends
// unpaid (the scheduler runs on the wall clock, so it is not driven from here), then has the
// admin rename the tenant to its own name, so that every tenant cache hears of the change.
func (s *apiServer) suspendForNonPayment(t *testing.T, admin, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.store(t).C(store.CollTenants).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "billing.status", Value: "suspended"}}}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("suspending %s for non-payment: %v (%d matched)", id, err, res.MatchedCount)
	}
	name := s.Do(t, "GET", "/tenants/"+id, admin, nil).Str("name")
	mustStatus(t, s.Do(t, "PATCH", "/tenants/"+id, admin, map[string]string{"name": name}), http.StatusOK)
}

// ownerRoute is a call an owner of a tenant may make, and its status when they do.
type ownerRoute struct {
	method, path string
	body         any
	ok           int
}

// ownerRoutes are calls an owner of tenant id may make, one per kind of owner decision (userID
// is a user of the tenant).
func ownerRoutes(id, userID string) []ownerRoute {
	return []ownerRoute{
		{"PATCH", "/tenants/" + id + "/users/" + userID, map[string]string{"role": "owner"}, http.StatusOK},
		{"POST", "/tenants/" + id + "/invitations", map[string]string{"email": "new" + unique() + "@" + id + ".test", "role": "owner"}, http.StatusCreated},
		{"PATCH", "/tenants/" + id, map[string]string{"name": "Renamed " + unique()}, http.StatusOK},
		{"GET", "/tenants/" + id, nil, http.StatusOK},
		{"GET", "/tenants/" + id + "/users", nil, http.StatusOK},
		{"GET", "/subscriptions/current", nil, http.StatusOK},
		{"POST", "/subscriptions", map[string]string{"tenant_id": id, "plan_id": "team"}, http.StatusCreated},
	}
}

// An owner demoted to user keeps a token that says owner until it expires. The control plane
// reads the stored role instead: with that token the demoted owner cannot promote themselves
// back, invite, rename, read the tenant or its users, nor reach billing.
func TestRoles_ADemotedOwnersLiveTokenMakesNoOwnerDecision(t *testing.T) {
	s := startAPIWithBilling(t)
	f := s.NewTenant(t, "initech")
	mustStatus(t, s.Do(t, "PATCH", "/tenants/initech/users/"+f.UserID, f.OwnerAccess, map[string]string{"role": "owner"}), http.StatusOK)
	b := s.MustLogin(t, f.UserEmail, "initech") // B, now an owner, with a token that says so
	if c := parseAccess(t, b.Access); c["role"] != "owner" {
		t.Fatalf("B's token says %v, want owner", c["role"])
	}
	mustStatus(t, s.Do(t, "PATCH", "/tenants/initech/users/"+f.UserID, f.OwnerAccess, map[string]string{"role": "user"}), http.StatusOK)

	for _, rt := range ownerRoutes("initech", f.UserID) {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			wantProblem(t, s.Do(t, rt.method, rt.path, b.Access, rt.body), http.StatusForbidden, "forbidden")
		})
	}
	if got := s.users(t, f.OwnerAccess, "initech"); got[f.UserID] != "user" || got[f.OwnerID] != "owner" {
		t.Errorf("users afterwards %v, want %s still a user", got, f.UserID)
	}
	// What a user may do, B still may.
	if me := s.Do(t, "GET", "/me", b.Access, nil); wantStatus(t, me, http.StatusOK) && me.Str("role") != "user" {
		t.Errorf("GET /me as B = %s, want the stored role user", me.Raw)
	}
}

// A token outlives its account: once the caller is gone, owner and admin routes answer 401
// invalid_token, as for any token that names nobody.
func TestRoles_ADeletedCallersTokenIsInvalid(t *testing.T) {
	s := startAPIWithBilling(t)
	f := s.NewTenant(t, "hooli")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := s.store(t).C("t_hooli_users").DeleteOne(ctx, bson.D{{Key: "_id", Value: f.OwnerID}}); err != nil || res.DeletedCount != 1 {
		t.Fatalf("deleting the owner: %v", err)
	}
	for _, rt := range ownerRoutes("hooli", f.UserID) {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			wantUnauthenticated(t, s.Do(t, rt.method, rt.path, f.OwnerAccess, rt.body))
		})
	}
}

// A tenant suspended by an admin: its owner's calls answer 402 tenant_suspended (the gateway's
// answer for a suspended tenant) until the admin reactivates it. A tenant suspended by billing
// is another matter: its owner still reads and manages it, and reaches the billing routes to pay.
func TestRoles_AnAdminSuspendedTenantsOwnerIsRefusedABillingSuspendedOneIsNot(t *testing.T) {
	s := startAPIWithBilling(t)
	f := s.NewTenant(t, "pied-piper")
	admin := s.AdminToken(t)

	mustStatus(t, s.Do(t, "PATCH", "/tenants/pied-piper", admin, map[string]string{"status": "suspended"}), http.StatusOK)
	for _, rt := range ownerRoutes("pied-piper", f.UserID) {
		t.Run("AdminSuspended/"+rt.method+" "+rt.path, func(t *testing.T) {
			wantProblem(t, s.Do(t, rt.method, rt.path, f.OwnerAccess, rt.body), http.StatusPaymentRequired, "tenant_suspended")
		})
	}
	// The admin is not a member of the tenant, and still manages it.
	mustStatus(t, s.Do(t, "GET", "/tenants/pied-piper/users", admin, nil), http.StatusOK)
	mustStatus(t, s.Do(t, "PATCH", "/tenants/pied-piper", admin, map[string]string{"status": "active"}), http.StatusOK)
	mustStatus(t, s.Do(t, "GET", "/tenants/pied-piper", f.OwnerAccess, nil), http.StatusOK)

	s.suspendForNonPayment(t, admin, "pied-piper")
	for _, rt := range ownerRoutes("pied-piper", f.UserID) {
		if rt.path == "/subscriptions" {
			continue // a Checkout is for tenants that have no subscription yet
		}
		t.Run("BillingSuspended/"+rt.method+" "+rt.path, func(t *testing.T) {
			wantStatus(t, s.Do(t, rt.method, rt.path, f.OwnerAccess, rt.body), rt.ok)
		})
	}
	if r := s.Do(t, "GET", "/subscriptions/current", f.OwnerAccess, nil); r.Str("status") != "suspended" {
		t.Errorf("the billing-suspended tenant's subscription = %s, want status suspended", r.Raw)
	}
}

// GET /me shows every member the tenant as {tenant_id, name, status, plan}: no Stripe
// customer or subscription, no admin override (the plan shown is the one that applies).
func TestMe_ShowsTheTenantWithoutBillingIdentifiers(t *testing.T) {
	s := startAPIWithBilling(t)
	f := s.NewTenant(t, "aviato")
	admin := s.AdminToken(t)
	mustStatus(t, s.Do(t, "POST", "/subscriptions", f.OwnerAccess, map[string]string{"tenant_id": "aviato", "plan_id": "team"}), http.StatusCreated)
	mustStatus(t, s.Do(t, "PATCH", "/tenants/aviato", admin, map[string]string{"plan": "pro"}), http.StatusOK)
	full := s.Do(t, "GET", "/tenants/aviato", admin, nil)
	if full.Obj("billing")["customer_id"] == nil || full.Str("plan_override") != "pro" {
		t.Fatalf("the tenant has no Stripe customer or override to hide: %s", full.Raw)
	}

	for _, who := range []struct{ name, token string }{{"User", f.UserAccess}, {"Owner", f.OwnerAccess}} {
		t.Run(who.name, func(t *testing.T) {
			me := s.Do(t, "GET", "/me", who.token, nil)
			mustStatus(t, me, http.StatusOK)
			got := me.Obj("tenant")
			want := map[string]any{"tenant_id": "aviato", "name": "aviato", "status": "active", "plan": "pro"}
			if len(got) != len(want) {
				t.Errorf("GET /me tenant has keys %v, want exactly %v: %s", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)), me.Raw)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("GET /me tenant.%s = %v, want %v: %s", k, got[k], v, me.Raw)
				}
			}
		})
	}
}
