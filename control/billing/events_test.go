package billing_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/internal/testenv"
)

// published records what billing publishes. It stands for nothing external: the outbox is
// notify's, tested there; here only the calls billing makes matter.
type published struct {
	mu    sync.Mutex
	calls []notify.Event
	fail  error
}

func (p *published) Publish(_ context.Context, ev notify.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.calls = append(p.calls, ev)
	return nil
}

func (p *published) failWith(err error) {
	p.mu.Lock()
	p.fail = err
	p.mu.Unlock()
}

// of returns the tenant's published events, in order.
func (p *published) of(tenantID string) []notify.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []notify.Event
	for _, ev := range p.calls {
		if ev.TenantID == tenantID {
			out = append(out, ev)
		}
	}
	return out
}

// types lists the events' types.
func types(evs []notify.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

// wantOnce fails t unless evs are exactly one event of each of want (in any order), with
// distinct ids, and returns them by type.
func wantOnce(t *testing.T, evs []notify.Event, want ...string) map[string]notify.Event {
	t.Helper()
	got := types(evs)
	sort.Strings(got)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if !reflect.DeepEqual(got, w) && !(len(got) == 0 && len(w) == 0) {
		t.Fatalf("published %v, want %v once each", types(evs), want)
	}
	byType := make(map[string]notify.Event)
	for _, ev := range evs {
		byType[ev.Type] = ev
	}
	return byType
}

// A subscription's life, delivered in order and every event twice, publishes activated,
// plan_changed, payment.failed, payment.succeeded and canceled, once each, with the
// documented data and ids derived from the change.
func TestEvents_SubscriptionLifePublishesEachEventOnce(t *testing.T) {
	pub := &published{}
	f := newManager(t, opts{events: pub})
	h := newHistory("life")
	f.newTenant(t, h.tenant, h.customer)
	evs := h.events(t)
	for _, payload := range evs {
		mustDeliver(t, f.m, payload)
		mustDeliver(t, f.m, payload)
	}
	got := pub.of(h.tenant)
	if want := []string{notify.EventSubscriptionActivated, notify.EventSubscriptionPlanChanged, notify.EventPaymentFailed,
		notify.EventPaymentSucceeded, notify.EventSubscriptionCanceled}; !reflect.DeepEqual(types(got), want) {
		t.Fatalf("published %v, want %v", types(got), want)
	}
	by := wantOnce(t, got, types(got)...)

	period := h.period[1][1].UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		typ  string
		id   string
		at   time.Time
		data map[string]any
	}{
		{notify.EventSubscriptionActivated, notify.EventID(h.tenant, h.sub, notify.EventSubscriptionActivated), h.at[0],
			map[string]any{"tenant_id": h.tenant, "plan": "pro", "status": "active", "customer_id": h.customer,
				"subscription_id": h.sub, "period_end": h.period[0][1].UTC().Format(time.RFC3339)}},
		{notify.EventSubscriptionPlanChanged, notify.EventID(uniq("evt", h.tenant, "updated"), notify.EventSubscriptionPlanChanged), h.at[1],
			map[string]any{"tenant_id": h.tenant, "plan": "team", "previous_plan": "pro", "status": "active", "customer_id": h.customer,
				"subscription_id": h.sub, "period_end": period}},
		{notify.EventPaymentFailed, notify.EventID(uniq("evt", h.tenant, "failed"), notify.EventPaymentFailed), h.at[2],
			map[string]any{"tenant_id": h.tenant, "plan": "team", "status": "past_due", "customer_id": h.customer,
				"subscription_id": h.sub, "period_end": period, "invoice_id": h.invoice,
				"grace_until": h.at[2].Add(grace).UTC().Format(time.RFC3339)}},
		{notify.EventPaymentSucceeded, notify.EventID(uniq("evt", h.tenant, "paid"), notify.EventPaymentSucceeded), h.at[3],
			map[string]any{"tenant_id": h.tenant, "plan": "team", "status": "active", "customer_id": h.customer,
				"subscription_id": h.sub, "period_end": period, "invoice_id": h.invoice}},
		{notify.EventSubscriptionCanceled, notify.EventID(h.tenant, h.sub, notify.EventSubscriptionCanceled), h.at[4],
			map[string]any{"tenant_id": h.tenant, "plan": "free", "previous_plan": "team", "status": "canceled", "customer_id": h.customer,
				"subscription_id": h.sub, "period_end": period}},
	} {
		ev := by[tc.typ]
		if ev.ID != tc.id || !ev.Time.Equal(tc.at) || ev.TenantID != h.tenant {
			t.Errorf("%s: id %s at %v, want %s at %v", tc.typ, ev.ID, ev.Time, tc.id, tc.at)
		}
		if !reflect.DeepEqual(ev.Data, tc.data) {
			t.Errorf("%s: data %v\n want %v", tc.typ, ev.Data, tc.data)
		}
	}
}

