package billing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/billing"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

var (
	acmeOwner = identity.Principal{UserID: "usr_owner", TenantID: "acme", Role: identity.RoleOwner}
	ownerAct  = identity.Actor{UserID: "usr_owner", TenantID: "acme", Role: identity.RoleOwner, IP: "127.0.0.1"}
)

// wantCode fails unless err is the domain error code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if !errs.Is(err, code) {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

// Checkout makes the tenant's Stripe customer once (the second Checkout reuses the stored
// one) and asks for a subscription-mode session for the plan's price, tagged with the tenant.
// Once checkout.session.completed is in, the tenant is active on the plan and a new Checkout
// is refused: plan changes go through the portal.
func TestCheckout_CustomerOnceSessionForThePlanThenSubscriptionExists(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "acme", "")
	ctx := context.Background()
	if cur, err := f.m.Current(ctx, acmeOwner, "acme"); err != nil || cur.CustomerID != nil {
		t.Fatalf("Current before any checkout = %+v, %v; want no customer", cur, err)
	}

	s1, err := f.m.Checkout(ctx, acmeOwner, ownerAct, "acme", "pro")
	if err != nil {
		t.Fatal(err)
	}
	customer := f.tenantState(t, "acme").Billing.CustomerID
	if s1.ID == "" || s1.URL == "" || customer == "" {
		t.Fatalf("session %+v, stored customer %q", s1, customer)
	}
	if _, err := f.m.Checkout(ctx, acmeOwner, ownerAct, "acme", "pro"); err != nil {
		t.Fatal(err)
	}
	if again := f.tenantState(t, "acme").Billing.CustomerID; again != customer {
		t.Errorf("stored customer changed from %q to %q", customer, again)
	}
	customers := f.stripe.Calls("POST", "/v1/customers")
	if len(customers) != 1 {
		t.Fatalf("%d customer creations, want 1", len(customers))
	}
	if got := customers[0].Form.Get("metadata[tenant_id]"); got != "acme" {
		t.Errorf("customer metadata[tenant_id] = %q", got)
	}
	if key := customers[0].Header.Get("Idempotency-Key"); key != "saasgate-customer-acme" {
		t.Errorf("customer idempotency key %q", key)
	}
	sessions := f.stripe.Calls("POST", "/v1/checkout/sessions")
	if len(sessions) != 2 {
		t.Fatalf("%d checkout sessions, want 2", len(sessions))
	}
	for i, c := range sessions {
		for field, want := range map[string]string{
			"mode": "subscription", "line_items[0][price]": "price_pro", "line_items[0][quantity]": "1",
			"metadata[tenant_id]": "acme", "metadata[plan_id]": "pro", "customer": customer, "client_reference_id": "acme",
			"subscription_data[metadata][tenant_id]": "acme", "success_url": f.m.SuccessURL,
		} {
			if got := c.Form.Get(field); got != want {
				t.Errorf("session %d: %s = %q, want %q", i, field, got, want)
			}
		}
	}
	if n := len(f.auditEntries(t, "acme", billing.ActionCustomerMade)); n != 1 {
		t.Errorf("%d %s audit entries, want 1", n, billing.ActionCustomerMade)
	}
	if n := len(f.auditEntries(t, "acme", billing.ActionCheckout)); n != 2 {
		t.Errorf("%d %s audit entries, want 2", n, billing.ActionCheckout)
	}

	// The owner pays: Stripe sends checkout.session.completed.
	mustDeliver(t, f.m, event(t, "evt_checkout", "checkout.session.completed", time.Now().Truncate(time.Second), testenv.StripeCheckoutSession{
		ID: s1.ID, Tenant: "acme", Plan: "pro", Customer: customer, Subscription: "sub_acme",
	}.Object()))
	tn := f.tenantState(t, "acme")
	if tn.Plan != "pro" || tn.Billing.Status != tenant.BillingActive || tn.Billing.SubscriptionID != "sub_acme" {
		t.Fatalf("after checkout.session.completed: plan %s, billing %+v; want active on pro", tn.Plan, tn.Billing)
	}
	cur, err := f.m.Current(ctx, acmeOwner, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Plan != "pro" || cur.Status != tenant.BillingActive || cur.SubscriptionID != "sub_acme" || cur.CustomerID == nil || *cur.CustomerID != customer {
		t.Errorf("Current = %+v", cur)
	}
	_, err = f.m.Checkout(ctx, acmeOwner, ownerAct, "acme", "team")
	wantCode(t, "Checkout with a subscription", err, "subscription_exists")
	if n := len(f.stripe.Calls("POST", "/v1/checkout/sessions")); n != 2 {
		t.Errorf("%d checkout sessions after the refusal, want still 2", n)
	}

	// The portal is for the tenant's customer.
	url, err := f.m.Portal(ctx, acmeOwner, ownerAct, "acme")
	if err != nil || url == "" {
		t.Fatalf("Portal = %q, %v", url, err)
	}
	portals := f.stripe.Calls("POST", "/v1/billing_portal/sessions")
	if len(portals) != 1 || portals[0].Form.Get("customer") != customer || portals[0].Form.Get("return_url") != f.m.SuccessURL {
		t.Errorf("portal calls %+v; want one for %s returning to the success URL", portals, customer)
	}
}

