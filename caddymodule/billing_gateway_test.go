package caddymodule_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
)

// These tests follow Stripe's webhooks through to the data plane of one in-process Caddy: a
// signed event delivered to POST /webhooks/stripe on the saas_api site must change what the
// very next request through the tenant site gets (its plan's limits, X-Tenant-Plan, the quota
// period, the Billing-Status header). SPEC §4 and §6.

// The catalog of the billing gateway: free is the default plan, pro is bought through Stripe
// and has a monthly quota. Their limits differ, so every response shows which one applied.
const (
	gwFreeLimit = "5"
	gwProLimit  = "100"
	gwProPrice  = "price_gw_pro"
)

// gwStartBilling runs a gateway with Redis, Stripe billing against stripe-mock and the catalog
// above; grace is its grace_period ("" keeps the default).
func gwStartBilling(t *testing.T, grace string) *gateway {
	t.Helper()
	var b strings.Builder
	if grace != "" {
		fmt.Fprintf(&b, "grace_period %s\n", grace)
	}
	fmt.Fprintf(&b, "stripe {\n secret_key %s\n webhook_secret %s\n api_base %s\n success_url https://app.example.test/billing/done\n}\n",
		testenv.StripeMockKey, testenv.WebhookSecret, testenv.StripeMock(t))
	fmt.Fprintf(&b, "plan free {\n rate %s/1m\n}\n", gwFreeLimit)
	fmt.Fprintf(&b, "plan pro {\n name Pro\n rate %s/1m\n quota 100000/month\n stripe_price %s\n}", gwProLimit, gwProPrice)
	return startGateway(t, gatewayConfig{redis: true, options: b.String(), apiSite: "\tmetrics /metrics", sites: []gatewaySite{
		{"gw", pipeline},
		{"optional", "saas_tenant\nsaas_auth {\n optional\n}\nsaas_rate_limit\nreverse_proxy UPSTREAM"},
		{"noauth", "saas_tenant\nsaas_rate_limit\nreverse_proxy UPSTREAM"},
	}})
}

// gwSubscriber is a tenant (owner and user logged in) whose owner started Checkout for pro:
// the tenant has its Stripe customer, which the events below name, as Stripe's would.
type gwSubscriber struct {
	*testenv.TenantFixture
	customer     string // the tenant's Stripe customer, made by POST /subscriptions
	subscription string // the subscription the events are about
}

func gwSubscribe(t *testing.T, g *gateway, id string) *gwSubscriber {
	t.Helper()
	f := g.NewTenant(t, id)
	r := g.Do(t, "POST", "/subscriptions", f.OwnerAccess, map[string]string{"tenant_id": id, "plan_id": "pro"})
	mustStatus(t, r, http.StatusCreated)
	tr := g.Do(t, "GET", "/tenants/"+id, f.OwnerAccess, nil)
	mustStatus(t, tr, http.StatusOK)
	customer, _ := tr.Obj("billing")["customer_id"].(string)
	if customer == "" {
		t.Fatalf("after POST /subscriptions the tenant has no Stripe customer: %s", tr.Raw)
	}
	return &gwSubscriber{TenantFixture: f, customer: customer, subscription: "sub_gw_" + id}
}

// checkoutCompleted is the data.object of checkout.session.completed for plan, paid.
func (s *gwSubscriber) checkoutCompleted(plan string) map[string]any {
	return testenv.StripeCheckoutSession{ID: "cs_gw_" + s.ID, Tenant: s.ID, Plan: plan, Customer: s.customer, Subscription: s.subscription}.Object()
}

// subscriptionObject is the tenant's subscription to pro in status, its current period
// starting at periodStart.
func (s *gwSubscriber) subscriptionObject(status string, periodStart time.Time) map[string]any {
	return testenv.StripeSubscription{ID: s.subscription, Tenant: s.ID, Customer: s.customer, Status: status,
		Price: gwProPrice, Start: periodStart}.Object()
}

// invoiceObject is an invoice of the tenant's subscription.
func (s *gwSubscriber) invoiceObject(id, status string) map[string]any {
	return testenv.StripeInvoice{ID: id, Tenant: s.ID, Customer: s.customer, Subscription: s.subscription, Status: status}.Object()
}

// gwDeliver signs an event of typ created at created (signed now, as Stripe signs each delivery)
// and posts it to the gateway's webhook route, which must accept it.
func gwDeliver(t *testing.T, g *gateway, typ string, created time.Time, object map[string]any) {
	t.Helper()
	payload := testenv.StripeEvent(t, "evt_gw_"+unique(), typ, created, object)
	sig := testenv.SignStripe(payload, testenv.WebhookSecret, time.Now())
	r := g.Do(t, "POST", "/webhooks/stripe", "", payload, testenv.WithHeader("Stripe-Signature", sig))
	mustStatus(t, r, http.StatusOK)
	if r.Str("message") != "Webhook processed successfully." {
		t.Errorf("%s: %v, want the message \"Webhook processed successfully.\"", typ, r)
	}
}

