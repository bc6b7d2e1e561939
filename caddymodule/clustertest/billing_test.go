package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/internal/testenv"
)

// The billing grace flow across a fleet (SPEC §6): two bin/saasgate replicas serve the tenant,
// Stripe's webhooks reach whichever replica the load balancer picks, and the retry/suspension
// scheduler runs on a third replica, an in-test control.Service on the same MongoDB and Redis
// prefix whose clock the test moves. Every billing change made on one of them must reach the
// others' tenant caches through Redis pub/sub.

const (
	billingGrace = 168 * time.Hour // grace_period of every replica (the default, written out)
	billingPrice = "price_cluster_pro"
	freeLimit    = "1000" // generous: the test polls the replicas
	proLimit     = "5000"
)

// billingPlans is the catalog of the billing fleet: free by default, pro bought through Stripe.
func billingPlans() string {
	return planBlock("free", freeLimit+"/1m", 0) +
		"\t\tplan pro {\n\t\t\trate " + proLimit + "/1m\n\t\t\tstripe_price " + billingPrice + "\n\t\t}\n"
}

// stripeBlock is the stripe block (and grace_period) of the replicas' saas options, with the
// Stripe API at apiBase.
func stripeBlock(apiBase string) string {
	return fmt.Sprintf("\t\tgrace_period %s\n\t\tstripe {\n\t\t\tsecret_key %s\n\t\t\twebhook_secret %s\n\t\t\tapi_base %s\n"+
		"\t\t\tsuccess_url https://app.example.test/billing/done\n\t\t}\n",
		billingGrace, testenv.StripeMockKey, testenv.WebhookSecret, apiBase)
}

