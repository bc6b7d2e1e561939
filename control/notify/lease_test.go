package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/notify"
)

// TestLease_TwoReplicasDeliverEachOnce runs two managers over one database at once, several
// rounds, and counts what the receiver gets: one request per event.
func TestLease_TwoReplicasDeliverEachOnce(t *testing.T) {
	f := newFixture(t, notify.Config{})
	rc := newReceiver(t, nil)
	f.endpoint(t, "acme", rc.URL)
	other := f.manager(t, notify.Config{})
	const events = 30
	for i := range events {
		f.publish(t, fmt.Sprintf("evt_%d", i), "acme", notify.EventPaymentSucceeded)
	}
	var wg sync.WaitGroup
	for _, m := range []*notify.Manager{f.m, other, f.m, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.DeliverDue(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, r := range rc.requests() {
		seen[r.header.Get("Webhook-Id")]++
	}
	if len(seen) != events {
		t.Errorf("%d events delivered, want %d", len(seen), events)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	for _, d := range f.deliveries(t, "acme") {
		if d.Status != notify.StatusSucceeded || len(d.Attempts) != 1 {
			t.Errorf("%s: %s after %d attempts", d.ID, d.Status, len(d.Attempts))
		}
	}
}

// TestLease_ExpiredLeaseIsTakenOver: a worker stuck in an attempt past its lease (as one
// that crashed) loses the delivery to another, which sends it with the same webhook-id; the
// stuck worker's late answer records nothing.
func TestLease_ExpiredLeaseIsTakenOver(t *testing.T) {
	f := newFixture(t, notify.Config{})
	release := make(chan struct{})
	first := make(chan struct{})
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			close(first)
			<-release
		}
	})
	f.endpoint(t, "acme", rc.URL)
	f.m.Lease = time.Minute
	other := f.manager(t, notify.Config{})
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)

	stuck := make(chan error, 1)
	go func() {
		_, err := f.m.DeliverDue(context.Background())
		stuck <- err
	}()
	<-first
	if n := f.deliver(t, other); n != 0 {
		t.Fatalf("a leased delivery was taken %d times while its lease holds", n)
	}
	f.clock.Set(t0.Add(2 * time.Minute))
	if n := f.deliver(t, other); n != 1 {
		t.Fatalf("after the lease expired, %d deliveries were taken over", n)
	}
	close(release)
	if err := <-stuck; err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 2 || got[0].header.Get("Webhook-Id") != "evt_1" || got[1].header.Get("Webhook-Id") != "evt_1" {
		t.Fatalf("%d requests", len(got))
	}
	d := f.deliveries(t, "acme")[0]
	if d.Status != notify.StatusSucceeded || len(d.Attempts) != 1 || !d.Attempts[0].At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("delivery %s, attempts %+v: want the takeover's one success", d.Status, d.Attempts)
	}
}
