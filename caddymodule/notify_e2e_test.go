package caddymodule_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
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

// These tests follow events from the change that makes them to a real receiver: signed Stripe
// webhooks, requests through a tenant site and account changes on one in-process gateway, the
// outbox and its workers, and an HTTP server on 127.0.0.1 that checks every delivery's
// signature the way a receiver would, from the Standard Webhooks spec (README, Notifications
// and Notification events).

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

// hook is one delivery as the receiver got it.
type hook struct {
	path                     string // which endpoint: the receiver serves them all
	id, timestamp, signature string // the Standard Webhooks headers
	body                     []byte
	Type, Timestamp          string
	Data                     map[string]any
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
		var p struct {
			Type      string         `json:"type"`
			Timestamp string         `json:"timestamp"`
			Data      map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &p); err == nil {
			h.Type, h.Timestamp, h.Data = p.Type, p.Timestamp, p.Data
		}
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := rc.got(path, typ); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %s deliveries after 10s, want %d; got %v", path, len(rc.got(path, typ)), typ, n, rc.types(path))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// types lists the types delivered to path, in arrival order.
func (rc *receiver) types(path string) []string {
	var out []string
	for _, h := range rc.got(path, "") {
		out = append(out, h.Type)
	}
	return out
}

// settle waits long enough for a delivery that should not come to have come: more than a
// worker's poll interval.
func settle() { time.Sleep(1500 * time.Millisecond) }

// endpoint is a registered webhook endpoint and the secret shown at its creation.
type endpoint struct{ id, secret, path string }

// register makes an endpoint of tenantID at the receiver's path for events (none: every type).
func register(t *testing.T, g *gateway, token, tenantID string, rc *receiver, path string, events ...string) endpoint {
	t.Helper()
	r := g.Do(t, "POST", "/tenants/"+tenantID+"/webhook-endpoints", token,
		map[string]any{"url": rc.URL + path, "events": append([]string{}, events...)})
	mustStatus(t, r, http.StatusCreated)
	e := endpoint{id: r.Str("id"), secret: r.Str("secret"), path: path}
	if e.id == "" || !strings.HasPrefix(e.secret, "whsec_") {
		t.Fatalf("%v: want an id and a whsec_ secret", r)
	}
	return e
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
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		t.Errorf("%s %s: webhook-timestamp %q is not Unix seconds of about now", h.path, h.Type, h.timestamp)
	}
	if h.id == "" {
		t.Errorf("%s %s: no webhook-id", h.path, h.Type)
	}
	if _, err := time.Parse(time.RFC3339, h.Timestamp); err != nil {
		t.Errorf("%s %s: payload timestamp %q is not RFC 3339: %s", h.path, h.Type, h.Timestamp, h.body)
	}
	if h.Data["tenant_id"] != tenantID {
		t.Errorf("%s %s: data.tenant_id %v, want %s: %s", h.path, h.Type, h.Data["tenant_id"], tenantID, h.body)
	}
}

