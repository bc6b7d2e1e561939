package caddymodule_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
)

// These tests follow events from the change that makes them (a signed Stripe webhook, a request
// through a tenant site, an account change) through the outbox and its workers to a receiver
// on 127.0.0.1 that checks each delivery as a receiver would, from the Standard Webhooks spec
// and the README (Notifications, Notification events).

// notifyOptions let the workers reach the test's receiver (a loopback address the SSRF guard
// refuses otherwise) and retry soon. The default plan free has a small quota, slow a small
// rate, pro is bought through Stripe.
const notifyOptions = `grace_period 48h
usage_alerts 50 100
webhooks {
	retry_schedule 0s 1s
	timeout 2s
	allow_private 127.0.0.0/8
}
plan free {
	rate 100/1s
	burst 20
	quota 10/month
}
plan slow {
	rate 2/1m
}
plan pro {
	rate 100/1m
	quota 100000/month
	stripe_price ` + gwProPrice + `
}`

func startNotifyGateway(t *testing.T) *gateway {
	t.Helper()
	stripe := fmt.Sprintf("stripe {\n secret_key %s\n webhook_secret %s\n api_base %s\n success_url https://app.example.test/billing/done\n}\n",
		testenv.StripeMockKey, testenv.WebhookSecret, testenv.StripeMock(t))
	return startGateway(t, gatewayConfig{redis: true, options: stripe + notifyOptions, apiSite: "\tmetrics /metrics",
		sites: []gatewaySite{{"gw", pipeline}}})
}

// hook is one delivery as the receiver got it: path names the endpoint (the receiver serves
// them all), then the Standard Webhooks headers, the body and the payload it decodes to.
type hook struct {
	path, id, timestamp, signature string
	body                           []byte
	Type                           string         `json:"type"`
	Timestamp                      string         `json:"timestamp"`
	Data                           map[string]any `json:"data"`
}

// receiver records every POST and answers 204.
type receiver struct {
	URL   string
	mu    sync.Mutex
	hooks []hook
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := hook{path: r.URL.Path, id: r.Header.Get("webhook-id"), timestamp: r.Header.Get("webhook-timestamp"),
			signature: r.Header.Get("webhook-signature"), body: body}
		_ = json.Unmarshal(body, &h) // a body that is not a payload shows in the checks
		rc.mu.Lock()
		rc.hooks = append(rc.hooks, h)
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

// got returns the deliveries to path of typ ("" for every type).
func (rc *receiver) got(path, typ string) []hook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hook
	for _, h := range rc.hooks {
		if h.path == path && (typ == "" || h.Type == typ) {
			out = append(out, h)
		}
	}
	return out
}

// wait polls until path has n deliveries of typ (the workers poll every second; a publish
// wakes them at once) and returns them.
func (rc *receiver) wait(t *testing.T, path, typ string, n int) []hook {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got := rc.got(path, typ); len(got) >= n {
			return got
		}
	}
	t.Fatalf("%s: %d %s deliveries after 10s, want %d (%d of any type)", path, len(rc.got(path, typ)), typ, n, len(rc.got(path, "")))
	return nil
}

// settled waits long enough for a delivery that should not come to have come (more than a
// worker's poll interval), then lists the types delivered to path, in arrival order.
func (rc *receiver) settled(path string) []string {
	time.Sleep(1500 * time.Millisecond)
	var out []string
	for _, h := range rc.got(path, "") {
		out = append(out, h.Type)
	}
	return out
}

// register makes an endpoint of tenantID at the receiver's path for events (none: every type)
// and returns the secret shown at its creation.
func register(t *testing.T, g *gateway, token, tenantID string, rc *receiver, path string, events ...string) string {
	t.Helper()
	r := g.Do(t, "POST", "/tenants/"+tenantID+"/webhook-endpoints", token,
		map[string]any{"url": rc.URL + path, "events": append([]string{}, events...)})
	mustStatus(t, r, http.StatusCreated)
	if r.Str("id") == "" || !strings.HasPrefix(r.Str("secret"), "whsec_") {
		t.Fatalf("%v: want an id and a whsec_ secret", r)
	}
	return r.Str("secret")
}