// Checkout is refused, before anything is asked of Stripe, to whoever is not the tenant's
// owner or an admin, for a plan that does not exist or cannot be bought, and when billing is
// not configured. The portal needs a customer.
func TestCheckout_Refusals(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "acme", "")
	f.newTenant(t, "initech", "")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		p      identity.Principal
		tenant string
		plan   string
		code   string
	}{
		{"owner of another tenant", identity.Principal{UserID: "usr_i", TenantID: "initech", Role: identity.RoleOwner}, "acme", "pro", "forbidden"},
		{"user of the tenant", identity.Principal{UserID: "usr_u", TenantID: "acme", Role: identity.RoleUser}, "acme", "pro", "forbidden"},
		{"no role", identity.Principal{UserID: "usr_x", TenantID: "acme"}, "acme", "pro", "forbidden"},
		{"unknown plan", acmeOwner, "acme", "gold", "unknown_plan"},
		{"plan without price", acmeOwner, "acme", "free", "plan_not_purchasable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.m.Checkout(ctx, tc.p, ownerAct, tc.tenant, tc.plan)
			wantCode(t, "Checkout", err, tc.code)
		})
	}
	otherOwner := identity.Principal{UserID: "usr_i", TenantID: "initech", Role: identity.RoleOwner}
	_, err := f.m.Current(ctx, otherOwner, "acme")
	wantCode(t, "Current by another tenant's owner", err, "forbidden")
	_, err = f.m.Portal(ctx, otherOwner, ownerAct, "acme")
	wantCode(t, "Portal by another tenant's owner", err, "forbidden")
	_, err = f.m.Portal(ctx, acmeOwner, ownerAct, "acme")
	wantCode(t, "Portal without a customer", err, "no_subscription")
	if calls := f.stripe.Calls("", ""); len(calls) != 0 {
		t.Errorf("refused requests reached Stripe: %+v", calls)
	}
	if b := f.tenantState(t, "acme").Billing; *b != (tenant.Billing{}) {
		t.Errorf("refused requests changed billing: %+v", b)
	}

	// An admin may start a subscription for any tenant.
	adminP := identity.Principal{UserID: "usr_admin", TenantID: "system", Role: identity.RoleAdmin}
	if _, err := f.m.Checkout(ctx, adminP, admin, "initech", "team"); err != nil {
		t.Errorf("admin Checkout: %v", err)
	}
}

// Without a Stripe key every billing entry point answers billing_disabled and the scheduler
// does nothing.
func TestCheckout_BillingDisabled(t *testing.T) {
	f := newManager(t, opts{noStripe: true})
	f.newTenant(t, "acme", "")
	ctx := context.Background()
	_, err := f.m.Checkout(ctx, acmeOwner, ownerAct, "acme", "pro")
	wantCode(t, "Checkout", err, "billing_disabled")
	_, err = f.m.Portal(ctx, acmeOwner, ownerAct, "acme")
	wantCode(t, "Portal", err, "billing_disabled")
	_, err = f.m.Current(ctx, acmeOwner, "acme")
	wantCode(t, "Current", err, "billing_disabled")
	payload := event(t, "evt_disabled", "invoice.paid", time.Now(), testenv.StripeInvoice{ID: "in_1", Tenant: "acme", Subscription: "sub_1"}.Object())
	err = deliver(t, f.m, payload)
	wantCode(t, "HandleWebhook", err, "billing_disabled")
	if e, ok := errs.As(err); !ok || e.Kind != errs.KindUnavailable {
		t.Errorf("billing_disabled kind: %v", err)
	}
	if rep, err := f.m.Tick(ctx); err != nil || len(rep.Retried)+len(rep.Suspended) != 0 {
		t.Errorf("Tick = %+v, %v", rep, err)
	}
}

// With Stripe unreachable, Checkout and the portal answer 503 stripe_unavailable (never a
// hang: every call is bounded) and store nothing; a payment retry that cannot reach Stripe is
// still counted and audited as a failure, so the schedule goes on.
func TestStripeDown_CheckoutAndPortalFailCleanlyAndRetriesAreAudited(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "acme", "")
	f.newTenant(t, "known", "cus_known")
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // a port nothing listens on
	f.m.Stripe = billing.NewStripe(billing.StripeConfig{SecretKey: testenv.StripeMockKey, APIBase: dead.URL, Timeout: 2 * time.Second})
	ctx := context.Background()

	_, err := f.m.Checkout(ctx, acmeOwner, ownerAct, "acme", "pro")
	wantCode(t, "Checkout with Stripe down", err, "stripe_unavailable")
	if b := f.tenantState(t, "acme").Billing; b.Rev != 0 || b.CustomerID != "" {
		t.Errorf("a failed Checkout stored billing state %+v", b)
	}
	knownOwner := identity.Principal{UserID: "usr_k", TenantID: "known", Role: identity.RoleOwner}
	_, err = f.m.Portal(ctx, knownOwner, ownerAct, "known")
	wantCode(t, "Portal with Stripe down", err, "stripe_unavailable")

	// A past-due tenant whose retry is due: the attempt is recorded and audited as failed.
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	f.m.Now = clock.Now
	mustDeliver(t, f.m, event(t, "evt_down_failed", "invoice.payment_failed", clock.Now(), testenv.StripeInvoice{
		ID: "in_down", Tenant: "known", Customer: "cus_known", Subscription: "sub_known", Status: "open"}.Object()))
	clock.Set(clock.Now().Add(24 * time.Hour))
	rep, err := f.m.Tick(ctx)
	if err != nil || len(rep.Retried) != 1 {
		t.Fatalf("Tick with Stripe down: %+v, %v; want one retry attempted", rep, err)
	}
	if b := f.tenantState(t, "known").Billing; b.Retries != 1 || b.Status != tenant.BillingPastDue {
		t.Errorf("after the failed retry: retries %d, status %q; want 1, past_due", b.Retries, b.Status)
	}
	entries := f.auditEntries(t, "known", billing.ActionRetry)
	if len(entries) != 1 || entries[0].Outcome != "failure" {
		t.Fatalf("retry audit entries %+v, want one failure", entries)
	}
}