// Whatever the order of a Checkout's three events (the session, the subscription, its first
// invoice), the tenant's activation is published once, naming the plan bought, with one id,
// beside one payment.succeeded; a late event publishes nothing.
func TestEvents_AnyOrderOfACheckoutPublishesOneActivation(t *testing.T) {
	pub := &published{}
	f := newManager(t, opts{events: pub})
	var activationIDs []string
	for _, order := range permutations(3) {
		t.Run(permName(order), func(t *testing.T) {
			h := newHistory("checkout-" + permName(order))
			f.newTenant(t, h.tenant, h.customer)
			evs := [][]byte{
				event(t, uniq("evt", h.tenant, "completed"), "checkout.session.completed", h.at[0], testenv.StripeCheckoutSession{
					ID: "cs_" + h.tenant, Tenant: h.tenant, Plan: "pro", Customer: h.customer, Subscription: h.sub}.Object()),
				event(t, uniq("evt", h.tenant, "created"), "customer.subscription.created", h.at[1], testenv.StripeSubscription{
					ID: h.sub, Tenant: h.tenant, Customer: h.customer, Status: "active", Price: "price_pro", Start: h.period[1][0]}.Object()),
				event(t, uniq("evt", h.tenant, "paid"), "invoice.paid", h.at[2], testenv.StripeInvoice{
					ID: h.invoice, Tenant: h.tenant, Customer: h.customer, Subscription: h.sub, Status: "paid"}.Object()),
			}
			for _, i := range order {
				mustDeliver(t, f.m, evs[i])
				mustDeliver(t, f.m, evs[i])
			}
			by := wantOnce(t, pub.of(h.tenant), notify.EventSubscriptionActivated, notify.EventPaymentSucceeded)
			act := by[notify.EventSubscriptionActivated]
			if act.Data["plan"] != "pro" || act.Data["status"] != "active" || act.ID != notify.EventID(h.tenant, h.sub, notify.EventSubscriptionActivated) {
				t.Errorf("activation %+v, want active on pro with the subscription's id", act)
			}
			activationIDs = append(activationIDs, act.ID)
		})
	}
	if len(activationIDs) != 6 {
		t.Fatalf("%d orders ran, want 6", len(activationIDs))
	}

	// A late event: the update to team at t2 applied, the creation at t1 arrives after it.
	h := newHistory("late")
	f.newTenant(t, h.tenant, h.customer)
	evs := h.events(t)
	mustDeliver(t, f.m, evs[1])
	before := len(pub.of(h.tenant))
	mustDeliver(t, f.m, evs[0])
	if got := pub.of(h.tenant)[before:]; len(got) != 0 {
		t.Errorf("the late creation published %v", types(got))
	}
}

// Publishing comes before the acknowledgement: when it fails the webhook answers 503 (Stripe
// delivers it again) though the change is stored; the redelivery, which changes nothing more,
// publishes the same events with the same ids, and a third delivery is a duplicate that
// publishes nothing.
func TestEvents_FailedPublishAnswersAnErrorAndTheRetryPublishesTheSameIDs(t *testing.T) {
	pub := &published{}
	f := newManager(t, opts{events: pub})
	h := newHistory("flaky")
	f.newTenant(t, h.tenant, h.customer)
	evs := h.events(t)
	mustDeliver(t, f.m, evs[0])
	mustDeliver(t, f.m, evs[1])

	pub.failWith(errors.New("outbox down"))
	err := deliver(t, f.m, evs[2])
	if e, ok := errs.As(err); !ok || e.Kind != errs.KindUnavailable {
		t.Fatalf("delivery with the publisher failing = %v, want a 503 kind", err)
	}
	if b := f.tenantState(t, h.tenant).Billing; b.Status != "past_due" {
		t.Fatalf("the change was not stored before publishing: billing %+v", b)
	}
	if rec := f.eventRecord(t, uniq("evt", h.tenant, "failed")); rec == nil || rec["state"] != "parked" {
		t.Fatalf("the event's record %v, want parked", rec)
	}

	pub.failWith(nil)
	mustDeliver(t, f.m, evs[2])
	got := pub.of(h.tenant)
	if n := len(got); n != 3 || got[2].Type != notify.EventPaymentFailed ||
		got[2].ID != notify.EventID(uniq("evt", h.tenant, "failed"), notify.EventPaymentFailed) ||
		got[2].Data["grace_until"] != h.at[2].Add(grace).UTC().Format(time.RFC3339) {
		t.Fatalf("after the redelivery: %+v, want payment.failed with the change's id and data", got)
	}
	mustDeliver(t, f.m, evs[2])
	if n := len(pub.of(h.tenant)); n != 3 {
		t.Errorf("a duplicate published again: %d events", n)
	}
	if rec := f.eventRecord(t, uniq("evt", h.tenant, "failed")); rec == nil || rec["state"] != "done" {
		t.Errorf("the event's record %v, want done", rec)
	}
}