// signedBy reports whether one of h's signatures is secret's, as Standard Webhooks defines it:
// "v1," + base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>", keyed with the
// base64-decoded part of the secret after "whsec_"; several signatures are space-separated.
func signedBy(t *testing.T, h hook, secret string) bool {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("secret %q is not whsec_ + base64: %v", secret, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.id + "." + h.timestamp + "."))
	mac.Write(h.body)
	want := mac.Sum(nil)
	for _, s := range strings.Split(h.signature, " ") {
		version, b64, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// verify checks what a receiver must check of a delivery: the signature, a fresh timestamp and
// an id, and the payload's envelope {type, timestamp, data} with data naming the tenant.
func verify(t *testing.T, h hook, secret, tenantID string) {
	t.Helper()
	if !signedBy(t, h, secret) {
		t.Errorf("%s %s: signature %q is not the endpoint secret's", h.path, h.Type, h.signature)
	}
	ts, err := strconv.ParseInt(h.timestamp, 10, 64)
	if h.id == "" || err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		t.Errorf("%s %s: webhook-id %q, webhook-timestamp %q: want an id and Unix seconds of about now", h.path, h.Type, h.id, h.timestamp)
	}
	if _, err := time.Parse(time.RFC3339, h.Timestamp); err != nil {
		t.Errorf("%s %s: payload timestamp %q is not RFC 3339: %s", h.path, h.Type, h.Timestamp, h.body)
	}
	if h.Data["tenant_id"] != tenantID {
		t.Errorf("%s %s: data.tenant_id %v, want %s: %s", h.path, h.Type, h.Data["tenant_id"], tenantID, h.body)
	}
}

// wantData checks data's fields: the values of the wants together, and no field beyond them
// and tenant_id.
func wantData(t *testing.T, h hook, wants ...map[string]any) {
	t.Helper()
	want := map[string]any{"tenant_id": h.Data["tenant_id"]} // checked by verify
	for _, w := range wants {
		for k, v := range w {
			want[k] = v
		}
	}
	for k, v := range want {
		if got, ok := h.Data[k]; !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s: data.%s = %v, want %v: %s", h.Type, k, got, v, h.body)
		}
	}
	for k := range h.Data {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: data.%s is not documented: %s", h.Type, k, h.body)
		}
	}
}

// once waits for exactly one delivery of typ to path, verified with secret.
func (rc *receiver) once(t *testing.T, path, typ, secret, tenantID string) hook {
	t.Helper()
	h := rc.wait(t, path, typ, 1)[0]
	verify(t, h, secret, tenantID)
	return h
}

