package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// These tests drive the billing routes of the control API (SPEC §5 subscription routes, §6
// billing) over real HTTP through an in-process Caddy whose `saas` app calls stripe-mock
// through a recording proxy, so that every call the gateway makes to Stripe can be checked.
// Webhooks are signed with the configured secret exactly as Stripe signs them.

const (
	// billSuccessURL carries Stripe's own {CHECKOUT_SESSION_ID} placeholder, which must reach
	// Stripe as written (Caddy's replacer must leave unknown placeholders alone).
	billSuccessURL = "https://app.billing.test/billing/success?session={CHECKOUT_SESSION_ID}"
	billCancelURL  = "https://app.billing.test/billing/cancel"
	billProPrice   = "price_pro"
	billDefault    = "starter" // the default plan, not purchasable
)

// billOptions is the saas-block configuration of a billing-enabled gateway calling Stripe at
// apiBase: a default plan, one purchasable plan and one without a Stripe price.
func billOptions(apiBase string) string {
	return fmt.Sprintf(`default_plan %s
stripe {
	secret_key %s
	webhook_secret %s
	api_base %s
	success_url %s
	cancel_url %s
}
plan %s {
	rate 60/1m
}
plan pro {
	rate 100/1m
	stripe_price %s
}
plan enterprise {
	rate 1000/1m
}`, billDefault, testenv.StripeMockKey, testenv.WebhookSecret, apiBase, billSuccessURL, billCancelURL,
		billDefault, billProPrice)
}

// billEnv is a billing-enabled gateway: the control API, a tenant site "app" with the full
// pipeline, the Stripe recorder and the platform admin's token.
type billEnv struct {
	*gateway
	stripe *testenv.StripeRecorder
	admin  string
}

func billServer(t *testing.T) *billEnv {
	t.Helper()
	rec := testenv.NewStripeRecorder(t)
	g := startGateway(t, gatewayConfig{
		options: billOptions(rec.URL),
		sites:   []gatewaySite{{name: "app", body: pipeline}},
	})
	return &billEnv{gateway: g, stripe: rec, admin: g.AdminToken(t)}
}

func (b *billEnv) subscribe(t testing.TB, token, tenantID, planID string) testenv.Response {
	t.Helper()
	return b.Do(t, "POST", "/subscriptions", token, map[string]string{"tenant_id": tenantID, "plan_id": planID})
}

func (b *billEnv) current(t testing.TB, token string, opts ...testenv.Option) testenv.Response {
	t.Helper()
	return b.Do(t, "GET", "/subscriptions/current", token, nil, opts...)
}

func (b *billEnv) portal(t testing.TB, token string, opts ...testenv.Option) testenv.Response {
	t.Helper()
	return b.Do(t, "POST", "/subscriptions/portal", token, nil, opts...)
}

// mustSubscribe starts a Checkout for tenantID's pro plan and returns the tenant's Stripe
// customer id, as the gateway sent it to Stripe in the Checkout Session.
func (b *billEnv) mustSubscribe(t testing.TB, token, tenantID string) string {
	t.Helper()
	mustStatus(t, b.subscribe(t, token, tenantID, "pro"), http.StatusCreated)
	return billCustomerOf(t, b.stripe, tenantID)
}

// billCustomerOf is the customer of tenantID's latest Checkout Session at the recorder.
func billCustomerOf(t testing.TB, rec *testenv.StripeRecorder, tenantID string) string {
	t.Helper()
	var customer string
	for _, c := range rec.Calls("POST", "/v1/checkout/sessions") {
		if c.Form.Get("client_reference_id") == tenantID || c.Form.Get("metadata[tenant_id]") == tenantID {
			customer = c.Form.Get("customer")
		}
	}
	if !strings.HasPrefix(customer, "cus_") {
		t.Fatalf("no Checkout Session with a cus_ customer for tenant %s at the Stripe recorder", tenantID)
	}
	return customer
}