// wantData checks data's fields: want's values (a nil value: present, any value) and no
// field beyond them and tenant_id.
func wantData(t *testing.T, h hook, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, ok := h.Data[k]
		if !ok || v != nil && fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s: data.%s = %v, want %v: %s", h.Type, k, got, v, h.body)
		}
	}
	for k := range h.Data {
		if _, ok := want[k]; !ok && k != "tenant_id" {
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
	platform := register(t, g, admin, "system", rc, "/platform")
	s := gwSubscribe(t, g, "e2e-buyer")
	tenant := register(t, g, s.OwnerAccess, s.ID, rc, "/tenant")
	// The platform hears of the new tenant's members; their deliveries are done before the
	// metrics are read, so that what moves after is billing's.
	rc.wait(t, "/platform", "member.joined", 2)
	before := testenv.Scrape(t, g.Client, "/metrics")

	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	anchor := gwAnchor(time.Now())
	periodEnd := anchor.AddDate(0, 1, 0).Format(time.RFC3339)
	graceUntil := base.Add(time.Minute + 48*time.Hour).Format(time.RFC3339)
	gwDeliver(t, g, "customer.subscription.created", base, s.subscriptionObject("active", anchor))
	gwDeliver(t, g, "invoice.payment_failed", base.Add(time.Minute), s.invoiceObject("in_e2e_1", "open"))
	gwDeliver(t, g, "invoice.paid", base.Add(2*time.Minute), s.invoiceObject("in_e2e_1", "paid"))
	gwDeliver(t, g, "customer.subscription.deleted", base.Add(3*time.Minute), s.subscriptionObject("canceled", anchor))

	sub := map[string]any{"customer_id": s.customer, "subscription_id": s.subscription, "period_end": periodEnd}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for _, src := range []map[string]any{sub, extra} {
			for k, v := range src {
				m[k] = v
			}
		}
		return m
	}
	want := []struct {
		typ  string
		data map[string]any
	}{
		{"subscription.activated", with(map[string]any{"plan": "pro", "status": "active"})},
		{"payment.failed", with(map[string]any{"plan": "pro", "status": "past_due", "invoice_id": "in_e2e_1", "grace_until": graceUntil})},
		{"payment.succeeded", with(map[string]any{"plan": "pro", "status": "active", "invoice_id": "in_e2e_1"})},
		{"subscription.canceled", with(map[string]any{"plan": "free", "status": "canceled", "previous_plan": "pro"})},
	}
	var types []string
	for _, w := range want {
		types = append(types, w.typ)
		h := rc.once(t, "/tenant", w.typ, tenant.secret, s.ID)
		wantData(t, h, w.data)
		// A receiver holding another endpoint's secret cannot pass a delivery off as its own.
		if signedBy(t, h, platform.secret) {
			t.Errorf("%s to the tenant's endpoint verifies with the platform endpoint's secret", w.typ)
		}
		p := rc.once(t, "/platform", w.typ, platform.secret, s.ID)
		if p.id != h.id || string(p.body) != string(h.body) {
			t.Errorf("%s: the platform got id %s %s, the tenant id %s %s; want one event", w.typ, p.id, p.body, h.id, h.body)
		}
	}
	settle()
	if got := rc.types("/tenant"); !slices.Equal(sorted(got), sorted(types)) {
		t.Errorf("the tenant's endpoint got %v, want each of %v once", got, types)
	}

	for _, log := range []struct{ tenant, token string }{{s.ID, s.OwnerAccess}, {"system", admin}} {
		r := g.Do(t, "GET", "/tenants/"+log.tenant+"/webhook-deliveries?status=succeeded", log.token, nil)
		mustStatus(t, r, http.StatusOK)
		var page struct {
			Deliveries []struct {
				Type     string `json:"type"`
				Status   string `json:"status"`
				TenantID string `json:"tenant_id"`
				Attempts []struct {
					StatusCode int `json:"status_code"`
				}
			}
		}
		if err := json.Unmarshal(r.Raw, &page); err != nil {
			t.Fatal(err)
		}
		var logged []string
		for _, d := range page.Deliveries {
			if d.TenantID != s.ID {
				continue // the platform's log has the member events too
			}
			logged = append(logged, d.Type)
			if d.Status != "succeeded" || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != http.StatusNoContent {
				t.Errorf("%s's delivery log: %s %s with attempts %+v, want succeeded at the first attempt (204)", log.tenant, d.Type, d.Status, d.Attempts)
			}
		}
		logged = slices.DeleteFunc(logged, func(typ string) bool { return typ == "member.joined" })
		if !slices.Equal(sorted(logged), sorted(types)) {
			t.Errorf("%s's delivery log has %v succeeded, want %v: %s", log.tenant, logged, types, r.Raw)
		}
	}

	// Each event is counted once by type; each of the 8 deliveries once as a success (the
	// counters are the process's: compare with before, and poll, since a worker counts its
	// attempt after the receiver has answered).
	success := map[string]string{"result": "success"}
	var after testenv.Metrics
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		after = testenv.Scrape(t, g.Client, "/metrics")
		if after.Value("saasgate_webhooks_deliveries_total", success)-before.Value("saasgate_webhooks_deliveries_total", success) >= 8 || time.Now().After(deadline) {
			break
		}
	}
	if d := after.Value("saasgate_webhooks_deliveries_total", success) - before.Value("saasgate_webhooks_deliveries_total", success); d != 8 {
		t.Errorf("saasgate_webhooks_deliveries_total{result=\"success\"} grew by %v, want 8", d)
	}
	for _, typ := range types {
		labels := map[string]string{"type": typ}
		if d := after.Value("saasgate_webhooks_events_total", labels) - before.Value("saasgate_webhooks_events_total", labels); d != 1 {
			t.Errorf("saasgate_webhooks_events_total{type=%q} grew by %v, want 1", typ, d)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
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
	send := func(n, status int) {
		t.Helper()
		for range n {
			wantStatus(t, g.get(t, "gw", f.ID, f.UserAccess), status)
		}
	}
	send(4, http.StatusOK)
	send(1, http.StatusOK) // 5 of 10: 50 %
	h := rc.once(t, "/metered", "usage.threshold_reached", e.secret, f.ID)
	wantData(t, h, map[string]any{"plan": "free", "threshold": 50, "quota_used": 5, "quota_limit": 10, "period_end": periodEnd})
	send(5, http.StatusOK) // 10 of 10: 100 %
	hs := rc.wait(t, "/metered", "usage.threshold_reached", 2)
	verify(t, hs[1], e.secret, f.ID)
	wantData(t, hs[1], map[string]any{"plan": "free", "threshold": 100, "quota_used": 10, "quota_limit": 10, "period_end": periodEnd})
	send(3, http.StatusTooManyRequests) // over the quota: no alert again
	settle()
	if got := rc.types("/metered"); len(got) != 2 {
		t.Errorf("the metered tenant's endpoint got %v, want the 50 %% and 100 %% alerts once each", got)
	}

	hasty := g.NewTenant(t, "e2e-hasty")
	g.PatchTenant(t, admin, hasty.ID, map[string]string{"plan": "slow"})
	he := register(t, g, hasty.OwnerAccess, hasty.ID, rc, "/hasty", limits...)
	for i := range 6 {
		r := g.get(t, "gw", hasty.ID, hasty.UserAccess)
		if i < 2 {
			wantStatus(t, r, http.StatusOK)
		} else {
			wantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
		}
	}
	rl := rc.once(t, "/hasty", "rate_limit.exceeded", he.secret, hasty.ID)
	wantData(t, rl, map[string]any{"plan": "slow"}) // slow has no quota, so no quota counts
	settle()
	if got := rc.types("/hasty"); len(got) != 1 {
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
	joined := rc.once(t, "/crew", "member.joined", e.secret, "e2e-crew")
	wantData(t, joined, map[string]any{"user_id": uid, "email": email, "role": "user"})

	for range 2 { // the second PATCH changes nothing
		mustStatus(t, g.Do(t, "PATCH", "/tenants/e2e-crew/users/"+uid, owner.Access, map[string]string{"role": "owner"}), http.StatusOK)
	}
	changed := rc.once(t, "/crew", "member.role_changed", e.secret, "e2e-crew")
	wantData(t, changed, map[string]any{"user_id": uid, "email": email, "role": "owner", "previous_role": "user"})
	settle()
	if got := rc.types("/crew"); !slices.Equal(got, []string{"member.joined", "member.role_changed"}) {
		t.Errorf("the endpoint got %v, want member.joined then one member.role_changed", got)
	}
}