// Signed Stripe webhooks make the tenant's endpoint and the platform's each get the billing
// events, once, with the documented payloads and each endpoint's own signature; the delivery
// logs show them succeeded and the metrics count them.
func TestNotifyE2E_BillingEventsReachTenantAndPlatformEndpoints(t *testing.T) {
	g := startNotifyGateway(t)
	rc := newReceiver(t)
	admin := g.AdminToken(t)
	before := testenv.Scrape(t, g.Client, "/metrics")
	platform := register(t, g, admin, "system", rc, "/platform")
	s := gwSubscribe(t, g, "e2e-buyer")
	tenant := register(t, g, s.OwnerAccess, s.ID, rc, "/tenant")
	// The platform hears of the new tenant's members: the owner's signup is how it learns of
	// the tenant.
	var roles []string
	for _, h := range rc.wait(t, "/platform", "member.joined", 2) {
		verify(t, h, platform, s.ID)
		roles = append(roles, fmt.Sprint(h.Data["role"]))
	}
	if !slices.Equal(slices.Sorted(slices.Values(roles)), []string{"owner", "user"}) {
		t.Errorf("the platform's member.joined roles %v, want the owner's and the invited user's", roles)
	}

	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	anchor := gwAnchor(time.Now())
	periodEnd := anchor.AddDate(0, 1, 0).Format(time.RFC3339)
	graceUntil := base.Add(time.Minute + 48*time.Hour).Format(time.RFC3339)
	gwDeliver(t, g, "customer.subscription.created", base, s.subscriptionObject("active", anchor))
	gwDeliver(t, g, "invoice.payment_failed", base.Add(time.Minute), s.invoiceObject("in_e2e_1", "open"))
	gwDeliver(t, g, "invoice.paid", base.Add(2*time.Minute), s.invoiceObject("in_e2e_1", "paid"))
	gwDeliver(t, g, "customer.subscription.deleted", base.Add(3*time.Minute), s.subscriptionObject("canceled", anchor))

	sub := map[string]any{"customer_id": s.customer, "subscription_id": s.subscription, "period_end": periodEnd}
	want := map[string]map[string]any{
		"subscription.activated": {"plan": "pro", "status": "active"},
		"payment.failed":         {"plan": "pro", "status": "past_due", "invoice_id": "in_e2e_1", "grace_until": graceUntil},
		"payment.succeeded":      {"plan": "pro", "status": "active", "invoice_id": "in_e2e_1"},
		"subscription.canceled":  {"plan": "free", "status": "canceled", "previous_plan": "pro"},
	}
	types := slices.Sorted(maps.Keys(want))
	for _, typ := range types {
		h := rc.once(t, "/tenant", typ, tenant, s.ID)
		wantData(t, h, sub, want[typ])
		if typ == "subscription.activated" && h.Timestamp != base.Format(time.RFC3339) {
			t.Errorf("%s: timestamp %s, want the change's: the Stripe event's created, %s", typ, h.Timestamp, base.Format(time.RFC3339))
		}
		// A receiver holding another endpoint's secret cannot pass a delivery off as its own.
		if signedBy(t, h, platform) {
			t.Errorf("%s to the tenant's endpoint verifies with the platform endpoint's secret", typ)
		}
		p := rc.once(t, "/platform", typ, platform, s.ID)
		if p.id != h.id || string(p.body) != string(h.body) {
			t.Errorf("%s: the platform got id %s %s, the tenant id %s %s; want one event", typ, p.id, p.body, h.id, h.body)
		}
	}
	if got := rc.settled("/tenant"); !slices.Equal(slices.Sorted(slices.Values(got)), types) {
		t.Errorf("the tenant's endpoint got %v, want each of %v once", got, types)
	}

	for _, log := range []struct{ tenant, token string }{{s.ID, s.OwnerAccess}, {"system", admin}} {
		r := g.Do(t, "GET", "/tenants/"+log.tenant+"/webhook-deliveries?status=succeeded", log.token, nil)
		mustStatus(t, r, http.StatusOK)
		var page struct {
			Deliveries []struct {
				Type, Status string
				Attempts     []struct {
					At         time.Time
					StatusCode int `json:"status_code"`
				}
			}
		}
		if err := json.Unmarshal(r.Raw, &page); err != nil {
			t.Fatal(err)
		}
		var logged []string
		for _, d := range page.Deliveries {
			if d.Type == "member.joined" {
				continue // the platform's
			}
			logged = append(logged, d.Type)
			if d.Status != "succeeded" || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != http.StatusNoContent || time.Since(d.Attempts[0].At) > time.Minute {
				t.Errorf("%s's delivery log: %s %s with attempts %+v, want succeeded at a first attempt just now (204)", log.tenant, d.Type, d.Status, d.Attempts)
			}
		}
		if !slices.Equal(slices.Sorted(slices.Values(logged)), types) {
			t.Errorf("%s's delivery log has %v succeeded, want %v: %s", log.tenant, logged, types, r.Raw)
		}
	}

	// Each event is counted once by type; each of the 10 deliveries (8 billing, 2 member) once
	// as a success (the counters are the process's: compare with before, and poll, since a
	// worker counts its attempt after the receiver has answered).
	grown := func(m testenv.Metrics, name string, labels map[string]string) float64 {
		return m.Value(name, labels) - before.Value(name, labels)
	}
	success := map[string]string{"result": "success"}
	after := testenv.Scrape(t, g.Client, "/metrics")
	for deadline := time.Now().Add(5 * time.Second); grown(after, "saasgate_webhooks_deliveries_total", success) < 10 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		after = testenv.Scrape(t, g.Client, "/metrics")
	}
	if d := grown(after, "saasgate_webhooks_deliveries_total", success); d != 10 {
		t.Errorf("saasgate_webhooks_deliveries_total{result=\"success\"} grew by %v, want 10", d)
	}
	emitted := map[string]float64{"member.joined": 2} // the owner's and the user's
	for _, typ := range types {
		emitted[typ] = 1
	}
	for typ, want := range emitted {
		if d := grown(after, "saasgate_webhooks_events_total", map[string]string{"type": typ}); d != want {
			t.Errorf("saasgate_webhooks_events_total{type=%q} grew by %v, want %v", typ, d, want)
		}
	}
}