// billDeliver posts payload to the Stripe webhook with signature ("" sends no Stripe-Signature).
func billDeliver(t testing.TB, c *testenv.Client, payload []byte, signature string) testenv.Response {
	t.Helper()
	var opts []testenv.Option
	if signature != "" {
		opts = append(opts, testenv.WithHeader("Stripe-Signature", signature))
	}
	return c.Do(t, "POST", "/webhooks/stripe", "", payload, opts...)
}

// billSign signs payload with the configured webhook secret, now.
func billSign(payload []byte) string {
	return testenv.SignStripe(payload, testenv.WebhookSecret, time.Now())
}

// wantWebhookOK checks the contract's answer to an accepted delivery.
func wantWebhookOK(t testing.TB, r testenv.Response) {
	t.Helper()
	if wantStatus(t, r, http.StatusOK) {
		wantKeys(t, r, "message")
		if r.Str("message") != "Webhook processed successfully." {
			t.Errorf("%v: message %q", r, r.Str("message"))
		}
	}
}

// billEventID is a fresh Stripe event id.
func billEventID(what string) string { return "evt_" + what + "_" + unique() }

// billCheckoutCompleted is a checkout.session.completed event of a paid subscription
// Checkout for tenantID's pro plan.
func billCheckoutCompleted(t testing.TB, eventID, tenantID, customer, subID string, at time.Time) []byte {
	t.Helper()
	return testenv.StripeEvent(t, eventID, "checkout.session.completed", at, testenv.StripeCheckoutSession{
		ID: "cs_test_" + eventID, Tenant: tenantID, Plan: "pro", Customer: customer, Subscription: subID,
	}.Object())
}

// billPaymentFailed is an invoice.payment_failed event of subscription subID.
func billPaymentFailed(t testing.TB, eventID, tenantID, customer, subID string, at time.Time) []byte {
	t.Helper()
	return testenv.StripeEvent(t, eventID, "invoice.payment_failed", at, testenv.StripeInvoice{
		ID: "in_" + eventID, Tenant: tenantID, Customer: customer, Subscription: subID, Status: "open",
	}.Object())
}

// billStoredEvents counts the Stripe events the gateway recorded.
func billStoredEvents(t *testing.T, db *store.DB) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := db.C(store.CollStripeEvents).CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatalf("counting %s: %v", store.CollStripeEvents, err)
	}
	return n
}

// billWantHTTPS checks that a field of r is an absolute https URL.
func billWantHTTPS(t testing.TB, r testenv.Response, field string) {
	t.Helper()
	u, err := url.Parse(r.Str(field))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		t.Errorf("%v: %s %q is not an https URL", r, field, r.Str(field))
	}
}

// ---------------------------------------------------------------------------------------------
// 1. Checkout