// gwWantPlan sends one request through the tenant site as the tenant's user and checks that it
// is admitted under plan: the upstream gets X-Tenant-Plan, and the rate-limit headers are
// plan's. It returns the response for more checks.
func gwWantPlan(t *testing.T, g *gateway, f *testenv.TenantFixture, when, plan, limit string) testenv.Response {
	t.Helper()
	g.up.Reset()
	r := g.get(t, "gw", f.ID, f.UserAccess)
	if r.Status != http.StatusOK || g.up.Count() != 1 {
		t.Errorf("%s: %v (upstream reached %d times); want 200 through to the upstream", when, r, g.up.Count())
		return r
	}
	wantHeader(t, when+": upstream", g.up.Last(t).Header, "X-Tenant-Plan", plan)
	wantHeader(t, when, r.Header, "X-RateLimit-Limit", limit)
	wantHeader(t, when, r.Header, "RateLimit-Policy", fmt.Sprintf("%s;q=%s;w=60", strconv.Quote(plan), limit))
	return r
}

// gwQuotaPeriodEnd is quota.period_end of GET /rate-limit for the tenant's user.
func gwQuotaPeriodEnd(t *testing.T, g *gateway, f *testenv.TenantFixture) string {
	t.Helper()
	r := g.rateLimitStatus(t, f.UserAccess)
	end, _ := r.Obj("quota")["period_end"].(string)
	if end == "" {
		t.Fatalf("GET /rate-limit has no quota.period_end: %s", r.Raw)
	}
	return end
}

// gwAnchor is a subscription period start about ten days before now, at 13:37:00 UTC on a day
// every month has: its months end at neither a calendar month's end nor a clamped day.
func gwAnchor(now time.Time) time.Time {
	a := now.UTC().AddDate(0, 0, -10)
	if a.Day() > 28 {
		a = a.AddDate(0, 0, -3)
	}
	return time.Date(a.Year(), a.Month(), a.Day(), 13, 37, 0, 0, time.UTC)
}

// A completed Checkout puts the tenant on the plan it bought from its next request on; the
// subscription's period moves the quota month; a deleted subscription puts it back on the
// default plan.
func TestBillingGateway_CheckoutAppliesThePlanAndCancellationRevertsIt(t *testing.T) {
	g := gwStartBilling(t, "")
	s := gwSubscribe(t, g, "buyer")
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)

	// Starting Checkout changes nothing yet: the tenant is on free until Stripe says it paid.
	gwWantPlan(t, g, s.TenantFixture, "before the checkout completed", "free", gwFreeLimit)

	gwDeliver(t, g, "checkout.session.completed", base, s.checkoutCompleted("pro"))
	r := gwWantPlan(t, g, s.TenantFixture, "right after checkout.session.completed", "pro", gwProLimit)
	wantHeader(t, "an active subscription", r.Header, "Billing-Status")
	// Without a subscription period yet, quota months are calendar months.
	if end, want := gwQuotaPeriodEnd(t, g, s.TenantFixture), nextMonthUTC(time.Now()).Format(time.RFC3339); end != want {
		t.Errorf("after checkout, before any period: quota.period_end %s, want the calendar month's end %s", end, want)
	}

	// Quotas are counted in months of the billing period: from its start, one month long.
	anchor := gwAnchor(time.Now())
	gwDeliver(t, g, "customer.subscription.updated", base.Add(time.Second), s.subscriptionObject("active", anchor))
	want := anchor.AddDate(0, 1, 0).Format(time.RFC3339)
	if want == nextMonthUTC(time.Now()).Format(time.RFC3339) {
		t.Fatalf("test setup: anchor %s gives the calendar month's end", anchor)
	}
	if end := gwQuotaPeriodEnd(t, g, s.TenantFixture); end != want {
		t.Errorf("subscription period from %s: quota.period_end %s, want %s (period start + 1 month)", anchor.Format(time.RFC3339), end, want)
	}
	gwWantPlan(t, g, s.TenantFixture, "after customer.subscription.updated", "pro", gwProLimit)

	gwDeliver(t, g, "customer.subscription.deleted", base.Add(2*time.Second), s.subscriptionObject("canceled", anchor))
	r = gwWantPlan(t, g, s.TenantFixture, "right after customer.subscription.deleted", "free", gwFreeLimit)
	wantHeader(t, "a canceled subscription", r.Header, "Billing-Status")
}