// Requests through a tenant site raise the limiter's events: each usage_alerts share of the
// quota once, however many requests follow, and rate_limit.exceeded once for many refusals.
func TestNotifyE2E_LimiterEventsReachTheReceiver(t *testing.T) {
	g := startNotifyGateway(t)
	rc := newReceiver(t)
	admin := g.AdminToken(t)
	limits := []string{"usage.threshold_reached", "rate_limit.exceeded"}

	f := g.NewTenant(t, "e2e-metered")
	e := register(t, g, f.OwnerAccess, f.ID, rc, "/metered", limits...)
	periodEnd := nextMonthUTC(time.Now()).Format(time.RFC3339)
	// send makes n requests as a tenant's user; code is the refusal's ("" for a 200).
	send := func(f *testenv.TenantFixture, n int, code string) {
		t.Helper()
		for range n {
			if r := g.get(t, "gw", f.ID, f.UserAccess); code == "" {
				wantStatus(t, r, http.StatusOK)
			} else {
				wantProblem(t, r, http.StatusTooManyRequests, code)
			}
		}
	}
	send(f, 5, "") // 5 of 10: 50 %
	h := rc.once(t, "/metered", "usage.threshold_reached", e, f.ID)
	wantData(t, h, map[string]any{"plan": "free", "threshold": 50, "quota_used": 5, "quota_limit": 10, "period_end": periodEnd})
	send(f, 5, "") // 10 of 10: 100 %
	hs := rc.wait(t, "/metered", "usage.threshold_reached", 2)
	verify(t, hs[1], e, f.ID)
	wantData(t, hs[1], map[string]any{"plan": "free", "threshold": 100, "quota_used": 10, "quota_limit": 10, "period_end": periodEnd})
	send(f, 3, "quota_exceeded") // no alert again
	if got := rc.settled("/metered"); len(got) != 2 {
		t.Errorf("the metered tenant's endpoint got %v, want the 50 %% and 100 %% alerts once each", got)
	}

	hasty := g.NewTenant(t, "e2e-hasty")
	g.PatchTenant(t, admin, hasty.ID, map[string]string{"plan": "slow"})
	he := register(t, g, hasty.OwnerAccess, hasty.ID, rc, "/hasty", limits...)
	send(hasty, 2, "")
	send(hasty, 4, "rate_limited")
	rl := rc.once(t, "/hasty", "rate_limit.exceeded", he, hasty.ID)
	wantData(t, rl, map[string]any{"plan": "slow"}) // slow has no quota, so no quota counts
	if got := rc.settled("/hasty"); len(got) != 1 {
		t.Errorf("the rate-limited tenant's endpoint got %v, want one rate_limit.exceeded for 4 refusals", got)
	}
}

// An invited member's signup is member.joined; an owner's change of a member's role is
// member.role_changed, and the same role again publishes nothing.
func TestNotifyE2E_MemberEventsReachTheReceiver(t *testing.T) {
	g := startNotifyGateway(t)
	rc := newReceiver(t)
	_, owner := g.NewOwner(t, "e2e-crew")
	e := register(t, g, owner.Access, "e2e-crew", rc, "/crew", "member.joined", "member.role_changed")

	email := "mate@e2e-crew.test"
	inv := g.MustInvite(t, owner.Access, "e2e-crew", email, "user")
	uid := g.MustSignup(t, email, "e2e-crew", inv)
	joined := rc.once(t, "/crew", "member.joined", e, "e2e-crew")
	wantData(t, joined, map[string]any{"user_id": uid, "email": email, "role": "user"})

	for range 2 { // the second PATCH changes nothing
		mustStatus(t, g.Do(t, "PATCH", "/tenants/e2e-crew/users/"+uid, owner.Access, map[string]string{"role": "owner"}), http.StatusOK)
	}
	changed := rc.once(t, "/crew", "member.role_changed", e, "e2e-crew")
	wantData(t, changed, map[string]any{"user_id": uid, "email": email, "role": "owner", "previous_role": "user"})
	if got := rc.settled("/crew"); !slices.Equal(got, []string{"member.joined", "member.role_changed"}) {
		t.Errorf("the endpoint got %v, want member.joined then one member.role_changed", got)
	}
}