// Checkout answers the contract's 201 body and, across two calls, creates the tenant's Stripe
// customer once (tagged with the tenant) and one subscription-mode Checkout Session per call,
// both for that customer and the plan's Stripe price.
func TestBillingAPI_CheckoutCreatesTheCustomerOnceAndASessionPerCall(t *testing.T) {
	b := billServer(t)
	f := b.NewTenant(t, "acme")

	for i := range 2 {
		r := b.subscribe(t, f.OwnerAccess, "acme", "pro")
		mustStatus(t, r, http.StatusCreated)
		wantKeys(t, r, "message", "stripe_session_url", "session_id")
		if r.Str("message") != "Subscription initiated." {
			t.Errorf("call %d: message %q", i+1, r.Str("message"))
		}
		billWantHTTPS(t, r, "stripe_session_url")
		if !strings.HasPrefix(r.Str("session_id"), "cs_") {
			t.Errorf("call %d: session_id %q, want a cs_ id", i+1, r.Str("session_id"))
		}
	}

	customers := b.stripe.Calls("POST", "/v1/customers")
	if len(customers) != 1 {
		t.Fatalf("%d POST /v1/customers after two checkouts, want exactly 1 (the customer is made once)", len(customers))
	}
	if got := customers[0].Form.Get("metadata[tenant_id]"); got != "acme" {
		t.Errorf("customer metadata[tenant_id] = %q, want acme (form %v)", got, customers[0].Form)
	}

	sessions := b.stripe.Calls("POST", "/v1/checkout/sessions")
	if len(sessions) != 2 {
		t.Fatalf("%d POST /v1/checkout/sessions, want 2", len(sessions))
	}
	customer := sessions[0].Form.Get("customer")
	if !strings.HasPrefix(customer, "cus_") {
		t.Fatalf("first Checkout Session customer %q, want a cus_ id", customer)
	}
	for i, s := range sessions {
		want := map[string]string{
			"mode":                 "subscription",
			"customer":             customer,
			"line_items[0][price]": billProPrice,
			"success_url":          billSuccessURL,
			"cancel_url":           billCancelURL,
			"metadata[tenant_id]":  "acme",
		}
		for k, v := range want {
			if got := s.Form.Get(k); got != v {
				t.Errorf("Checkout Session %d: %s = %q, want %q", i+1, k, got, v)
			}
		}
	}

	// The stored customer is the one Stripe returned and Checkout used.
	tr := b.Do(t, "GET", "/tenants/acme", b.admin, nil)
	mustStatus(t, tr, http.StatusOK)
	if got, _ := tr.Obj("billing")["customer_id"].(string); got != customer {
		t.Errorf("tenant billing.customer_id %q, want %q: %s", got, customer, tr.Raw)
	}
}

// ---------------------------------------------------------------------------------------------
// 2. Who may start a subscription, for which plan

// POST /subscriptions admits the tenant's owner and a platform admin only, for a plan with a
// Stripe price; every refusal is a problem with the contract's code and never reaches Stripe.
func TestBillingAPI_CheckoutIsForTheOwnerOrAnAdminAndAPurchasablePlan(t *testing.T) {
	b := billServer(t)
	acme := b.NewTenant(t, "acme")
	globex := b.NewTenant(t, "globex")

	valid := func(tenantID, planID string) map[string]string {
		return map[string]string{"tenant_id": tenantID, "plan_id": planID}
	}
	tests := []struct {
		name   string
		token  string
		body   any
		status int
		code   string // for refusals
	}{
		{"UserOfTheTenant", acme.UserAccess, valid("acme", "pro"), http.StatusForbidden, "forbidden"},
		{"OwnerOfAnotherTenant", acme.OwnerAccess, valid("globex", "pro"), http.StatusForbidden, "forbidden"},
		{"UserOfAnotherTenant", acme.UserAccess, valid("globex", "pro"), http.StatusForbidden, "forbidden"},
		{"Anonymous", "", valid("acme", "pro"), http.StatusUnauthorized, "invalid_token"},
		{"UnknownPlan", acme.OwnerAccess, valid("acme", "platinum"), http.StatusUnprocessableEntity, "unknown_plan"},
		{"PlanWithoutPrice", acme.OwnerAccess, valid("acme", "enterprise"), http.StatusUnprocessableEntity, "plan_not_purchasable"},
		{"DefaultPlanWithoutPrice", acme.OwnerAccess, valid("acme", billDefault), http.StatusUnprocessableEntity, "plan_not_purchasable"},
		{"UnknownField", acme.OwnerAccess, `{"tenant_id":"acme","plan_id":"pro","coupon":"FREE"}`, http.StatusBadRequest, "bad_request"},
		{"MissingPlan", acme.OwnerAccess, `{"tenant_id":"acme"}`, http.StatusBadRequest, "bad_request"},
		{"MissingTenant", acme.OwnerAccess, `{"plan_id":"pro"}`, http.StatusBadRequest, "bad_request"},
		{"EmptyBody", acme.OwnerAccess, ``, http.StatusBadRequest, "bad_request"},
		{"OperatorInsteadOfString", acme.OwnerAccess, `{"tenant_id":{"$ne":""},"plan_id":"pro"}`, http.StatusBadRequest, "bad_request"},
		{"AdminUnknownTenant", b.admin, valid("nowhere", "pro"), http.StatusNotFound, "tenant_not_found"},
		{"AdminAnyTenant", b.admin, valid("globex", "pro"), http.StatusCreated, ""},
		{"OwnerOwnTenant", globex.OwnerAccess, valid("globex", "pro"), http.StatusCreated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(b.stripe.Calls("", ""))
			r := b.Do(t, "POST", "/subscriptions", tt.token, tt.body)
			after := len(b.stripe.Calls("", ""))
			switch {
			case tt.status == http.StatusUnauthorized:
				wantUnauthenticated(t, r)
			case tt.code != "":
				wantProblem(t, r, tt.status, tt.code)
			default:
				wantStatus(t, r, tt.status)
				if !strings.HasPrefix(r.Str("session_id"), "cs_") {
					t.Errorf("%v: no cs_ session_id", r)
				}
			}
			if tt.code != "" && after != before {
				t.Errorf("a refused checkout made %d Stripe calls: %v", after-before, b.stripe.Calls("", "")[before:])
			}
		})
	}

	// Only globex ever got a customer: the refusals about acme created none.
	customers := b.stripe.Calls("POST", "/v1/customers")
	if len(customers) != 1 || customers[0].Form.Get("metadata[tenant_id]") != "globex" {
		t.Errorf("Stripe customers created: %d, want exactly one, for globex", len(customers))
	}
	if r := b.Do(t, "GET", "/tenants/acme", b.admin, nil); r.Obj("billing") != nil {
		t.Errorf("acme has billing state after refused checkouts: %s", r.Raw)
	}
}

