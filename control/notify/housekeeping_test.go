package notify_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/notify"
)

// TestRun_DeliversAPublishAtOnce runs the workers as a replica does and publishes: the nudge
// delivers it well before the (long) poll would.
func TestRun_DeliversAPublishAtOnce(t *testing.T) {
	f := newFixture(t, notify.Config{})
	got := make(chan string, 1)
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { got <- r.Header.Get("Webhook-Id") })
	f.endpoint(t, "acme", rc.URL)
	f.m.PollInterval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.m.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	time.Sleep(100 * time.Millisecond) // the workers' first pass, which finds nothing
	f.publish(t, "evt_1", "acme", notify.EventMemberJoined)
	select {
	case id := <-got:
		if id != "evt_1" {
			t.Errorf("webhook-id %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the published event was not delivered")
	}
}

func TestSweep_DeletesFinishedDeliveriesAfterRetention(t *testing.T) {
	f := newFixture(t, notify.Config{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n > 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_done", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	f.publish(t, "evt_pending", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	f.m.Retention = 24 * time.Hour
	f.clock.Set(t0.Add(23 * time.Hour))
	if n, err := f.m.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("swept %d (%v) within the retention", n, err)
	}
	f.clock.Set(t0.Add(25 * time.Hour))
	if n, err := f.m.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("swept %d (%v), want the succeeded delivery", n, err)
	}
	if ds := f.deliveries(t, "acme"); len(ds) != 1 || ds[0].EventID != "evt_pending" {
		t.Errorf("left %d deliveries", len(ds))
	}
	if n, _ := f.db.C(notify.CollEvents).CountDocuments(context.Background(), bson.D{}); n != 0 {
		t.Errorf("%d events left", n)
	}
}

func TestEndpoints_LimitPerTenant(t *testing.T) {
	f := newFixture(t, notify.Config{})
	rc := newReceiver(t, nil)
	for range notify.MaxEndpoints {
		f.endpoint(t, "acme", rc.URL)
	}
	_, _, err := f.m.CreateEndpoint(context.Background(), owner, anon, "acme", notify.EndpointInput{URL: rc.URL})
	if !errs.Is(err, "webhook_endpoint_limit") {
		t.Errorf("endpoint %d: %v", notify.MaxEndpoints+1, err)
	}
	f.endpoint(t, "globex", rc.URL)
}

func TestNewManager_RefusesABadConfig(t *testing.T) {
	for _, cfg := range []notify.Config{
		{AllowPrivate: []string{"10.0.0.0"}},
		{RetrySchedule: []time.Duration{0, -time.Second}},
	} {
		if _, err := notify.NewManager(nil, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
