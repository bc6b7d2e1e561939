package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
	"github.com/saasgate/saasgate/internal/testenv"
)

// newAPI serves the control API with the fixture's manager as its Webhooks, over real
// accounts and tenants whose provisioning creates the endpoint collection, as control.New
// will wire it.
func newAPI(t *testing.T, f *fixture) *testenv.Client {
	t.Helper()
	ctx := context.Background()
	catalog, err := plan.NewCatalog(nil, "free")
	if err != nil {
		t.Fatal(err)
	}
	auditStore := &audit.MongoStore{DB: f.db}
	accounts := &account.MongoStore{DB: f.db}
	tenants := &tenant.MongoStore{DB: f.db}
	refresh := &token.MongoRefreshStore{DB: f.db}
	for _, init := range []func(context.Context) error{accounts.Init, tenants.Init, refresh.Init} {
		if err := init(ctx); err != nil {
			t.Fatal(err)
		}
	}
	log := &audit.Log{Store: auditStore, Now: f.clock.Now}
	f.m.Audit = log
	keys, err := token.NewKeys([]byte("0123456789abcdef0123456789abcdef"), "saasgate", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keys.Now = f.clock.Now
	m := &account.Manager{
		Store: accounts,
		Tenants: &tenant.Manager{Store: tenants, Plans: catalog, Audit: log, Now: f.clock.Now,
			Provisioners: []tenant.Provisioner{accounts.CreateTenantCollections, auditStore.CreateTenantCollections,
				(&notify.MongoStore{DB: f.db}).CreateTenantCollections}},
		Keys:      keys,
		Refresh:   &token.Refresher{Store: refresh, Now: f.clock.Now},
		Passwords: account.NewHasher(4),
		Audit:     log,
		Now:       f.clock.Now,
	}
	if err := m.BootstrapAdmin(ctx, testenv.AdminEmail, testenv.AdminPassword); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(&api.API{
		Accounts: m, Tenants: m.Tenants, Plans: catalog, Keys: keys, Webhooks: f.m,
		AuthLimit: func(context.Context, string, string) limit.Outcome {
			return limit.Outcome{Decision: limit.Decision{Allowed: true}}
		},
	}))
	t.Cleanup(srv.Close)
	return testenv.NewClient(t, srv.URL)
}

func TestAPI_WebhookRoutes(t *testing.T) {
	f := newFixture(t, notify.Config{RetrySchedule: []time.Duration{0}})
	c := newAPI(t, f)
	acme := c.NewTenant(t, "shop")
	other := c.NewTenant(t, "rival")
	admin := c.AdminToken(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	platform := newReceiver(t, nil)
	base := "/tenants/shop/webhook-endpoints"

	created := c.Do(t, "POST", base, acme.OwnerAccess, map[string]any{"url": rc.URL, "events": []string{notify.EventPaymentFailed}, "description": "billing"})
	eid, secret := created.Str("id"), created.Str("secret")
	if created.Status != http.StatusCreated || eid == "" || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("%v", created)
	}
	for _, tc := range []struct {
		method, path, token string
		body                any
		status              int
		code                string
	}{
		{"POST", base, acme.OwnerAccess, map[string]any{"url": "http://10.0.0.1/"}, 422, "invalid_webhook_url"},
		{"POST", base, acme.OwnerAccess, map[string]any{"url": rc.URL, "events": []string{"nope"}}, 422, "invalid_event_type"},
		{"POST", base, acme.OwnerAccess, map[string]any{"url": rc.URL, "secret": "mine"}, 400, "bad_request"},
		{"POST", base, acme.UserAccess, map[string]any{"url": rc.URL}, 403, "forbidden"},
		{"GET", base, other.OwnerAccess, nil, 403, "forbidden"},
		{"POST", "/tenants/system/webhook-endpoints", acme.OwnerAccess, map[string]any{"url": rc.URL}, 403, "forbidden"},
		{"POST", "/tenants/system/webhook-endpoints", admin, map[string]any{"url": platform.URL}, 201, ""},
		{"PATCH", base + "/" + eid, acme.OwnerAccess, map[string]any{"description": "payments"}, 200, ""},
		{"PATCH", "/tenants/rival/webhook-endpoints/" + eid, other.OwnerAccess, map[string]any{"enabled": false}, 404, "webhook_endpoint_not_found"},
		{"GET", "/tenants/shop/webhook-deliveries?status=nope", acme.OwnerAccess, nil, 400, "invalid_webhook_filter"},
		{"POST", base + "/" + eid + "/recover", acme.OwnerAccess, map[string]any{}, 400, "bad_request"},
	} {
		if r := c.Do(t, tc.method, tc.path, tc.token, tc.body); r.Status != tc.status || r.Code() != tc.code {
			t.Errorf("%s %s: %v; want %d %s", tc.method, tc.path, r, tc.status, tc.code)
		}
	}
	list := c.Do(t, "GET", base, acme.OwnerAccess, nil)
	if list.Status != 200 || strings.Contains(string(list.Raw), "whsec_") || !strings.Contains(string(list.Raw), `"description":"payments"`) {
		t.Errorf("%v", list)
	}

	f.publish(t, "evt_1", "shop", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	log := c.Do(t, "GET", "/tenants/shop/webhook-deliveries?endpoint="+eid+"&status=failed", acme.OwnerAccess, nil)
	deliveries, _ := log.Body["deliveries"].([]any)
	if log.Status != 200 || len(deliveries) != 1 {
		t.Fatalf("%v", log)
	}
	d := deliveries[0].(map[string]any)
	attempts, _ := d["attempts"].([]any)
	if len(attempts) != 1 || attempts[0].(map[string]any)["status_code"] != float64(500) || attempts[0].(map[string]any)["latency_ms"] == nil {
		t.Errorf("attempts %v", attempts)
	}
	did, _ := d["id"].(string)
	if r := c.Do(t, "POST", "/tenants/rival/webhook-deliveries/"+did+"/resend", other.OwnerAccess, nil); r.Status != 404 {
		t.Errorf("resending another tenant's delivery: %v", r)
	}
	if r := c.Do(t, "POST", "/tenants/shop/webhook-deliveries/"+did+"/resend", acme.OwnerAccess, nil); r.Status != 202 || r.Str("resent_from") != did {
		t.Errorf("%v", r)
	}
	f.deliver(t, f.m)
	if got := rc.requests(); len(got) != 2 || len(verify(t, got[1], secret)) != 1 {
		t.Errorf("%d requests", len(got))
	}
	if got := platform.requests(); len(got) != 1 || got[0].header.Get("Webhook-Id") != "evt_1" {
		t.Errorf("the platform endpoint got %d requests", len(got))
	}
	if r := c.Do(t, "POST", base+"/"+eid+"/recover", acme.OwnerAccess, map[string]any{"since": t0.Format(time.RFC3339)}); r.Status != 202 || r.Body["resent"] != float64(1) {
		t.Errorf("%v", r)
	}
	rotated := c.Do(t, "POST", base+"/"+eid+"/rotate-secret", acme.OwnerAccess, nil)
	if rotated.Status != 200 || !strings.HasPrefix(rotated.Str("secret"), "whsec_") || rotated.Str("secret") == secret {
		t.Errorf("%v", rotated)
	}
	if r := c.Do(t, "DELETE", base+"/"+eid, acme.OwnerAccess, nil); r.Status != 204 {
		t.Errorf("%v", r)
	}
	if r := c.Do(t, "DELETE", base+"/"+eid, acme.OwnerAccess, nil); r.Status != 404 || r.Code() != "webhook_endpoint_not_found" {
		t.Errorf("deleting twice: %v", r)
	}
}