// ---------------------------------------------------------------------------------------------
// 3. Subscription lifecycle through the API

// A tenant starts with no subscription on the default plan; a completed Checkout (signed
// webhook) makes it active on the bought plan; a second Checkout is then a conflict, and the
// customer portal opens for the tenant's customer. Without a customer the portal is a conflict.
func TestBillingAPI_CompletedCheckoutActivatesThePlanAndOpensThePortal(t *testing.T) {
	b := billServer(t)
	f := b.NewTenant(t, "initech")
	other := b.NewTenant(t, "hooli")

	// Before anything: no subscription, the default plan, and no portal.
	r := b.current(t, f.OwnerAccess)
	mustStatus(t, r, http.StatusOK)
	if customer, ok := r.Body["customer_id"]; r.Str("tenant_id") != "initech" || r.Str("status") != "none" || r.Str("plan") != billDefault ||
		r.Str("subscription_id") != "" || !ok || customer != nil {
		t.Errorf("subscription before any checkout = %s, want status none on plan %s, customer_id null", r.Raw, billDefault)
	}
	wantProblem(t, b.portal(t, f.OwnerAccess), http.StatusConflict, "no_subscription")
	if n := len(b.stripe.Calls("POST", "/v1/billing_portal/sessions")); n != 0 {
		t.Errorf("%d portal sessions created for a tenant without a customer", n)
	}

	// A started but unfinished Checkout changes nothing.
	customer := b.mustSubscribe(t, f.OwnerAccess, "initech")
	if r := b.current(t, f.OwnerAccess); r.Str("status") != "none" || r.Str("plan") != billDefault || r.Str("customer_id") != customer {
		t.Errorf("subscription after an unfinished checkout = %s, want still none on %s, customer_id %s", r.Raw, billDefault, customer)
	}

	// Stripe reports the Checkout completed.
	subID := "sub_" + unique() + "initech"
	ev := billCheckoutCompleted(t, billEventID("checkout"), "initech", customer, subID, time.Now())
	wantWebhookOK(t, billDeliver(t, b.Client, ev, billSign(ev)))

	r = b.current(t, f.OwnerAccess)
	mustStatus(t, r, http.StatusOK)
	if r.Str("status") != "active" || r.Str("plan") != "pro" || r.Str("subscription_id") != subID || r.Str("tenant_id") != "initech" ||
		r.Str("customer_id") != customer {
		t.Errorf("subscription after checkout.session.completed = %s, want active on pro with %s for %s", r.Raw, subID, customer)
	}
	// An admin names the tenant with X-Tenant-ID and sees the same.
	if a := b.current(t, b.admin, testenv.WithHeader("X-Tenant-ID", "initech")); !wantStatus(t, a, http.StatusOK) || !bytes.Equal(a.Raw, r.Raw) {
		t.Errorf("admin sees %s, owner sees %s", a.Raw, r.Raw)
	}
	wantProblem(t, b.current(t, b.admin, testenv.WithHeader("X-Tenant-ID", "nowhere")), http.StatusNotFound, "tenant_not_found")
	// Only the owner: the tenant's user is refused; another tenant's owner naming initech
	// gets their own tenant's subscription.
	wantProblem(t, b.current(t, f.UserAccess), http.StatusForbidden, "forbidden")
	if o := b.current(t, other.OwnerAccess, testenv.WithHeader("X-Tenant-ID", "initech")); o.Str("tenant_id") != "hooli" || o.Str("status") != "none" {
		t.Errorf("hooli's owner naming initech got %s, want hooli's own subscription", o.Raw)
	}

	// A second Checkout while subscribed is a conflict, and asks Stripe nothing.
	calls := len(b.stripe.Calls("", ""))
	wantProblem(t, b.subscribe(t, f.OwnerAccess, "initech", "pro"), http.StatusConflict, "subscription_exists")
	wantProblem(t, b.subscribe(t, b.admin, "initech", "pro"), http.StatusConflict, "subscription_exists")
	if n := len(b.stripe.Calls("", "")); n != calls {
		t.Errorf("a refused second checkout made %d Stripe calls", n-calls)
	}

	// The portal opens for the tenant's customer.
	p := b.portal(t, f.OwnerAccess)
	if wantStatus(t, p, http.StatusOK) {
		wantKeys(t, p, "url")
		billWantHTTPS(t, p, "url")
	}
	portals := b.stripe.Calls("POST", "/v1/billing_portal/sessions")
	if len(portals) != 1 {
		t.Fatalf("%d POST /v1/billing_portal/sessions, want 1", len(portals))
	}
	if got := portals[0].Form.Get("customer"); got != customer {
		t.Errorf("portal session customer %q, want the tenant's %q", got, customer)
	}
	if portals[0].Form.Get("return_url") == "" {
		t.Errorf("portal session without return_url: %v", portals[0].Form)
	}
	wantProblem(t, b.portal(t, f.UserAccess), http.StatusForbidden, "forbidden")
	wantUnauthenticated(t, b.portal(t, ""))

	// A tenant without a Stripe customer has no portal, whoever asks.
	wantProblem(t, b.portal(t, other.OwnerAccess), http.StatusConflict, "no_subscription")
	wantProblem(t, b.portal(t, b.admin, testenv.WithHeader("X-Tenant-ID", "hooli")), http.StatusConflict, "no_subscription")
	if n := len(b.stripe.Calls("POST", "/v1/billing_portal/sessions")); n != 1 {
		t.Errorf("%d portal sessions after refusals, want still 1", n)
	}
}