// The scheduler's suspension publishes tenant.suspended once, named by the tenant and its
// grace period; paying again publishes tenant.reactivated and payment.succeeded. A failed
// publish of the suspension is tried again by the next tick, with the same id.
func TestEvents_SuspensionAndReactivation(t *testing.T) {
	T := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clk := testenv.NewClock(T)
	pub := &published{}
	f := newManager(t, opts{clock: clk, events: pub})
	f.stripe.Fail("POST", "/v1/invoices/", "card_declined")
	f.newTenant(t, "acme", "cus_acme")
	mustDeliver(t, f.m, acmeSubscribed(t, "evt_s_created", T.Add(-30*24*time.Hour), T.Add(-30*24*time.Hour)))
	mustDeliver(t, f.m, event(t, "evt_s_failed", "invoice.payment_failed", T, testenv.StripeInvoice{
		ID: "in_acme", Tenant: "acme", Customer: "cus_acme", Subscription: "sub_acme", Status: "open"}.Object()))

	pub.failWith(errors.New("outbox down"))
	clk.Set(T.Add(grace))
	if _, err := f.m.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := f.tenantState(t, "acme").Billing; b.Status != "suspended" {
		t.Fatalf("billing %+v, want suspended", b)
	}
	pub.failWith(nil)
	clk.Set(T.Add(grace + time.Minute))
	for i := 0; i < 2; i++ {
		if _, err := f.m.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wantID := notify.EventID("acme", T.Add(grace).Format(time.RFC3339), notify.EventTenantSuspended)
	got := pub.of("acme")
	if len(got) != 3 || got[2].Type != notify.EventTenantSuspended || got[2].ID != wantID ||
		got[2].Data["status"] != "suspended" || got[2].Data["plan"] != "pro" {
		t.Fatalf("published %+v, want activated, payment.failed, then tenant.suspended %s once", got, wantID)
	}

	mustDeliver(t, f.m, event(t, "evt_s_paid", "invoice.paid", T.Add(grace+time.Hour), testenv.StripeInvoice{
		ID: "in_acme", Tenant: "acme", Customer: "cus_acme", Subscription: "sub_acme", Status: "paid"}.Object()))
	wantOnce(t, pub.of("acme")[3:], notify.EventTenantReactivated, notify.EventPaymentSucceeded)
	if re := pub.of("acme")[3]; re.Data["status"] != "active" || re.ID != notify.EventID("evt_s_paid", re.Type) {
		t.Errorf("after paying: %+v", re)
	}
}

// Assembled by control.New without a publisher of its own, billing publishes into the outbox:
// the activation is recorded there once, even when Stripe delivers the event twice.
func TestEvents_TheAssembledServicePublishesIntoTheOutbox(t *testing.T) {
	f := newManager(t, opts{})
	h := newHistory("quiet")
	f.newTenant(t, h.tenant, h.customer)
	evs := h.events(t)
	mustDeliver(t, f.m, evs[0])
	mustDeliver(t, f.m, evs[0])
	n, err := f.db.C(notify.CollEvents).CountDocuments(context.Background(),
		bson.D{{Key: "tenant_id", Value: h.tenant}, {Key: "type", Value: notify.EventSubscriptionActivated}})
	if err != nil || n != 1 {
		t.Fatalf("subscription.activated events of %s in the outbox: %d, %v; want 1", h.tenant, n, err)
	}
}

// In every order of a subscription's four events (created, moved to team, a payment failed,
// paid), each delivered twice, the activation is published exactly once, no event type twice,
// and the last plan announced is team: a late event never announces an older state.
func TestEvents_AnyOrderPublishesEachEventAtMostOnce(t *testing.T) {
	pub := &published{}
	f := newManager(t, opts{events: pub})
	for _, order := range permutations(4) {
		t.Run(permName(order), func(t *testing.T) {
			t.Parallel()
			h := newHistory("orders-" + permName(order))
			f.newTenant(t, h.tenant, h.customer)
			evs := h.events(t)
			for _, i := range order {
				mustDeliver(t, f.m, evs[i])
				mustDeliver(t, f.m, evs[i])
			}
			got := pub.of(h.tenant)
			seen := make(map[string]int)
			for _, ev := range got {
				seen[ev.Type]++
			}
			for typ, n := range seen {
				if n > 1 {
					t.Errorf("%s published %d times: %v", typ, n, types(got))
				}
			}
			if seen[notify.EventSubscriptionActivated] != 1 {
				t.Errorf("published %v, want one activation", types(got))
			}
			if last := got[len(got)-1]; last.Data["plan"] != "team" {
				t.Errorf("the last event %s announces plan %v, want team: %v", last.Type, last.Data["plan"], types(got))
			}
		})
	}
}
