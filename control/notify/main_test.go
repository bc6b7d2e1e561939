package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	t0    = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	admin = identity.Principal{UserID: "usr_root", TenantID: store.SystemTenant, Role: identity.RoleAdmin}
	owner = identity.Principal{UserID: "usr_acme", TenantID: "acme", Role: identity.RoleOwner}
	anon  = identity.Actor{}
)

// shortSchedule is the tests' retry schedule: at once, then 10 s, 1 min, 5 min.
var shortSchedule = []time.Duration{0, 10 * time.Second, time.Minute, 5 * time.Minute}

// fixture is a manager over a fresh database with the tenants acme and globex, on a test
// clock, allowed to reach the test's receivers on 127.0.0.1.
type fixture struct {
	db    *store.DB
	clock *testenv.Clock
	m     *notify.Manager
	obs   *observer
}

func newFixture(t *testing.T, cfg notify.Config) *fixture {
	t.Helper()
	f := &fixture{db: testenv.DB(t), clock: testenv.NewClock(t0)}
	f.m = f.manager(t, cfg)
	f.obs = f.m.Observer.(*observer)
	ctx := context.Background()
	if err := f.m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	st := &notify.MongoStore{DB: f.db}
	for _, id := range []string{"acme", "globex"} {
		if err := st.CreateTenantCollections(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// manager is another replica over the fixture's database and clock.
func (f *fixture) manager(t *testing.T, cfg notify.Config) *notify.Manager {
	t.Helper()
	if cfg.RetrySchedule == nil {
		cfg.RetrySchedule = shortSchedule
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.AllowPrivate == nil {
		cfg.AllowPrivate = []string{"127.0.0.0/8"}
	}
	m, err := notify.NewManager(&notify.MongoStore{DB: f.db}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Now = f.clock.Now
	m.Observer = &observer{}
	return m
}

// endpoint registers url for tenant (as admin) and returns its id and secret.
func (f *fixture) endpoint(t *testing.T, tenantID, url string, events ...string) (string, string) {
	t.Helper()
	e, secret, err := f.m.CreateEndpoint(context.Background(), admin, anon, tenantID, notify.EndpointInput{URL: url, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	return e.ID, secret
}

func (f *fixture) publish(t *testing.T, id, tenantID, typ string) {
	t.Helper()
	ev := notify.Event{ID: id, Type: typ, TenantID: tenantID, Time: f.clock.Now(), Data: map[string]any{"tenant_id": tenantID}}
	if err := f.m.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) deliver(t *testing.T, m *notify.Manager) int {
	t.Helper()
	n, err := m.DeliverDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// deliveries is tenantID's whole delivery log, newest first.
func (f *fixture) deliveries(t *testing.T, tenantID string) []*notify.Delivery {
	t.Helper()
	page, err := f.m.ListDeliveries(context.Background(), admin, tenantID, notify.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return page.Deliveries
}

func (f *fixture) endpointState(t *testing.T, tenantID, id string) *notify.Endpoint {
	t.Helper()
	list, err := f.m.ListEndpoints(context.Background(), admin, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("endpoint %s not listed", id)
	return nil
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server on 127.0.0.1 that records what it receives and answers
// with answer (200 when nil).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(n, w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received{}, rc.got...)
}

// verify checks a request as the Standard Webhooks spec tells a receiver to, written here
// from the spec and not from the sender: the signed content is "id.timestamp.body", the key
// the base64-decoded secret after "whsec_", and the header holds space-separated "v1,<base64
// HMAC-SHA256>" signatures, any of which may match. It returns the secrets that matched.
func verify(t *testing.T, r received, secrets ...string) []string {
	t.Helper()
	id, ts := r.header.Get("Webhook-Id"), r.header.Get("Webhook-Timestamp")
	if id == "" || ts == "" {
		t.Fatalf("webhook-id %q, webhook-timestamp %q", id, ts)
	}
	var matched []string
	for _, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil || !strings.HasPrefix(secret, "whsec_") {
			t.Fatalf("secret %q is not whsec_<base64>", secret)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "." + string(r.body)))
		want := mac.Sum(nil)
		for _, sig := range strings.Split(r.header.Get("Webhook-Signature"), " ") {
			version, b64, ok := strings.Cut(sig, ",")
			got, err := base64.StdEncoding.DecodeString(b64)
			if ok && version == "v1" && err == nil && hmac.Equal(got, want) {
				matched = append(matched, secret)
			}
		}
	}
	return matched
}

// observer counts what the metrics would.
type observer struct {
	mu       sync.Mutex
	emitted  map[string]int
	attempts map[string]int
}

func (o *observer) Emitted(typ string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.emitted == nil {
		o.emitted = map[string]int{}
	}
	o.emitted[typ]++
}

func (o *observer) Attempted(result string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.attempts == nil {
		o.attempts = map[string]int{}
	}
	o.attempts[result]++
}

func (o *observer) OutboxDepth(int64) {}