// ---------------------------------------------------------------------------------------------
// 4. Webhook signature

// POST /webhooks/stripe verifies Stripe-Signature on the raw body before anything else: a
// tampered body, a missing, foreign, malformed or stale signature, and a body over 1 MiB are
// each refused with 400 and change nothing (not the tenant, not the event log), though each
// carries an event that would otherwise activate the tenant. A properly signed event is
// acknowledged with the contract's body, as is one of a type billing ignores.
func TestBillingAPI_WebhookSignatureIsVerifiedBeforeAnythingIsStored(t *testing.T) {
	b := billServer(t)
	f := b.NewTenant(t, "hooli")
	customer := b.mustSubscribe(t, f.OwnerAccess, "hooli")
	db := b.store(t)

	before := b.current(t, f.OwnerAccess)
	mustStatus(t, before, http.StatusOK)
	if before.Str("status") != "none" {
		t.Fatalf("subscription before the webhooks = %s, want none", before.Raw)
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if after := b.current(t, f.OwnerAccess); !bytes.Equal(after.Raw, before.Raw) {
			t.Errorf("subscription changed by a refused delivery:\nbefore %s\nafter  %s", before.Raw, after.Raw)
		}
		if n := billStoredEvents(t, db); n != 0 {
			t.Errorf("%d Stripe events stored after refused deliveries, want 0", n)
		}
	}

	subID := "sub_hooli" + unique()
	payload := billCheckoutCompleted(t, billEventID("checkout"), "hooli", customer, subID, time.Now())
	tampered := bytes.Clone(payload)
	i := bytes.Index(tampered, []byte(subID))
	tampered[i+len(subID)-1]++ // still valid JSON: another subscription id
	// An event that would activate the tenant, padded with white space (still valid JSON)
	// to one byte over 1 MiB.
	big := billCheckoutCompleted(t, billEventID("big"), "hooli", customer, "sub_big"+unique(), time.Now())
	big = append(big, bytes.Repeat([]byte(" "), (1<<20)+1-len(big))...)

	refusals := []struct {
		name      string
		payload   []byte
		signature string
		code      string
	}{
		{"OneByteChanged", tampered, billSign(payload), "invalid_signature"},
		{"NoSignature", payload, "", "invalid_signature"},
		{"SignedWithAnotherSecret", payload, testenv.SignStripe(payload, "whsec_not_the_configured_one", time.Now()), "invalid_signature"},
		{"MalformedSignature", payload, "t=notatime,v1=deadbeef", "invalid_signature"},
		{"SignedThreeHundredAndOneSecondsAgo", payload, testenv.SignStripe(payload, testenv.WebhookSecret, time.Now().Add(-301*time.Second)), "invalid_signature"},
		{"OverOneMebibyte", big, billSign(big), "bad_request"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, billDeliver(t, b.Client, tt.payload, tt.signature), http.StatusBadRequest, tt.code)
			unchanged(t)
		})
	}

	// A type billing does not handle, signed within the 300 s tolerance, is acknowledged and
	// ignored; so is one of exactly 1 MiB.
	t.Run("UnhandledTypeSignedWithinTolerance", func(t *testing.T) {
		ev := testenv.StripeEvent(t, billEventID("customer"), "customer.created", time.Now(),
			map[string]any{"id": customer, "object": "customer", "metadata": map[string]string{"tenant_id": "hooli"}})
		wantWebhookOK(t, billDeliver(t, b.Client, ev, testenv.SignStripe(ev, testenv.WebhookSecret, time.Now().Add(-290*time.Second))))
		unchanged(t)
	})
	t.Run("UnhandledTypeOfExactlyOneMebibyte", func(t *testing.T) {
		ev := testenv.StripeEvent(t, billEventID("customer"), "customer.updated", time.Now(),
			map[string]any{"id": customer, "object": "customer"})
		ev = append(ev, bytes.Repeat([]byte(" "), (1<<20)-len(ev))...)
		wantWebhookOK(t, billDeliver(t, b.Client, ev, billSign(ev)))
		unchanged(t)
	})

	// The untampered event, properly signed, is applied once; its redelivery is acknowledged
	// and changes nothing more.
	wantWebhookOK(t, billDeliver(t, b.Client, payload, billSign(payload)))
	r := b.current(t, f.OwnerAccess)
	if r.Str("status") != "active" || r.Str("plan") != "pro" || r.Str("subscription_id") != subID {
		t.Errorf("subscription after the valid delivery = %s, want active on pro with %s", r.Raw, subID)
	}
	wantWebhookOK(t, billDeliver(t, b.Client, payload, billSign(payload)))
	if again := b.current(t, f.OwnerAccess); !bytes.Equal(again.Raw, r.Raw) {
		t.Errorf("a redelivery changed the subscription:\nbefore %s\nafter  %s", r.Raw, again.Raw)
	}
	if n := billStoredEvents(t, db); n != 1 {
		t.Errorf("%d Stripe events stored, want 1 (the applied one)", n)
	}
}

