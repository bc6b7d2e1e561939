package caddymodule_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/internal/testenv"
)

// ---------------------------------------------------------------------------------------------
// 5. RBAC: every route by role

// rbacSignedWebhook is a Stripe event body that the RBAC test sends signed with the
// configured webhook secret.
type rbacSignedWebhook []byte

func TestRBAC_EveryRouteAnswersEachRoleAsItsMinimumRoleSays(t *testing.T) {
	// Billing on (stripe-mock), so that the billing routes answer their role rules rather
	// than 503 billing_disabled; "team" is a plan one can buy.
	s := startAPI(t, fmt.Sprintf(`stripe {
	secret_key %s
	webhook_secret %s
	api_base %s
	success_url https://vandelay.test/billing/done
}
plan team {
	rate 10/1s
	stripe_price price_team
}`, testenv.StripeMockKey, testenv.WebhookSecret, testenv.StripeMock(t)))
	f := s.NewTenant(t, "vandelay")
	admin := s.AdminToken(t)

	fresh := func(t *testing.T) any {
		return map[string]string{"refresh_token": s.MustLogin(t, f.UserEmail, "vandelay").Refresh}
	}
	const (
		anon = iota
		user
		owner
		adm
	)
	type rbacCase struct {
		route string // its pattern, as api.Routes() lists it
		path  string
		body  func(t *testing.T) any
		want  [4]int // anonymous, user, owner, admin
	}
	all := func(status int) [4]int { return [4]int{status, status, status, status} }
	mfaCode := func(*testing.T) any { return map[string]string{"code": "123456"} }
	cases := []rbacCase{
		{"POST /auth/signup", "/auth/signup", func(*testing.T) any {
			n := unique()
			return testenv.SignupBody("rbac"+n+"@rbac.test", testenv.Password, "rbac-new-"+n, "")
		}, all(http.StatusCreated)},
		{"POST /auth/login", "/auth/login", func(*testing.T) any {
			return map[string]string{"email": f.UserEmail, "password": testenv.Password, "tenant": "vandelay"}
		}, all(http.StatusOK)},
		{"POST /auth/refresh", "/auth/refresh", fresh, all(http.StatusOK)},
		{"POST /auth/logout", "/auth/logout", nil, [4]int{401, 204, 204, 204}},
		{"GET /me", "/me", nil, [4]int{401, 200, 200, 200}},
		// MFA (issue 14): before any enrolment, confirm, disable and recovery-codes are
		// reachable and refuse with 409; verify is anonymous (an empty body: 400 for anyone).
		{"POST /auth/mfa/confirm", "/auth/mfa/confirm", mfaCode, [4]int{401, 409, 409, 409}},
		{"POST /auth/mfa/disable", "/auth/mfa/disable", mfaCode, [4]int{401, 409, 409, 409}},
		{"POST /auth/mfa/recovery-codes", "/auth/mfa/recovery-codes", mfaCode, [4]int{401, 409, 409, 409}},
		{"POST /auth/mfa/enroll", "/auth/mfa/enroll", nil, [4]int{401, 200, 200, 200}},
		{"POST /auth/mfa/verify", "/auth/mfa/verify", nil, all(http.StatusBadRequest)},
		{"GET /rate-limit", "/rate-limit", nil, [4]int{401, 200, 200, http.StatusBadRequest}},
		{"POST /tenants", "/tenants", func(*testing.T) any {
			n := unique()
			return map[string]string{"tenant_name": "RBAC Made " + n, "admin_email": "o" + n + "@rbac.test"}
		}, [4]int{401, 403, 403, 201}},
		{"GET /tenants", "/tenants", nil, [4]int{401, 403, 200, 200}},
		{"GET /tenants/{id}", "/tenants/vandelay", nil, [4]int{401, 403, 200, 200}},
		{"PATCH /tenants/{id}", "/tenants/vandelay", func(*testing.T) any {
			return map[string]string{"name": "Vandelay Industries " + unique()}
		}, [4]int{401, 403, 200, 200}},
		{"POST /tenants/{id}/invitations", "/tenants/vandelay/invitations", func(*testing.T) any {
			return map[string]string{"email": "invitee" + unique() + "@vandelay.test", "role": "user"}
		}, [4]int{401, 403, 201, 201}},
		{"GET /tenants/{id}/users", "/tenants/vandelay/users", nil, [4]int{401, 403, 200, 200}},
		{"PATCH /tenants/{id}/users/{uid}", "/tenants/vandelay/users/" + f.UserID, func(*testing.T) any {
			return map[string]string{"role": "user"}
		}, [4]int{401, 403, 200, 200}},
		{"GET /tenants/{id}/audit-logs", "/tenants/vandelay/audit-logs", nil, [4]int{401, 200, 200, 200}},
		{"GET /tenants/{id}/audit-logs/export", "/tenants/vandelay/audit-logs/export", nil, [4]int{401, 200, 200, 200}},
		{"GET /tenants/{id}/audit-logs/verify", "/tenants/vandelay/audit-logs/verify", nil, [4]int{401, 403, 200, 200}},
		// Admins name no tenant here: the routes that act on the caller's tenant want one.
		{"POST /subscriptions", "/subscriptions", func(*testing.T) any {
			return map[string]string{"tenant_id": "vandelay", "plan_id": "team"}
		}, [4]int{401, 403, 201, 201}},
		{"GET /subscriptions/current", "/subscriptions/current", nil, [4]int{401, 403, 200, http.StatusBadRequest}},
		// After POST /subscriptions above, the tenant has a Stripe customer, so a portal.
		{"POST /subscriptions/portal", "/subscriptions/portal", nil, [4]int{401, 403, 200, http.StatusBadRequest}},
		{"POST /webhooks/stripe", "/webhooks/stripe", func(t *testing.T) any {
			return rbacSignedWebhook(testenv.StripeEvent(t, "evt_rbac_"+unique(), "customer.created", time.Now(),
				map[string]any{"id": "cus_rbac", "object": "customer"}))
		}, all(http.StatusOK)},
		// Webhook endpoints and deliveries (issue 13). The endpoint's address is a public
		// literal (TEST-NET-3), so registration needs no DNS; ep_x and dlv_x do not exist.
		{"POST /tenants/{id}/webhook-endpoints", "/tenants/vandelay/webhook-endpoints", func(*testing.T) any {
			return map[string]any{"url": "https://203.0.113.10/hook"}
		}, [4]int{401, 403, 201, 201}},
		{"GET /tenants/{id}/webhook-endpoints", "/tenants/vandelay/webhook-endpoints", nil, [4]int{401, 403, 200, 200}},
		{"PATCH /tenants/{id}/webhook-endpoints/{eid}", "/tenants/vandelay/webhook-endpoints/ep_x", func(*testing.T) any {
			return map[string]any{"enabled": true}
		}, [4]int{401, 403, 404, 404}},
		{"DELETE /tenants/{id}/webhook-endpoints/{eid}", "/tenants/vandelay/webhook-endpoints/ep_x", nil, [4]int{401, 403, 404, 404}},
		{"POST /tenants/{id}/webhook-endpoints/{eid}/rotate-secret", "/tenants/vandelay/webhook-endpoints/ep_x/rotate-secret", nil, [4]int{401, 403, 404, 404}},
		{"POST /tenants/{id}/webhook-endpoints/{eid}/recover", "/tenants/vandelay/webhook-endpoints/ep_x/recover", func(*testing.T) any {
			return map[string]any{"since": "2026-01-01T00:00:00Z"}
		}, [4]int{401, 403, 404, 404}},
		{"GET /tenants/{id}/webhook-deliveries", "/tenants/vandelay/webhook-deliveries", nil, [4]int{401, 403, 200, 200}},
		{"POST /tenants/{id}/webhook-deliveries/{did}/resend", "/tenants/vandelay/webhook-deliveries/dlv_x/resend", nil, [4]int{401, 403, 404, 404}},
		{"GET /plans", "/plans", nil, all(http.StatusOK)},
		{"GET /healthz", "/healthz", nil, all(http.StatusOK)},
		{"GET /readyz", "/readyz", nil, all(http.StatusOK)},
		{"GET /openapi.json", "/openapi.json", nil, all(http.StatusOK)},
		{"GET /docs", "/docs", nil, all(http.StatusOK)},
	}

	names := [4]string{"anonymous", "user", "owner", "admin"}
	// The table must cover routes.go exactly, so a new route cannot skip this test.
	var declared []string
	minRole := map[string]identity.Role{}
	for _, rt := range api.Routes() {
		declared = append(declared, rt.Pattern)
		minRole[rt.Pattern] = rt.MinRole
	}
	// Nor can a row disagree with the role the route declares.
	for _, c := range cases {
		min, ok := minRole[c.route]
		for role, r := range [3]identity.Role{"", identity.RoleUser, identity.RoleOwner} {
			refused := c.want[role] == http.StatusUnauthorized || c.want[role] == http.StatusForbidden
			if wantRefused := min != "" && (r == "" || !r.AtLeast(min)); ok && refused != wantRefused {
				t.Errorf("%s: the table says %d for the %s, but the route declares minimum role %q",
					c.route, c.want[role], names[role], min)
			}
		}
	}
	var tested []string
	for _, c := range cases {
		tested = append(tested, c.route)
	}
	if len(declared) == 0 || !slices.Equal(slices.Sorted(slices.Values(declared)), slices.Sorted(slices.Values(tested))) {
		t.Fatalf("routes.go declares %v\nthe RBAC table covers %v", declared, tested)
	}

	tokens := [4]string{"", f.UserAccess, f.OwnerAccess, admin}
	for _, c := range cases {
		method := strings.Fields(c.route)[0]
		for role := anon; role <= adm; role++ {
			t.Run(c.route+"/"+names[role], func(t *testing.T) {
				var body any
				if c.body != nil {
					body = c.body(t)
				}
				var opts []testenv.Option
				if ev, ok := body.(rbacSignedWebhook); ok {
					body = []byte(ev)
					opts = append(opts, testenv.WithHeader("Stripe-Signature", testenv.SignStripe(ev, testenv.WebhookSecret, time.Now())))
				}
				r := s.Do(t, method, c.path, tokens[role], body, opts...)
				switch want := c.want[role]; want {
				case http.StatusUnauthorized:
					wantUnauthenticated(t, r)
				case http.StatusForbidden:
					wantProblem(t, r, http.StatusForbidden, "forbidden")
				default:
					wantStatus(t, r, want)
				}
			})
		}
	}
	for _, path := range []string{"/", "/nope", "/tenants/vandelay/secrets", "/auth"} {
		for role := anon; role <= adm; role++ {
			wantProblem(t, s.Do(t, "GET", path, tokens[role], nil), http.StatusNotFound, "not_found")
		}
	}
}
