package billing_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/billing"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// grace is the grace period of the test managers (the gateway's default).
const grace = 168 * time.Hour

// catalog: free is the default and cannot be bought; pro and team are sold at different rates.
func catalog(t testing.TB) *plan.Catalog {
	t.Helper()
	c, err := plan.NewCatalog([]*plan.Plan{
		{ID: "free", Rate: plan.Rate{Count: 60, Period: time.Minute}},
		{ID: "pro", Rate: plan.Rate{Count: 600, Period: time.Minute}, StripePrice: "price_pro"},
		{ID: "team", Rate: plan.Rate{Count: 6000, Period: time.Minute}, StripePrice: "price_team"},
	}, "free")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// opts says how newManager builds a manager; the zero value is a manager with Stripe (through
// a recorder in front of stripe-mock) on a fresh database, on the real clock.
type opts struct {
	db       *store.DB               // nil: a fresh database of the test
	stripe   *testenv.StripeRecorder // nil: a new recorder
	noStripe bool                    // billing disabled (no Stripe key)
	clock    *testenv.Clock          // nil: the real clock
	events   notify.Publisher        // nil: no notifications
}

// fixture is a billing manager over real storage, with what the tests inspect.
type fixture struct {
	o      opts
	db     *store.DB
	stripe *testenv.StripeRecorder
	plans  *plan.Catalog
	m      *billing.Manager
}

func newManager(t testing.TB, o opts) *fixture {
	t.Helper()
	if o.db == nil {
		o.db = testenv.DB(t)
	}
	if o.stripe == nil && !o.noStripe {
		o.stripe = testenv.NewStripeRecorder(t)
	}
	f := &fixture{o: o, db: o.db, stripe: o.stripe, plans: catalog(t)}
	f.m = f.replica(t)
	return f
}

// replica builds another manager over the fixture's database, Stripe and clock, as another
// gateway replica (or the same one after a restart) would: the control plane control.New
// assembles, over a runtime of its own; all billing's state is in the store.
func (f *fixture) replica(t testing.TB) *billing.Manager {
	t.Helper()
	rt, err := control.OpenRuntime(control.RuntimeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	cfg := control.Config{
		DataDir: t.TempDir(),
		Plans:   f.plans,
		Billing: control.BillingConfig{
			WebhookSecret: testenv.WebhookSecret,
			SuccessURL:    "https://app.example.test/billing/done",
			CancelURL:     "https://app.example.test/billing",
			Grace:         grace,
		},
	}
	if f.o.clock != nil {
		cfg.Now = f.o.clock.Now
	}
	cfg.Events = f.o.events
	if f.stripe != nil {
		cfg.Stripe = control.StripeConfig{SecretKey: testenv.StripeMockKey, APIBase: f.stripe.URL}
	}
	svc, err := control.New(context.Background(), &control.Backend{DB: f.db}, rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc.Billing
}

var admin = identity.Actor{UserID: "usr_admin", Role: identity.RoleAdmin, TenantID: store.SystemTenant}

// newTenant creates a tenant (on the default plan, with its audit collection) and, when
// customer is not empty, gives it that Stripe customer as Checkout would have.
func (f *fixture) newTenant(t testing.TB, id, customer string) *tenant.Tenant {
	t.Helper()
	ctx := context.Background()
	tn, err := f.m.Tenants.Create(ctx, admin, id)
	if err != nil {
		t.Fatal(err)
	}
	if tn.ID != id {
		t.Fatalf("tenant %q got id %q", id, tn.ID)
	}
	if customer != "" {
		if tn, err = f.m.Tenants.Store.Update(ctx, id, tenant.Patch{Billing: &tenant.Billing{CustomerID: customer}, UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

// observeLogs makes the fixture's manager log, from Debug up, into the returned observer.
func (f *fixture) observeLogs() *observer.ObservedLogs {
	core, logs := observer.New(zapcore.DebugLevel)
	f.m.Logger = zap.New(core)
	return logs
}

// wantLogged fails t unless logs hold an entry at level that carries the event's id.
func wantLogged(t testing.TB, logs *observer.ObservedLogs, level zapcore.Level, eventID string) {
	t.Helper()
	for _, e := range logs.FilterLevelExact(level).All() {
		if e.ContextMap()["event"] == eventID {
			return
		}
	}
	t.Errorf("no %s log with event %s; logged: %v", level, eventID, logs.All())
}

// tenantState reads the tenant's document as stored.
func (f *fixture) tenantState(t testing.TB, id string) *tenant.Tenant {
	t.Helper()
	tn, err := f.m.Tenants.Store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if tn.Billing == nil {
		tn.Billing = &tenant.Billing{}
	}
	return tn
}

// wantUnchanged fails t when the tenant's stored document differs from before.
func (f *fixture) wantUnchanged(t testing.TB, id string, before *tenant.Tenant) {
	t.Helper()
	if after := f.tenantState(t, id); !reflect.DeepEqual(after, before) {
		t.Errorf("%s changed: plan %s → %s, billing %+v → %+v", id, before.Plan, after.Plan, before.Billing, after.Billing)
	}
}

// auditEntries returns the tenant's audit entries of action.
func (f *fixture) auditEntries(t testing.TB, tenantID, action string) []audit.Entry {
	t.Helper()
	ctx := context.Background()
	cur, err := f.db.C(store.TenantCollection(tenantID, store.SuffixAudit)).Find(ctx, bson.D{{Key: "action", Value: action}})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	if err := cur.All(ctx, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditCount counts all the tenant's audit entries.
func (f *fixture) auditCount(t testing.TB, tenantID string) int64 {
	t.Helper()
	n, err := f.db.C(store.TenantCollection(tenantID, store.SuffixAudit)).CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// storedEvents counts the stripe_events records.
func (f *fixture) storedEvents(t testing.TB) int64 {
	t.Helper()
	n, err := f.db.C(store.CollStripeEvents).CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// eventRecord reads an event's record in stripe_events (nil when absent).
func (f *fixture) eventRecord(t testing.TB, id string) bson.M {
	t.Helper()
	var rec bson.M
	err := f.db.C(store.CollStripeEvents).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&rec)
	if store.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// sign signs payload with the test webhook secret now (the tolerance runs on the real clock).
func sign(payload []byte) string {
	return testenv.SignStripe(payload, testenv.WebhookSecret, time.Now())
}

// deliver hands a freshly signed delivery of payload to m, as POST /webhooks/stripe does.
func deliver(t testing.TB, m *billing.Manager, payload []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.HandleWebhook(ctx, identity.Anonymous("127.0.0.1", "req-webhook"), payload, sign(payload))
}

// mustDeliver delivers and fails the test on an error.
func mustDeliver(t testing.TB, m *billing.Manager, payload []byte) {
	t.Helper()
	if err := deliver(t, m, payload); err != nil {
		t.Fatalf("delivering %s: %v", payload, err)
	}
}

// acmeSubscribed is a customer.subscription.created event (id eventID, created at) of tenant
// acme (customer cus_acme) subscribing to pro, its period starting at start.
func acmeSubscribed(t testing.TB, eventID string, at, start time.Time) []byte {
	t.Helper()
	return event(t, eventID, "customer.subscription.created", at, testenv.StripeSubscription{
		ID: "sub_acme", Tenant: "acme", Customer: "cus_acme", Status: "active", Price: "price_pro", Start: start,
	}.Object())
}

// event builds an event's JSON.
func event(t testing.TB, id, typ string, created time.Time, object map[string]any) []byte {
	t.Helper()
	return testenv.StripeEvent(t, id, typ, created, object)
}

// uniq makes ids unique within a test (event ids share the stripe_events collection).
func uniq(prefix string, parts ...any) string {
	s := prefix
	for _, p := range parts {
		s += fmt.Sprintf("_%v", p)
	}
	return s
}