// schedulerReplica assembles a control plane in the test process on the fleet's database and
// Redis prefix, with the clock and Stripe API base given: the replica whose billing scheduler
// the test ticks by hand.
func schedulerReplica(t *testing.T, f fleet, clock *testenv.Clock, stripeAPI string) *control.Service {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	backend, err := control.OpenBackend(c, control.BackendConfig{MongoURI: f.mongoURI, Database: f.database})
	if err != nil {
		t.Fatalf("scheduler replica: %v", err)
	}
	t.Cleanup(func() { _ = backend.Close() })
	rt, err := control.OpenRuntime(control.RuntimeConfig{RedisURL: f.redisURL, KeyPrefix: f.prefix})
	if err != nil {
		t.Fatalf("scheduler replica: %v", err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	catalog, err := plan.NewCatalog([]*plan.Plan{
		{ID: "free", Rate: plan.Rate{Count: 1000, Period: time.Minute}},
		{ID: "pro", Rate: plan.Rate{Count: 5000, Period: time.Minute}, StripePrice: billingPrice},
	}, "free")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := control.New(c, backend, rt, control.Config{
		JWTSecret: []byte(testenv.JWTSecret),
		Plans:     catalog,
		Now:       clock.Now,
		Stripe:    control.StripeConfig{SecretKey: testenv.StripeMockKey, APIBase: stripeAPI},
		Billing: control.BillingConfig{
			WebhookSecret: testenv.WebhookSecret,
			SuccessURL:    "https://app.example.test/billing/done",
			Grace:         billingGrace,
		},
	})
	if err != nil {
		t.Fatalf("scheduler replica: %v", err)
	}
	return svc
}

// deliver signs a Stripe event (signed now, as Stripe signs each delivery; created is the
// event's own time) and posts it to g's webhook route, which must accept it.
func (g *gateway) deliver(t *testing.T, typ string, created time.Time, object map[string]any) {
	t.Helper()
	id := fmt.Sprintf("evt_cluster_%s_%d", strings.ReplaceAll(typ, ".", "_"), created.UnixNano())
	payload := testenv.StripeEvent(t, id, typ, created, object)
	req, err := http.NewRequest(http.MethodPost, g.api.Base+"/webhooks/stripe", strings.NewReader(string(payload)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", testenv.SignStripe(payload, testenv.WebhookSecret, time.Now()))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: delivering %s: %v", g.name, typ, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: delivering %s: status %d, want 200", g.name, typ, resp.StatusCode)
	}
}

// billingView is what one request through a replica's tenant site shows of the tenant's
// billing state.
type billingView struct {
	status        int
	code          string // problem code of a refusal
	plan          string // X-Tenant-Plan the upstream received ("" when refused)
	limit         string // X-RateLimit-Limit
	billingStatus string // Billing-Status response header
	hasBilling    bool   // whether the header is present at all
}

func (v billingView) String() string {
	return fmt.Sprintf("%d %s plan=%q X-RateLimit-Limit=%q Billing-Status=%q (present %v)",
		v.status, v.code, v.plan, v.limit, v.billingStatus, v.hasBilling)
}

func viewOf(t *testing.T, g *gateway, tenant, token string) (billingView, error) {
	r, err := g.tenantRequest(tenant, token)
	if err != nil {
		return billingView{}, err
	}
	v := billingView{status: r.Status, code: r.Code(), limit: r.Header.Get("X-RateLimit-Limit"),
		billingStatus: r.Header.Get("Billing-Status"), hasBilling: len(r.Header.Values("Billing-Status")) > 0}
	if r.Status == http.StatusOK {
		v.plan = upstreamSaw(t, r).Header.Get("X-Tenant-Plan")
	}
	return v, nil
}

// awaitView polls every replica until a request through it shows want (as decided by ok),
// failing the test when one still does not after a generous deadline: pub/sub takes
// milliseconds, the deadline only keeps a broken propagation from hanging the test.
func awaitView(t *testing.T, gws []*gateway, tenant, token, what string, ok func(billingView) bool) {
	t.Helper()
	start := time.Now()
	for _, g := range gws {
		took, err := eventually(start, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
			v, err := viewOf(t, g, tenant, token)
			if err != nil {
				return false, err.Error()
			}
			return ok(v), v.String()
		})
		if err != nil {
			t.Fatalf("%s: not %s 10 s after the change; last response: %v", g.name, what, err)
		}
		t.Logf("%s: %s after %s", g.name, what, took.Round(time.Millisecond))
	}
}

func TestBilling_GraceRetryAndSuspensionReachEveryReplica(t *testing.T) {
	t.Parallel()
	recorder := testenv.NewStripeRecorder(t)
	// stripe-mock never declines a card; the recorder declines every invoice payment, so the
	// scheduler's retries fail as they would for a customer whose card stays declined.
	recorder.Fail(http.MethodPost, "/v1/invoices/", "card_declined")
	f := newFleet(t, billingPlans())
	f.extra = stripeBlock(recorder.URL)
	gws := f.start(t, 2)
	one, two := gws[0], gws[1]

	// T is "now" for the fleet: the replicas' own schedulers run on the real clock, so with
	// events created at T they see nothing due (the first retry is at T+24h) and leave the
	// scheduling to the replica the test controls.
	T := time.Now().UTC().Truncate(time.Second)
	clock := testenv.NewClock(T)
	scheduler := schedulerReplica(t, f, clock, recorder.URL)

	const tenant = "graceful"
	token := one.newTenant(t, tenant)
	// POST /subscriptions makes the tenant's Stripe customer, which Stripe's events then name.
	if r := one.api.Do(t, http.MethodPost, "/subscriptions", token, map[string]string{"tenant_id": tenant, "plan_id": "pro"}); r.Status != http.StatusCreated {
		t.Fatalf("POST /subscriptions: %s", r)
	}
	tr := one.api.Do(t, http.MethodGet, "/tenants/"+tenant, token, nil)
	billing, _ := tr.Body["billing"].(map[string]any)
	customer, _ := billing["customer_id"].(string)
	if tr.Status != http.StatusOK || customer == "" {
		t.Fatalf("GET /tenants/%s after POST /subscriptions: %s; want a Stripe customer", tenant, tr)
	}
	const subscription, invoice = "sub_cluster_graceful", "in_cluster_graceful"
	invoiceObject := func(status string) map[string]any {
		return testenv.StripeInvoice{ID: invoice, Tenant: tenant, Customer: customer, Subscription: subscription, Status: status}.Object()
	}

	paidUp := func(v billingView) bool {
		return v.status == http.StatusOK && v.plan == "pro" && v.limit == proLimit && !v.hasBilling
	}

	// 1. Checkout completed, delivered to replica 1: both replicas serve pro's limits.
	one.deliver(t, "checkout.session.completed", T.Add(-time.Hour), testenv.StripeCheckoutSession{
		ID: "cs_cluster_graceful", Tenant: tenant, Plan: "pro", Customer: customer, Subscription: subscription,
	}.Object())
	awaitView(t, gws, tenant, token, "on pro, paid up", paidUp)

	// 2. The payment fails (event created at T), delivered to replica 2: both replicas keep pro
	// and say past_due with the grace period's end.
	two.deliver(t, "invoice.payment_failed", T, invoiceObject("open"))
	pastDue := `past_due; grace_until="` + T.Add(billingGrace).Format(time.RFC3339) + `"`
	inGrace := func(v billingView) bool {
		return v.status == http.StatusOK && v.plan == "pro" && v.limit == proLimit && v.billingStatus == pastDue
	}
	awaitView(t, gws, tenant, token, "past due in its grace period", inGrace)

	// 3. The scheduler retries the open invoice once a day has passed since the failure, not
	// before, and not twice for the same slot.
	tick := func(at time.Time) (retried, suspended []string) {
		t.Helper()
		clock.Set(at)
		rep, err := scheduler.Billing.Tick(ctx(t))
		if err != nil {
			t.Fatalf("Tick at T+%s: %v", at.Sub(T), err)
		}
		return rep.Retried, rep.Suspended
	}
	payCalls := func() []string {
		var paths []string
		for _, c := range recorder.Calls(http.MethodPost, "/v1/invoices/") {
			paths = append(paths, c.Path)
		}
		return paths
	}
	if retried, suspended := tick(T.Add(24*time.Hour - time.Minute)); len(retried)+len(suspended) > 0 || len(payCalls()) > 0 {
		t.Errorf("Tick at T+23h59m retried %v, suspended %v, Stripe pay calls %v; want nothing before the first retry at T+24h",
			retried, suspended, payCalls())
	}
	retried, suspended := tick(T.Add(24 * time.Hour))
	if !slices.Equal(retried, []string{tenant}) || len(suspended) > 0 {
		t.Errorf("Tick at T+24h retried %v, suspended %v; want the retry of %s only", retried, suspended, tenant)
	}
	tick(T.Add(25 * time.Hour))
	wantPay := []string{"/v1/invoices/" + invoice + "/pay"}
	if got := payCalls(); !slices.Equal(got, wantPay) {
		t.Errorf("Stripe invoice calls after Ticks at T+24h and T+25h: %v, want exactly %v", got, wantPay)
	}
	// The declined retry changes nothing the gateway shows.
	awaitView(t, gws, tenant, token, "still past due after a declined retry", inGrace)

	// 4. Grace over and still unpaid: the scheduler replica suspends the tenant and both gateway
	// replicas answer 402 tenant_suspended, saying why.
	retried, suspended = tick(T.Add(billingGrace))
	if !slices.Equal(suspended, []string{tenant}) || len(retried) > 0 {
		t.Errorf("Tick at T+grace suspended %v, retried %v; want the suspension of %s only", suspended, retried, tenant)
	}
	awaitView(t, gws, tenant, token, "suspended", func(v billingView) bool {
		return v.status == http.StatusPaymentRequired && v.code == "tenant_suspended" && v.billingStatus == "suspended"
	})
	// Why is the tenant's own business: an anonymous caller gets a plain 402.
	for _, g := range gws {
		r := g.mustTenantRequest(t, tenant, "")
		if r.Status != http.StatusPaymentRequired || r.Code() != "tenant_suspended" || len(r.Header.Values("Billing-Status")) > 0 ||
			bytes.Contains(r.Raw, []byte("non-payment")) {
			t.Errorf("%s: anonymous request for the suspended tenant: %v, Billing-Status %q; want a plain 402 tenant_suspended",
				g.name, r, r.Header.Values("Billing-Status"))
		}
	}
	if got := payCalls(); !slices.Equal(got, wantPay) {
		t.Errorf("Stripe invoice calls after the suspension: %v, want still only %v", got, wantPay)
	}

	// The control API still serves the suspended tenant's owner on every replica: logging in,
	// and the billing routes through which they pay.
	for _, g := range gws {
		owner := g.api.MustLogin(t, "owner@"+tenant+".test", tenant).Access
		cur := g.api.Do(t, http.MethodGet, "/subscriptions/current", owner, nil)
		if cur.Status != http.StatusOK {
			t.Errorf("%s: GET /subscriptions/current while suspended: %s", g.name, cur)
			continue
		}
		if body := cur.Body; body["status"] != "suspended" || body["plan"] != "pro" {
			t.Errorf("%s: GET /subscriptions/current while suspended: %s; want status suspended, plan pro", g.name, cur)
		}
		if r := g.api.Do(t, http.MethodPost, "/subscriptions/portal", owner, nil); r.Status != http.StatusOK {
			t.Errorf("%s: POST /subscriptions/portal while suspended: %s; want the portal URL to pay through", g.name, r)
		}
	}

	// 5. The invoice is paid at last (event created after the suspension), delivered to replica
	// 1: both replicas admit the tenant again, on pro, with no Billing-Status header.
	one.deliver(t, "invoice.paid", T.Add(billingGrace+time.Hour), invoiceObject("paid"))
	awaitView(t, gws, tenant, token, "reactivated on pro", paidUp)
	cur := two.api.Do(t, http.MethodGet, "/subscriptions/current", token, nil)
	if body := cur.Body; cur.Status != http.StatusOK || body["status"] != "active" {
		t.Errorf("%s: GET /subscriptions/current after invoice.paid: %s; want status active", two.name, cur)
	}
}
