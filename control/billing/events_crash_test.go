package billing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/internal/testenv"
)

// crashing stops the handler dead in its first Publish call, as a process killed between
// storing a change and publishing it would: no error path runs. Later calls record.
type crashing struct {
	published
	crashed bool
}

func (c *crashing) Publish(ctx context.Context, ev notify.Event) error {
	c.mu.Lock()
	first := !c.crashed
	c.crashed = true
	c.mu.Unlock()
	if first {
		panic("killed")
	}
	return c.published.Publish(ctx, ev)
}

// A handler that dies after storing the change and before publishing leaves the event
// processing; the redelivery that takes it over a minute later changes nothing more, and
// publishes the change's events, with their ids, from the event's record.
func TestEvents_TakeoverAfterACrashPublishesTheStoredChange(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Second)
	clk := testenv.NewClock(start)
	pub := &crashing{}
	f := newManager(t, opts{clock: clk, events: pub})
	h := newHistory("crashco")
	f.newTenant(t, h.tenant, h.customer)
	evs := h.events(t)

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the handler did not reach Publish")
			}
		}()
		_ = deliver(t, f.m, evs[0])
	}()
	if b := f.tenantState(t, h.tenant).Billing; b.Status != "active" {
		t.Fatalf("the change was not stored before publishing: %+v", b)
	}
	if got := pub.of(h.tenant); len(got) != 0 {
		t.Fatalf("published %v before the crash", types(got))
	}

	clk.Set(start.Add(2 * time.Minute)) // the dead handler's claim is stale
	mustDeliver(t, f.m, evs[0])
	got := pub.of(h.tenant)
	if len(got) != 1 || got[0].Type != notify.EventSubscriptionActivated ||
		got[0].ID != notify.EventID(h.tenant, h.sub, notify.EventSubscriptionActivated) || got[0].Data["plan"] != "pro" {
		t.Fatalf("after the takeover: %+v, want the activation on pro", got)
	}
}

// Concurrent redeliveries of a parked event: one takes it over and publishes; the others are
// told to come back (event_in_progress), so the event is not marked done before its
// notifications are published.
func TestEvents_ConcurrentRedeliveriesOfAParkedEventPublishOnce(t *testing.T) {
	pub := &published{}
	f := newManager(t, opts{events: pub})
	h := newHistory("parkco")
	f.newTenant(t, h.tenant, h.customer)
	evs := h.events(t)
	pub.failWith(errors.New("outbox down"))
	if err := deliver(t, f.m, evs[0]); err == nil {
		t.Fatal("delivered with the outbox down")
	}
	pub.failWith(nil)
	results := make([]error, 5)
	testenv.AtOnce(len(results), func(i int) { results[i] = deliver(t, f.m, evs[0]) })
	ok := 0
	for i, err := range results {
		switch {
		case err == nil:
			ok++
		case errs.Is(err, "event_in_progress"):
		default:
			t.Errorf("redelivery %d: %v", i, err)
		}
	}
	got := pub.of(h.tenant)
	if ok == 0 || len(got) != 1 || got[0].Type != notify.EventSubscriptionActivated {
		t.Fatalf("%d redeliveries succeeded, published %v; want the activation once", ok, types(got))
	}
}