// A failed payment keeps the tenant on its plan for the grace period and says so on every
// response: Billing-Status: past_due; grace_until="<failure + grace_period>". A paid invoice
// removes the header.
func TestBillingGateway_PaymentFailureAddsBillingStatusAndKeepsThePlan(t *testing.T) {
	g := gwStartBilling(t, "48h")
	s := gwSubscribe(t, g, "late-payer")
	before := testenv.Scrape(t, g.Client, "/metrics")
	// The payment failed an hour ago (Stripe retries deliveries): the grace period counts from
	// the failure, not from when the gateway heard of it.
	failed := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)

	gwDeliver(t, g, "checkout.session.completed", failed.Add(-24*time.Hour), s.checkoutCompleted("pro"))
	r := gwWantPlan(t, g, s.TenantFixture, "paid up", "pro", gwProLimit)
	wantHeader(t, "paid up", r.Header, "Billing-Status")

	gwDeliver(t, g, "invoice.payment_failed", failed, s.invoiceObject("in_gw_late", "open"))
	graceUntil := failed.Add(48 * time.Hour).Format(time.RFC3339)
	for i := range 3 {
		r := gwWantPlan(t, g, s.TenantFixture, fmt.Sprintf("past due, request %d", i+1), "pro", gwProLimit)
		wantHeader(t, fmt.Sprintf("past due, request %d", i+1), r.Header, "Billing-Status", `past_due; grace_until="`+graceUntil+`"`)
	}
	cur := g.Do(t, "GET", "/subscriptions/current", s.OwnerAccess, nil)
	mustStatus(t, cur, http.StatusOK)
	if cur.Str("status") != "past_due" || cur.Str("grace_until") != graceUntil || cur.Str("plan") != "pro" {
		t.Errorf("past due: %v, want status past_due, plan pro, grace_until %s", cur, graceUntil)
	}

	gwDeliver(t, g, "invoice.paid", failed.Add(30*time.Minute), s.invoiceObject("in_gw_late", "paid"))
	r = gwWantPlan(t, g, s.TenantFixture, "after invoice.paid", "pro", gwProLimit)
	wantHeader(t, "after invoice.paid", r.Header, "Billing-Status")

	// Each delivery is counted on the metrics endpoint by type and result (the counters are
	// the process's, so compare with before).
	after := testenv.Scrape(t, g.Client, "/metrics")
	for _, typ := range []string{"checkout.session.completed", "invoice.payment_failed", "invoice.paid"} {
		labels := map[string]string{"type": typ, "result": "applied"}
		name := "saasgate_billing_webhook_events_total"
		if d := after.Value(name, labels) - before.Value(name, labels); d != 1 {
			t.Errorf("%s{type=%q,result=\"applied\"} grew by %v, want 1", name, typ, d)
		}
	}
}

// A tenant's billing state is its own business: Billing-Status reaches only its members and
// platform admins, once authenticated. Anonymous callers, callers of other tenants and routes
// without saas_auth get no hint of it, and a suspended tenant's 402 tells them no reason.
func TestBillingGateway_BillingStatusReachesOnlyMembersAndAdmins(t *testing.T) {
	g := gwStartBilling(t, "48h")
	s := gwSubscribe(t, g, "owing")
	other := g.NewTenant(t, "bystander")
	admin := g.AdminToken(t)
	failed := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	gwDeliver(t, g, "checkout.session.completed", failed.Add(-24*time.Hour), s.checkoutCompleted("pro"))
	gwDeliver(t, g, "invoice.payment_failed", failed, s.invoiceObject("in_gw_owing", "open"))
	pastDue := `past_due; grace_until="` + failed.Add(48*time.Hour).Format(time.RFC3339) + `"`

	type call struct {
		name, site, token string
		status            int
		told              bool // whether the response carries Billing-Status
	}
	callers := func(suspended bool) []call {
		ok, anonymous, mismatch := http.StatusOK, http.StatusUnauthorized, http.StatusForbidden
		if suspended {
			ok, anonymous, mismatch = http.StatusPaymentRequired, http.StatusPaymentRequired, http.StatusPaymentRequired
		}
		return []call{
			{"User", "gw", s.UserAccess, ok, true},
			{"Owner", "gw", s.OwnerAccess, ok, true},
			{"Admin", "gw", admin, ok, true},
			{"Anonymous", "gw", "", anonymous, false},
			{"InvalidToken", "gw", "not.a.jwt", anonymous, false},
			{"OtherTenantsUser", "gw", other.UserAccess, mismatch, false},
			{"OptionalAnonymous", "optional", "", ok, false},
			{"OptionalUser", "optional", s.UserAccess, ok, true},
			{"OptionalOtherTenantsUser", "optional", other.UserAccess, mismatch, false},
			{"NoAuthAnonymous", "noauth", "", ok, false},
		}
	}
	check := func(t *testing.T, c call) {
		r := g.get(t, c.site, s.ID, c.token)
		wantStatus(t, r, c.status)
		if c.told {
			wantHeader(t, c.name, r.Header, "Billing-Status", pastDue)
		} else {
			wantHeader(t, c.name, r.Header, "Billing-Status")
		}
		if c.status == http.StatusPaymentRequired && r.Str("detail") != "This tenant is suspended." {
			t.Errorf("%s: 402 detail %q, want the plain \"This tenant is suspended.\"", c.name, r.Str("detail"))
		}
	}
	t.Run("PastDue", func(t *testing.T) {
		for _, c := range callers(false) {
			t.Run(c.name, func(t *testing.T) { check(t, c) })
		}
	})
	// Suspended by an admin while past due: the 402 says no more than that, and the billing
	// state still goes to members only.
	g.PatchTenant(t, admin, s.ID, map[string]string{"status": "suspended"})
	t.Run("SuspendedWhilePastDue", func(t *testing.T) {
		for _, c := range callers(true) {
			t.Run(c.name, func(t *testing.T) { check(t, c) })
		}
	})
}