// ---------------------------------------------------------------------------------------------
// 5. Billing disabled

// Without a stripe block every billing route answers 503 billing_disabled (to owners, admins
// and Stripe alike), while the rest of the API works.
func TestBillingAPI_WithoutStripeEveryBillingRouteAnswersBillingDisabled(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "dunder")
	admin := s.AdminToken(t)
	ev := testenv.StripeEvent(t, billEventID("disabled"), "checkout.session.completed", time.Now(), testenv.StripeCheckoutSession{
		ID: "cs_test_disabled", Tenant: "dunder", Plan: "pro", Customer: "cus_disabled", Subscription: "sub_disabled",
	}.Object())
	body := map[string]string{"tenant_id": "dunder", "plan_id": "pro"}

	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		opts         []testenv.Option
	}{
		{"SubscribeAsOwner", "POST", "/subscriptions", f.OwnerAccess, body, nil},
		{"SubscribeAsAdmin", "POST", "/subscriptions", admin, body, nil},
		{"CurrentAsOwner", "GET", "/subscriptions/current", f.OwnerAccess, nil, nil},
		{"CurrentAsAdmin", "GET", "/subscriptions/current", admin, nil, []testenv.Option{testenv.WithHeader("X-Tenant-ID", "dunder")}},
		{"PortalAsOwner", "POST", "/subscriptions/portal", f.OwnerAccess, nil, nil},
		{"SignedWebhook", "POST", "/webhooks/stripe", "", ev, []testenv.Option{testenv.WithHeader("Stripe-Signature", billSign(ev))}},
		{"UnsignedWebhook", "POST", "/webhooks/stripe", "", ev, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, s.Do(t, tt.method, tt.path, tt.token, tt.body, tt.opts...), http.StatusServiceUnavailable, "billing_disabled")
		})
	}

	// The rest of the API is unaffected.
	mustStatus(t, s.Signup(t, "new@scranton.test", testenv.Password, "scranton", ""), http.StatusCreated)
	mustStatus(t, s.Do(t, "GET", "/plans", "", nil), http.StatusOK)
	if me := s.Do(t, "GET", "/me", f.OwnerAccess, nil); !wantStatus(t, me, http.StatusOK) || me.Str("tenant_id") != "dunder" {
		t.Errorf("GET /me = %s", me.Raw)
	}
	if r := s.Do(t, "GET", "/tenants/dunder", admin, nil); r.Obj("billing") != nil || r.Str("plan") != "free" {
		t.Errorf("dunder after billing calls on a disabled gateway = %s, want no billing state, plan free", r.Raw)
	}
}

