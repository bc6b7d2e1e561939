package control_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newService assembles the control plane on this test's database and a runtime (in process
// unless rtCfg says otherwise).
// cfg's zero fields get test defaults: a one-plan catalog, a temporary data dir, a 1h token
// lifetime.
func newService(t *testing.T, cfg control.Config, rtCfg ...control.RuntimeConfig) (*control.Service, *control.Runtime) {
	t.Helper()
	var rc control.RuntimeConfig
	if len(rtCfg) > 0 {
		rc = rtCfg[0]
	}
	rt, err := control.OpenRuntime(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	if cfg.Plans == nil {
		if cfg.Plans, err = plan.NewCatalog([]*plan.Plan{{ID: "free", Rate: plan.Rate{Count: 10, Period: time.Minute}}}, "free"); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.JWTIssuer, cfg.AccessTTL = "saasgate", time.Hour
	svc, err := control.New(context.Background(), &control.Backend{DB: testenv.DB(t)}, rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc, rt
}

// The auth routes' per-address limit follows on_limiter_error when Redis is down: deny refuses
// every attempt, local carries on in process at the configured rate.
func TestService_AuthLimitWithRedisDownFollowsOnLimiterError(t *testing.T) {
	ctx := context.Background()
	dead := control.RuntimeConfig{RedisURL: "redis://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), RedisTimeout: 50 * time.Millisecond}
	rates := map[string]control.AuthRate{"signup": {Rate: plan.Rate{Count: 2, Period: time.Hour}}}
	deny, _ := newService(t, control.Config{OnLimiterError: limit.OnErrorDeny, AuthRates: rates}, dead)
	if out := deny.AdmitAuth(ctx, "signup", "192.0.2.1"); !out.Denied {
		t.Fatalf("deny with Redis down: %+v, want Denied (503 limiter_unavailable)", out)
	}
	local, _ := newService(t, control.Config{OnLimiterError: limit.OnErrorLocal, AuthRates: rates}, dead)
	for i, want := range []bool{true, true, false} {
		if out := local.AdmitAuth(ctx, "signup", "192.0.2.1"); out.Denied || out.Allowed != want {
			t.Fatalf("local with Redis down, attempt %d: %+v, want allowed %v", i+1, out, want)
		}
	}
	if out := local.AdmitAuth(ctx, "signup", "192.0.2.2"); !out.Allowed {
		t.Fatalf("another address with Redis down: %+v, want allowed", out)
	}
}

// Sweep reads the injected clock: a claim that expires a minute from the real now is swept
// once the service's clock is two minutes on.
func TestService_SweepReadsTheInjectedClock(t *testing.T) {
	ctx := context.Background()
	start := time.Now().UTC()
	clock := testenv.NewClock(start)
	svc, _ := newService(t, control.Config{Now: clock.Now})
	if ok, err := svc.Backend.DB.Claim(ctx, "sweep-test", start.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	clock.Set(start.Add(2 * time.Minute))
	svc.Sweep(ctx)
	if ok, err := svc.Backend.DB.Claim(ctx, "sweep-test", start.Add(3*time.Minute)); err != nil || !ok {
		t.Fatalf("after Sweep at the clock's +2m, claiming again = %v, %v; want the expired claim swept", ok, err)
	}
}

// The assembled control plane runs the billing scheduler from Run: a past-due tenant whose
// grace has ended is suspended without anyone calling Tick, and the gateway's tenant cache
// sees it.
func TestService_RunSuspendsATenantWhoseGraceEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plans, err := plan.NewCatalog([]*plan.Plan{
		{ID: "free", Rate: plan.Rate{Count: 10, Period: time.Minute}},
		{ID: "pro", Rate: plan.Rate{Count: 100, Period: time.Minute}, StripePrice: "price_pro"},
	}, "free")
	if err != nil {
		t.Fatal(err)
	}
	failedAt := time.Now().UTC().Truncate(time.Second)
	clock := testenv.NewClock(failedAt)
	rec := testenv.NewStripeRecorder(t)
	svc, _ := newService(t, control.Config{
		Plans: plans, Now: clock.Now,
		Stripe:      control.StripeConfig{SecretKey: testenv.StripeMockKey, APIBase: rec.URL},
		Billing:     control.BillingConfig{WebhookSecret: testenv.WebhookSecret, SuccessURL: "https://app.example.test/done", Grace: 48 * time.Hour},
		BillingTick: 20 * time.Millisecond,
	})
	if _, err := svc.Tenants.Create(ctx, identity.Actor{UserID: "usr_test"}, "runco"); err != nil {
		t.Fatal(err)
	}
	// The tenant's Stripe customer, as POST /subscriptions stores it: the event binds by it.
	if _, err := svc.Tenants.Store.Update(ctx, "runco", tenant.Patch{Billing: &tenant.Billing{CustomerID: "cus_run"}, UpdatedAt: failedAt}); err != nil {
		t.Fatal(err)
	}
	payload := testenv.StripeEvent(t, "evt_run_failed", "invoice.payment_failed", failedAt, testenv.StripeInvoice{
		ID: "in_run", Tenant: "runco", Customer: "cus_run", Subscription: "sub_run", Status: "open",
	}.Object())
	if err := svc.Billing.HandleWebhook(ctx, identity.Actor{}, payload, testenv.SignStripe(payload, testenv.WebhookSecret, time.Now())); err != nil {
		t.Fatalf("payment_failed: %v", err)
	}
	if s, _ := svc.LookupTenant(ctx, "runco"); s == nil || s.Status != tenant.StatusActive || s.BillingStatus != tenant.BillingPastDue {
		t.Fatalf("after the failure the tenant should be active and past due, got %+v", s)
	}

	go svc.Run(ctx, time.Hour)
	graceOver := failedAt.Add(48 * time.Hour)
	clock.Set(graceOver)
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; ; i++ {
		// Time goes on: each scheduler tick claims its own time slot, so a tick that ran out
		// of its time (under -race on a loaded machine) is followed by another, as in
		// production, instead of every later tick finding its slot claimed.
		clock.Set(graceOver.Add(time.Duration(i) * 20 * time.Millisecond))
		s, err := svc.LookupTenant(ctx, "runco")
		if err == nil && s.Status == tenant.StatusSuspended && s.BillingSuspended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not suspend the tenant within 10 s of its grace ending: %+v, %v", s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The retries due on the way (the clock jumped past all of them) were not made: the
	// suspension came first, and a suspended tenant is no longer retried.
	if calls := rec.Calls("POST", "/v1/invoices/"); len(calls) != 0 {
		t.Fatalf("%d pay calls after the grace ended, want none", len(calls))
	}
}

// A flood of lookups of random valid tenant ids, beside a real tenant's, never reaches the
// store once the cache holds every tenant: the real tenant's lookups (one created since the
// preload included) all succeed, and the store sees no read at all.
func TestService_RandomTenantIDsNeverReachTheStoreOnceEveryTenantIsCached(t *testing.T) {
	ctx := context.Background()
	svc, rt := newService(t, control.Config{})
	actor := identity.Actor{UserID: "usr_test"}
	if _, err := svc.Tenants.Create(ctx, actor, "acme"); err != nil {
		t.Fatal(err)
	}
	svc.Preload(ctx)
	if _, err := svc.Tenants.Create(ctx, actor, "globex"); err != nil {
		t.Fatal(err)
	}
	var reads sync.Map // id → store reads
	rt.Cache.SetLoader(func(ctx context.Context, id string) (*tenant.Tenant, error) {
		n, _ := reads.LoadOrStore(id, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return svc.Tenants.Lookup(ctx, id)
	})

	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 16 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if _, err := svc.LookupTenant(ctx, fmt.Sprintf("random-%d-%d", g, i)); err != tenant.ErrNotFound {
					t.Errorf("random id: %v, want ErrNotFound", err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 100 {
				id := []string{"acme", "globex"}[i%2]
				if s, err := svc.LookupTenant(ctx, id); err != nil || s.ID != id {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of the real tenants' 1600 lookups failed", n)
	}
	reads.Range(func(id, n any) bool {
		t.Errorf("%d store reads of %s, want none", n.(*atomic.Int64).Load(), id)
		return true
	})
}

// The domain managers New wires read the injected clock too: what signup creates is stamped
// with the service's time, and the access token login issues is dated by it.
func TestService_SignupAndLoginReadTheInjectedClock(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	svc, _ := newService(t, control.Config{Now: testenv.NewClock(at).Now})
	call := func(path string, body map[string]string) map[string]any {
		raw, _ := json.Marshal(body)
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		svc.ServeAPI(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code >= 300 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		return out
	}
	call("/auth/signup", testenv.SignupBody("clock@example.com", testenv.Password, "clock-co", ""))
	tn, err := svc.Tenants.Lookup(ctx, "clock-co")
	if err != nil {
		t.Fatal(err)
	}
	if !tn.CreatedAt.Equal(at) {
		t.Errorf("tenant created %v, want the injected %v", tn.CreatedAt, at)
	}
	login := call("/auth/login", map[string]string{"email": "clock@example.com", "password": testenv.Password})
	access, _ := login["access_token"].(string)
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q", access)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		IssuedAt int64 `json:"iat"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.IssuedAt != at.Unix() {
		t.Errorf("access token iat %v, want the injected %v", time.Unix(claims.IssuedAt, 0).UTC(), at)
	}
}