// ---------------------------------------------------------------------------------------------
// 6. Suspended tenants can still pay

// A tenant whose payment failed (past due, flagged on gateway answers) and that is then
// suspended gets 402 from the gateway, but its owner can still log in, read the subscription
// and open the customer portal to pay.
func TestBillingAPI_SuspendedTenantsOwnerStillReachesTheBillingRoutes(t *testing.T) {
	b := billServer(t)
	f := b.NewTenant(t, "vance")
	customer := b.mustSubscribe(t, f.OwnerAccess, "vance")
	subID := "sub_vance" + unique()
	now := time.Now()

	ev := billCheckoutCompleted(t, billEventID("checkout"), "vance", customer, subID, now)
	wantWebhookOK(t, billDeliver(t, b.Client, ev, billSign(ev)))
	wantStatus(t, b.get(t, "app", "vance", f.OwnerAccess), http.StatusOK)

	ev = billPaymentFailed(t, billEventID("failed"), "vance", customer, subID, now.Add(time.Second))
	wantWebhookOK(t, billDeliver(t, b.Client, ev, billSign(ev)))
	r := b.current(t, f.OwnerAccess)
	if r.Str("status") != "past_due" || r.Str("plan") != "pro" || r.Str("grace_until") == "" {
		t.Errorf("subscription after invoice.payment_failed = %s, want past_due on pro with grace_until", r.Raw)
	}
	gw := b.get(t, "app", "vance", f.OwnerAccess)
	if wantStatus(t, gw, http.StatusOK) && !strings.HasPrefix(gw.Header.Get("Billing-Status"), "past_due") {
		t.Errorf("gateway answer while past due: Billing-Status %q, want past_due...", gw.Header.Get("Billing-Status"))
	}

	// The grace period ends unpaid (an admin's suspension would not do: it refuses the owner).
	b.suspendForNonPayment(t, b.admin, "vance")
	wantProblem(t, b.get(t, "app", "vance", f.OwnerAccess), http.StatusPaymentRequired, "tenant_suspended")

	owner := b.MustLogin(t, f.OwnerEmail, "vance")
	r = b.current(t, owner.Access)
	if wantStatus(t, r, http.StatusOK) && (r.Str("status") != "suspended" || r.Str("subscription_id") != subID) {
		t.Errorf("suspended tenant's subscription = %s, want suspended with %s", r.Raw, subID)
	}
	p := b.portal(t, owner.Access)
	if wantStatus(t, p, http.StatusOK) {
		billWantHTTPS(t, p, "url")
	}
	portals := b.stripe.Calls("POST", "/v1/billing_portal/sessions")
	if len(portals) != 1 || portals[0].Form.Get("customer") != customer {
		t.Errorf("portal sessions %v, want one for %s", portals, customer)
	}
	// The gateway still refuses the tenant's traffic.
	wantProblem(t, b.get(t, "app", "vance", owner.Access), http.StatusPaymentRequired, "tenant_suspended")
}

// ---------------------------------------------------------------------------------------------
// 7. What binds an event to a tenant

// A Payment Link's Checkout names a victim in client_reference_id (taken from the link's URL),
// with no metadata and a customer of its own; its completion and the later payment failure of
// that customer are acknowledged with 200 and leave the victim as it was: no customer, no
// subscription, no past due, and no Billing-Status on its gateway answers.
func TestBillingAPI_PaymentLinkNamingAVictimChangesNothing(t *testing.T) {
	b := billServer(t)
	victim := b.NewTenant(t, "wayne")
	stranger, subID, now := "cus_link"+unique(), "sub_link"+unique(), time.Now()
	before := b.current(t, victim.OwnerAccess)
	mustStatus(t, before, http.StatusOK)

	completed := testenv.StripeEvent(t, billEventID("link"), "checkout.session.completed", now, testenv.StripeCheckoutSession{
		ID: "cs_link" + unique(), Tenant: "wayne", Customer: stranger, Subscription: subID, ReferenceOnly: true,
	}.Object())
	wantWebhookOK(t, billDeliver(t, b.Client, completed, billSign(completed)))
	failed := billPaymentFailed(t, billEventID("link_failed"), "", stranger, subID, now.Add(time.Second))
	wantWebhookOK(t, billDeliver(t, b.Client, failed, billSign(failed)))

	if after := b.current(t, victim.OwnerAccess); !bytes.Equal(after.Raw, before.Raw) {
		t.Errorf("victim's subscription %s, was %s", after.Raw, before.Raw)
	}
	gw := b.get(t, "app", "wayne", victim.OwnerAccess)
	if wantStatus(t, gw, http.StatusOK) && gw.Header.Get("Billing-Status") != "" {
		t.Errorf("victim's gateway answer carries Billing-Status %q", gw.Header.Get("Billing-Status"))
	}
}
