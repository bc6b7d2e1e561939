package billing_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap/zapcore"

	"github.com/saasgate/saasgate/control/billing"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

// A signed event is applied; a delivery whose body, header, timestamp or secret is wrong is
// refused with invalid_signature before anything of it is read or stored: no event record, no
// change to the tenant, no audit entry.
func TestWebhook_SignatureCheckedBeforeAnythingIsStored(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "acme", "cus_acme")
	now := time.Now().Truncate(time.Second)
	payload := acmeSubscribed(t, "evt_sig", now.Add(-time.Minute), now)
	tampered := bytes.Clone(payload)
	i := bytes.Index(tampered, []byte("price_pro"))
	tampered[i+len("price_pr")] = 'x' // price_prx: one byte

	before, events, audits := f.tenantState(t, "acme"), f.storedEvents(t), f.auditCount(t, "acme")
	for _, tc := range []struct {
		name, signature string
		body            []byte
	}{
		{"one byte of the body changed", sign(payload), tampered},
		{"header missing", "", payload},
		{"signed 301 s ago", testenv.SignStripe(payload, testenv.WebhookSecret, time.Now().Add(-301*time.Second)), payload},
		{"signed with another secret", testenv.SignStripe(payload, "whsec_somebody_else", time.Now()), payload},
		{"header garbage", "t=abc,v1=zz", payload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.m.HandleWebhook(context.Background(), identity.Anonymous("127.0.0.1", "r"), tc.body, tc.signature)
			e, ok := errs.As(err)
			if !ok || e.Code != "invalid_signature" || e.Kind != errs.KindBadRequest {
				t.Fatalf("HandleWebhook = %v, want invalid_signature (400)", err)
			}
			if n := f.storedEvents(t); n != events {
				t.Errorf("stripe_events holds %d records, was %d: a refused delivery was recorded", n, events)
			}
			if after := f.tenantState(t, "acme"); !reflect.DeepEqual(after, before) {
				t.Errorf("tenant changed by a refused delivery:\n before %+v %+v\n after  %+v %+v", before, before.Billing, after, after.Billing)
			}
			if n := f.auditCount(t, "acme"); n != audits {
				t.Errorf("%d audit entries, was %d", n, audits)
			}
		})
	}

	// The same event, signed 290 s ago (within the 300 s tolerance), is applied.
	if err := f.m.HandleWebhook(context.Background(), identity.Anonymous("127.0.0.1", "r"), payload,
		testenv.SignStripe(payload, testenv.WebhookSecret, time.Now().Add(-290*time.Second))); err != nil {
		t.Fatalf("valid delivery: %v", err)
	}
	after := f.tenantState(t, "acme")
	if after.Billing.Status != tenant.BillingActive || after.Plan != "pro" || after.Billing.Rev != before.Billing.Rev+1 {
		t.Errorf("after the valid delivery: plan %s, billing %+v; want active on pro, one revision more", after.Plan, after.Billing)
	}
	if n := f.storedEvents(t); n != events+1 {
		t.Errorf("stripe_events holds %d records, want %d", n, events+1)
	}
	if n := len(f.auditEntries(t, "acme", billing.ActionChange)); n != 1 {
		t.Errorf("%d %s audit entries, want 1", n, billing.ActionChange)
	}
}

// Stripe may deliver an event several times, even at once: five concurrent deliveries of one
// event make one change and one audit entry; the others are acknowledged as duplicates or told
// to come back (event_in_progress), and a later redelivery changes nothing.
func TestWebhook_ConcurrentDuplicatesHaveOneEffect(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "acme", "cus_acme")
	now := time.Now().Truncate(time.Second)
	payload := acmeSubscribed(t, "evt_dup", now.Add(-time.Minute), now)
	signature := sign(payload)
	before := f.tenantState(t, "acme")

	const n = 5
	results := make([]error, n)
	testenv.AtOnce(n, func(i int) {
		results[i] = f.m.HandleWebhook(context.Background(), identity.Anonymous("127.0.0.1", "r"), payload, signature)
	})

	applied := 0
	for i, err := range results {
		switch {
		case err == nil:
			applied++
		case errs.Is(err, "event_in_progress"):
		default:
			t.Errorf("delivery %d: %v, want nil or event_in_progress", i, err)
		}
	}
	if applied == 0 {
		t.Errorf("no delivery succeeded: %v", results)
	}
	after := f.tenantState(t, "acme")
	if after.Billing.Rev != before.Billing.Rev+1 {
		t.Errorf("billing revision %d → %d, want exactly one write", before.Billing.Rev, after.Billing.Rev)
	}
	if after.Billing.Status != tenant.BillingActive || after.Plan != "pro" {
		t.Errorf("after the deliveries: plan %s, billing %+v; want active on pro", after.Plan, after.Billing)
	}
	if changes := f.auditEntries(t, "acme", billing.ActionChange); len(changes) != 1 {
		t.Errorf("%d %s audit entries, want 1: %+v", len(changes), billing.ActionChange, changes)
	}

	// Stripe's later redelivery is acknowledged and changes nothing.
	if err := deliver(t, f.m, payload); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if again := f.tenantState(t, "acme"); !reflect.DeepEqual(again, after) {
		t.Errorf("redelivery changed the tenant: %+v → %+v", after.Billing, again.Billing)
	}
	if changes := f.auditEntries(t, "acme", billing.ActionChange); len(changes) != 1 {
		t.Errorf("%d %s audit entries after the redelivery, want 1", len(changes), billing.ActionChange)
	}
	if n := f.storedEvents(t); n != 1 {
		t.Errorf("stripe_events holds %d records, want 1", n)
	}
	if rec := f.eventRecord(t, "evt_dup"); rec["state"] != "done" || rec["tenant"] != "acme" {
		t.Errorf("event record %v, want done for acme", rec)
	}
}

// An event recorded as processing by a handler that died is not applied by a redelivery at
// once (its handler may still be running: event_in_progress, so Stripe comes back); a
// redelivery after a minute takes it over and applies it, once.
func TestWebhook_EventLeftProcessingIsTakenOverAfterAMinute(t *testing.T) {
	clk := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	f := newManager(t, opts{clock: clk})
	f.newTenant(t, "acme", "cus_acme")
	now := clk.Now()
	payload := acmeSubscribed(t, "evt_dead", now.Add(-time.Minute), now)
	// The record a handler leaves when it dies between recording the event and applying it.
	if _, err := f.db.C(store.CollStripeEvents).InsertOne(context.Background(), bson.D{
		{Key: "_id", Value: "evt_dead"}, {Key: "type", Value: "customer.subscription.created"},
		{Key: "state", Value: "processing"}, {Key: "received_at", Value: now}, {Key: "started_at", Value: now},
	}); err != nil {
		t.Fatal(err)
	}
	before := f.tenantState(t, "acme")

	clk.Set(now.Add(59 * time.Second))
	if err := deliver(t, f.m, payload); !errs.Is(err, "event_in_progress") {
		t.Fatalf("redelivery while the event is processing: %v, want event_in_progress", err)
	}
	if after := f.tenantState(t, "acme"); !reflect.DeepEqual(after, before) {
		t.Fatalf("an event in progress was applied a second time: %+v", after.Billing)
	}

	clk.Set(now.Add(61 * time.Second))
	if err := deliver(t, f.m, payload); err != nil {
		t.Fatalf("redelivery after the handler's minute: %v", err)
	}
	after := f.tenantState(t, "acme")
	if after.Billing.Status != tenant.BillingActive || after.Plan != "pro" || after.Billing.Rev != before.Billing.Rev+1 {
		t.Errorf("after the takeover: plan %s, billing %+v; want active on pro, one write", after.Plan, after.Billing)
	}
	if rec := f.eventRecord(t, "evt_dead"); rec["state"] != "done" {
		t.Errorf("event record %v, want done", rec)
	}
	if err := deliver(t, f.m, payload); err != nil {
		t.Fatalf("redelivery of a done event: %v", err)
	}
	if n := len(f.auditEntries(t, "acme", billing.ActionChange)); n != 1 {
		t.Errorf("%d %s entries, want 1", n, billing.ActionChange)
	}
}

// history is one subscription's life as five events, created at t1 < t2 < ... < t5:
// created (active on pro), updated (moved to team, a new period), payment failed, paid,
// deleted. Each test run gets its own ids, so permutations share a database.
type history struct {
	tenant, customer, sub, invoice string
	at                             [5]time.Time
	period                         [2][2]time.Time // the periods of created and updated
}

func newHistory(tenantID string) history {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	h := history{tenant: tenantID, customer: "cus_" + tenantID, sub: "sub_" + tenantID, invoice: "in_" + tenantID}
	for i := range h.at {
		h.at[i] = t0.Add(time.Duration(i+1) * time.Minute)
	}
	h.period[0] = [2]time.Time{t0.AddDate(0, -1, 0), t0}
	h.period[1] = [2]time.Time{t0, t0.AddDate(0, 1, 0)}
	return h
}

// events returns the five events' payloads in the order t1..t5.
func (h history) events(t testing.TB) [5][]byte {
	s := func(status, price string, period [2]time.Time) map[string]any {
		return testenv.StripeSubscription{ID: h.sub, Tenant: h.tenant, Customer: h.customer, Status: status, Price: price,
			Start: period[0], End: period[1]}.Object()
	}
	inv := testenv.StripeInvoice{ID: h.invoice, Tenant: h.tenant, Customer: h.customer, Subscription: h.sub}
	failed, paid := inv, inv
	failed.Status, paid.Status = "open", "paid"
	return [5][]byte{
		event(t, uniq("evt", h.tenant, "created"), "customer.subscription.created", h.at[0], s("active", "price_pro", h.period[0])),
		event(t, uniq("evt", h.tenant, "updated"), "customer.subscription.updated", h.at[1], s("active", "price_team", h.period[1])),
		event(t, uniq("evt", h.tenant, "failed"), "invoice.payment_failed", h.at[2], failed.Object()),
		event(t, uniq("evt", h.tenant, "paid"), "invoice.paid", h.at[3], paid.Object()),
		event(t, uniq("evt", h.tenant, "deleted"), "customer.subscription.deleted", h.at[4], s("canceled", "price_team", h.period[1])),
	}
}

// delayed is a Checkout paid by a delayed method (a bank debit) in four events: the session
// completes unpaid (t1) beside its incomplete subscription (t2); then the payment succeeds (t3)
// and the subscription becomes active on pro (t4), or the payment fails (t3) and the
// subscription expires (t4).
func (h history) delayed(t testing.TB, succeeds bool) [][]byte {
	completed := testenv.StripeCheckoutSession{ID: "cs_" + h.tenant, Tenant: h.tenant, Plan: "pro", Customer: h.customer,
		Subscription: h.sub, PaymentStatus: "unpaid"}
	sub := testenv.StripeSubscription{ID: h.sub, Tenant: h.tenant, Customer: h.customer, Status: "incomplete", Price: "price_pro",
		Start: h.period[1][0], End: h.period[1][1]}
	outcome, settled, last := "checkout.session.async_payment_failed", completed, sub
	last.Status = "incomplete_expired"
	if succeeds {
		outcome, settled.PaymentStatus, last.Status = "checkout.session.async_payment_succeeded", "paid", "active"
	}
	return [][]byte{
		event(t, uniq("evt", h.tenant, "completed"), "checkout.session.completed", h.at[0], completed.Object()),
		event(t, uniq("evt", h.tenant, "created"), "customer.subscription.created", h.at[1], sub.Object()),
		event(t, uniq("evt", h.tenant, "outcome"), outcome, h.at[2], settled.Object()),
		event(t, uniq("evt", h.tenant, "updated"), "customer.subscription.updated", h.at[3], last.Object()),
	}
}

// permutations returns every ordering of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := make([]int, 0, n)
			q = append(q, p[:i]...)
			q = append(q, n-1)
			q = append(q, p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func permName(p []int) string {
	b := make([]byte, len(p))
	for i, v := range p {
		b[i] = byte('0' + v)
	}
	return string(b)
}

// Stripe does not deliver in order. Whatever the order of a subscription's five events, the
// tenant ends canceled on the default plan; without the deletion, whatever the order of the
// other four, it ends active on team with the period of the update and no grace period: an
// older event delivered late never wins. A Checkout paid by a delayed method ends active on pro
// whatever the order of its four events, and, when the payment fails, leaves the tenant as it
// was: no order grants the plan early. Every one of the 120 + 24 + 24 + 24 orders is tried,
// each on a tenant of its own.
func TestWebhook_AnyDeliveryOrderEndsInTheNewestState(t *testing.T) {
	f := newManager(t, opts{})
	five := func(t testing.TB, h history) [][]byte { evs := h.events(t); return evs[:] }
	check := func(t *testing.T, order []int, prefix string, events func(testing.TB, history) [][]byte, want func(t *testing.T, h history, tn *tenant.Tenant)) {
		id := prefix + "-" + permName(order)
		h := newHistory(id)
		f.newTenant(t, id, h.customer)
		evs := events(t, h)
		for _, i := range order {
			mustDeliver(t, f.m, evs[i])
		}
		want(t, h, f.tenantState(t, id))
	}
	t.Run("all five", func(t *testing.T) {
		for _, order := range permutations(5) {
			t.Run(permName(order), func(t *testing.T) {
				t.Parallel()
				check(t, order, "five", five, func(t *testing.T, h history, tn *tenant.Tenant) {
					b := tn.Billing
					if b.Status != tenant.BillingCanceled || tn.Plan != "free" || tn.EffectivePlan() != "free" ||
						b.SubscriptionID != h.sub || !b.GraceUntil.IsZero() {
						t.Errorf("plan %s, billing %+v; want canceled on free", tn.Plan, b)
					}
				})
			})
		}
	})
	t.Run("without deletion", func(t *testing.T) {
		for _, order := range permutations(4) {
			t.Run(permName(order), func(t *testing.T) {
				t.Parallel()
				check(t, order, "four", five, func(t *testing.T, h history, tn *tenant.Tenant) {
					b := tn.Billing
					if b.Status != tenant.BillingActive || tn.Plan != "team" || b.SubscriptionID != h.sub {
						t.Errorf("plan %s, billing %+v; want active on team", tn.Plan, b)
					}
					if !b.PeriodStart.Equal(h.period[1][0]) || !b.PeriodEnd.Equal(h.period[1][1]) {
						t.Errorf("period %v – %v, want the update's %v – %v", b.PeriodStart, b.PeriodEnd, h.period[1][0], h.period[1][1])
					}
					if !b.GraceUntil.IsZero() || !b.FailedAt.IsZero() || b.InvoiceID != "" || b.Retries != 0 {
						t.Errorf("billing %+v still carries the failed payment", b)
					}
				})
			})
		}
	})
	t.Run("delayed payment succeeds", func(t *testing.T) {
		for _, order := range permutations(4) {
			t.Run(permName(order), func(t *testing.T) {
				t.Parallel()
				check(t, order, "paidlater", func(t testing.TB, h history) [][]byte { return h.delayed(t, true) },
					func(t *testing.T, h history, tn *tenant.Tenant) {
						b := tn.Billing
						if b.Status != tenant.BillingActive || tn.Plan != "pro" || b.SubscriptionID != h.sub {
							t.Errorf("plan %s, billing %+v; want active on pro", tn.Plan, b)
						}
					})
			})
		}
	})
	t.Run("delayed payment fails", func(t *testing.T) {
		for _, order := range permutations(4) {
			t.Run(permName(order), func(t *testing.T) {
				t.Parallel()
				check(t, order, "notpaid", func(t testing.TB, h history) [][]byte { return h.delayed(t, false) },
					func(t *testing.T, _ history, tn *tenant.Tenant) {
						if b := tn.Billing; b.Status != tenant.BillingNone || tn.Plan != "free" || b.SubscriptionID != "" || b.Rev != 0 {
							t.Errorf("plan %s, billing %+v; want untouched on free", tn.Plan, b)
						}
					})
			})
		}
	})
}

// A payment failure delivered after the later payment that settled it is stale: it changes
// nothing, not even the revision, and is not audited.
func TestWebhook_StaleFailureAfterPaymentLeavesActive(t *testing.T) {
	f := newManager(t, opts{})
	h := newHistory("acme")
	f.newTenant(t, "acme", h.customer)
	evs := h.events(t)
	for _, i := range []int{0, 1, 3} { // created, updated, paid(t4)
		mustDeliver(t, f.m, evs[i])
	}
	before := f.tenantState(t, "acme")
	changes := len(f.auditEntries(t, "acme", billing.ActionChange))
	mustDeliver(t, f.m, evs[2]) // payment_failed(t3)
	after := f.tenantState(t, "acme")
	if after.Billing.Status != tenant.BillingActive || !after.Billing.GraceUntil.IsZero() {
		t.Errorf("billing %+v after a stale failure; want active, no grace", after.Billing)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("a stale event changed the tenant: %+v → %+v", before.Billing, after.Billing)
	}
	if n := len(f.auditEntries(t, "acme", billing.ActionChange)); n != changes {
		t.Errorf("%d %s entries, was %d: a stale event was audited", n, billing.ActionChange, changes)
	}
}

// The customer binds the tenant, and metadata naming another tenant makes the event
// inconsistent: an event naming tenant A with tenant B's customer moves neither A nor B.
func TestWebhook_MetadataCannotMoveAnotherTenant(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "tenant-a", "cus_a")
	f.newTenant(t, "tenant-b", "cus_b")
	now := time.Now().Truncate(time.Second)
	forged := []struct {
		typ    string
		object map[string]any
	}{
		{"customer.subscription.created", testenv.StripeSubscription{ID: "sub_x", Tenant: "tenant-a", Customer: "cus_b", Status: "active",
			Price: "price_team", Start: now, End: now.AddDate(0, 1, 0)}.Object()},
		{"customer.subscription.deleted", testenv.StripeSubscription{ID: "sub_x", Tenant: "tenant-a", Customer: "cus_b", Status: "canceled",
			Price: "price_team", Start: now, End: now.AddDate(0, 1, 0)}.Object()},
		{"invoice.payment_failed", testenv.StripeInvoice{ID: "in_x", Tenant: "tenant-a", Customer: "cus_b", Subscription: "sub_x", Status: "open"}.Object()},
		{"invoice.paid", testenv.StripeInvoice{ID: "in_x", Tenant: "tenant-a", Customer: "cus_b", Subscription: "sub_x", Status: "paid"}.Object()},
		{"checkout.session.completed", testenv.StripeCheckoutSession{ID: "cs_x", Tenant: "tenant-a", Plan: "team", Customer: "cus_b", Subscription: "sub_x"}.Object()},
	}
	beforeA, beforeB := f.tenantState(t, "tenant-a"), f.tenantState(t, "tenant-b")
	for i, ev := range forged {
		t.Run(ev.typ, func(t *testing.T) {
			mustDeliver(t, f.m, event(t, fmt.Sprintf("evt_forged_%d", i), ev.typ, now.Add(time.Duration(i)*time.Second), ev.object))
			f.wantUnchanged(t, "tenant-a", beforeA)
			f.wantUnchanged(t, "tenant-b", beforeB)
		})
	}
	for _, id := range []string{"tenant-a", "tenant-b"} {
		if n := len(f.auditEntries(t, id, billing.ActionChange)); n != 0 {
			t.Errorf("%d %s entries for %s, want 0", n, billing.ActionChange, id)
		}
	}
}

// With the store down, a valid event is answered with a 5xx-kind error (Stripe redelivers);
// once the store is back (a new server over the same files, as after a restart), the
// redelivery is applied, once.
func TestWebhook_StoreOutageAnswers5xxAndRedeliveryApplies(t *testing.T) {
	dir := t.TempDir()
	const database = "outage"
	server, err := store.StartEmbedded(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	running := true
	t.Cleanup(func() {
		if running {
			server.Stop()
		}
	})
	rec := testenv.NewStripeRecorder(t)
	f := newManager(t, opts{db: connect(t, server.URI(), database), stripe: rec})
	f.newTenant(t, "acme", "cus_acme")
	now := time.Now().Truncate(time.Second)
	payload := acmeSubscribed(t, "evt_outage", now.Add(-time.Minute), now)
	before := f.tenantState(t, "acme")

	server.Stop()
	running = false
	err = deliver(t, f.m, payload)
	if e, ok := errs.As(err); !ok || (e.Kind != errs.KindUnavailable && e.Kind != errs.KindInternal) {
		t.Fatalf("delivery with the store down: %v, want an unavailable or internal error (5xx)", err)
	}

	server, err = store.StartEmbedded(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	running = true
	f2 := newManager(t, opts{db: connect(t, server.URI(), database), stripe: rec})
	if err := deliver(t, f2.m, payload); err != nil {
		t.Fatalf("redelivery after the store came back: %v", err)
	}
	after := f2.tenantState(t, "acme")
	if after.Billing.Status != tenant.BillingActive || after.Plan != "pro" || after.Billing.Rev != before.Billing.Rev+1 {
		t.Errorf("after the redelivery: plan %s, billing %+v; want active on pro, one revision more than %d",
			after.Plan, after.Billing, before.Billing.Rev)
	}
	if n := len(f2.auditEntries(t, "acme", billing.ActionChange)); n != 1 {
		t.Errorf("%d %s entries, want 1", n, billing.ActionChange)
	}
	// And once more: a duplicate now.
	if err := deliver(t, f2.m, payload); err != nil {
		t.Fatalf("second redelivery: %v", err)
	}
	if again := f2.tenantState(t, "acme"); again.Billing.Rev != after.Billing.Rev {
		t.Errorf("a duplicate after the outage wrote again (rev %d → %d)", after.Billing.Rev, again.Billing.Rev)
	}
}

// connect opens a client on uri with a short server-selection timeout, so that operations
// against a stopped server fail within seconds.
func connect(t testing.TB, uri, database string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := store.Connect(ctx, uri, database, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = db.Close(ctx)
	})
	return db
}

// A tenant without a customer yet cannot be handed another tenant's customer either: an event
// naming tenant C with tenant B's customer moves neither.
func TestWebhook_MetadataCannotAdoptAnotherTenantsCustomer(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "tenant-b", "cus_b")
	f.newTenant(t, "tenant-c", "")
	now := time.Now().Truncate(time.Second)
	beforeB, beforeC := f.tenantState(t, "tenant-b"), f.tenantState(t, "tenant-c")
	for i, ev := range []struct {
		typ    string
		object map[string]any
	}{
		{"checkout.session.completed", testenv.StripeCheckoutSession{ID: "cs_x", Tenant: "tenant-c", Plan: "team", Customer: "cus_b", Subscription: "sub_x"}.Object()},
		{"customer.subscription.created", testenv.StripeSubscription{ID: "sub_x", Tenant: "tenant-c", Customer: "cus_b", Status: "active",
			Price: "price_team", Start: now, End: now.AddDate(0, 1, 0)}.Object()},
		{"invoice.paid", testenv.StripeInvoice{ID: "in_x", Tenant: "tenant-c", Customer: "cus_b", Subscription: "sub_x", Status: "paid"}.Object()},
	} {
		t.Run(ev.typ, func(t *testing.T) {
			mustDeliver(t, f.m, event(t, fmt.Sprintf("evt_adopt_%d", i), ev.typ, now.Add(time.Duration(i)*time.Second), ev.object))
			f.wantUnchanged(t, "tenant-c", beforeC)
			f.wantUnchanged(t, "tenant-b", beforeB)
		})
	}
}

// Every delivery is observed (the metrics' source) with a type from a fixed set and its result.
func TestWebhook_EveryDeliveryIsObservedWithItsResult(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "obsco", "cus_obsco")
	var mu sync.Mutex
	var seen []string
	f.m.ObserveWebhook = func(typ, result string) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, typ+" "+result)
	}
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return ""
		}
		return seen[len(seen)-1]
	}
	now := time.Now().Truncate(time.Second)
	active := testenv.StripeSubscription{ID: "sub_obs", Tenant: "obsco", Customer: "cus_obsco", Status: "active", Price: "price_pro", Start: now}
	created := event(t, "evt_obs_created", "customer.subscription.created", now.Add(-time.Minute), active.Object())
	stale := event(t, "evt_obs_stale", "customer.subscription.updated", now.Add(-time.Hour), active.Object())
	stranger := event(t, "evt_obs_stranger", "customer.subscription.updated", now, testenv.StripeSubscription{
		ID: "sub_x", Customer: "cus_nobody", Status: "active", Price: "price_pro", Start: now}.Object())
	other := event(t, "evt_obs_other", "customer.created", now, map[string]any{"id": "cus_obsco", "object": "customer"})

	for _, c := range []struct {
		name    string
		payload []byte
		sig     string
		want    string
	}{
		{"first delivery", created, sign(created), "customer.subscription.created applied"},
		{"redelivery", created, sign(created), "customer.subscription.created duplicate"},
		{"older event", stale, sign(stale), "customer.subscription.updated unchanged"},
		{"no tenant of ours", stranger, sign(stranger), "customer.subscription.updated ignored"},
		{"unhandled type", other, sign(other), "other ignored"},
		{"bad signature", created, "t=1,v1=00", "unverified rejected"},
	} {
		_ = f.m.HandleWebhook(context.Background(), identity.Actor{}, c.payload, c.sig)
		if got := last(); got != c.want {
			t.Errorf("%s: observed %q, want %q", c.name, got, c.want)
		}
	}
	if len(seen) != 6 {
		t.Fatalf("observed %d deliveries, want 6: %q", len(seen), seen)
	}
}

// A tenant is bound by its own customer only. A Payment Link's Checkout names the victim in
// client_reference_id (taken from the link's URL) with no metadata and a customer of its own,
// or none; its completion, and the later payment failure of that customer's subscription, are
// acknowledged, logged at INFO with their event ids and change no tenant: the victim neither
// adopts the customer nor goes past due.
func TestWebhook_ClientReferenceIDCannotBindAVictim(t *testing.T) {
	f := newManager(t, opts{})
	logs := f.observeLogs()
	now := time.Now().Truncate(time.Second)
	for i, tc := range []struct {
		name                   string
		victim, victimCustomer string
		customer               string // the event's
	}{
		{"victim without a customer, the link's customer", "victim-a", "", "cus_attacker"},
		{"victim without a customer, no customer", "victim-b", "", ""},
		{"victim with its customer, the link's customer", "victim-c", "cus_victim_c", "cus_attacker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.newTenant(t, tc.victim, tc.victimCustomer)
			before := f.tenantState(t, tc.victim)
			sub, completedID, failedID := uniq("sub_link", i), uniq("evt_link_completed", i), uniq("evt_link_failed", i)
			// In Stripe's order: the completion, then the failure.
			for _, ev := range []struct {
				id      string
				payload []byte
			}{
				{completedID, event(t, completedID, "checkout.session.completed", now, testenv.StripeCheckoutSession{
					ID: uniq("cs_link", i), Tenant: tc.victim, Customer: tc.customer, Subscription: sub, ReferenceOnly: true}.Object())},
				{failedID, event(t, failedID, "invoice.payment_failed", now.Add(time.Second), testenv.StripeInvoice{
					ID: uniq("in_link", i), Customer: tc.customer, Subscription: sub, Status: "open"}.Object())},
			} {
				mustDeliver(t, f.m, ev.payload)
				f.wantUnchanged(t, tc.victim, before)
				wantLogged(t, logs, zapcore.InfoLevel, ev.id)
				if rec := f.eventRecord(t, ev.id); rec["state"] != "done" {
					t.Errorf("event %s recorded as %v, want done (acknowledged)", ev.id, rec)
				}
			}
			if n := len(f.auditEntries(t, tc.victim, billing.ActionChange)); n != 0 {
				t.Errorf("%d %s audit entries for the victim, want 0", n, billing.ActionChange)
			}
		})
	}
}

// A plan is granted only once paid for: by a checkout.session.completed paid (or owing
// nothing), by checkout.session.async_payment_succeeded after an unpaid completion, or by an
// active subscription. An unpaid completion, a failed delayed payment, and a subscription
// incomplete, incomplete_expired or paused change nothing at all.
func TestWebhook_PlanIsGrantedOnlyOncePaid(t *testing.T) {
	f := newManager(t, opts{})
	now := time.Now().Truncate(time.Second)
	type step struct{ typ, status string } // status: the session's payment_status, or the subscription's
	for i, tc := range []struct {
		name    string
		steps   []step
		granted bool // active on pro; otherwise the tenant is untouched
	}{
		{"card payment", []step{{"checkout.session.completed", "paid"}}, true},
		{"nothing to pay", []step{{"checkout.session.completed", "no_payment_required"}}, true},
		{"subscription active", []step{{"customer.subscription.created", "active"}}, true},
		{"unpaid completion", []step{{"checkout.session.completed", "unpaid"}}, false},
		{"delayed payment succeeds", []step{{"checkout.session.completed", "unpaid"}, {"checkout.session.async_payment_succeeded", "paid"}}, true},
		{"delayed payment fails", []step{{"checkout.session.completed", "unpaid"}, {"checkout.session.async_payment_failed", "unpaid"}}, false},
		{"subscription incomplete", []step{{"customer.subscription.created", "incomplete"}}, false},
		{"subscription incomplete then expired", []step{{"customer.subscription.created", "incomplete"}, {"customer.subscription.updated", "incomplete_expired"}}, false},
		{"subscription paused", []step{{"customer.subscription.updated", "paused"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("paid-%d", i)
			customer, sub := "cus_"+id, "sub_"+id
			f.newTenant(t, id, customer)
			before := f.tenantState(t, id)
			for j, st := range tc.steps {
				object := testenv.StripeSubscription{ID: sub, Tenant: id, Customer: customer, Status: st.status, Price: "price_pro", Start: now}.Object()
				if strings.HasPrefix(st.typ, "checkout.") {
					object = testenv.StripeCheckoutSession{ID: "cs_" + id, Tenant: id, Plan: "pro", Customer: customer, Subscription: sub,
						PaymentStatus: st.status}.Object()
				}
				mustDeliver(t, f.m, event(t, uniq("evt", id, j), st.typ, now.Add(time.Duration(j)*time.Second), object))
			}
			if !tc.granted {
				f.wantUnchanged(t, id, before)
				return
			}
			if tn := f.tenantState(t, id); tn.Billing.Status != tenant.BillingActive || tn.Plan != "pro" || tn.Billing.SubscriptionID != sub {
				t.Errorf("plan %s, billing %+v; want active on pro with %s", tn.Plan, tn.Billing, sub)
			}
		})
	}
}

// A subscription whose price maps to no plan (a price made in the dashboard, a plan taken out
// of the configuration) moves the tenant from the plan it had to the default plan, with a WARN
// naming the event.
func TestWebhook_PriceOfNoPlanMovesToTheDefaultPlan(t *testing.T) {
	f := newManager(t, opts{})
	logs := f.observeLogs()
	f.newTenant(t, "acme", "cus_acme")
	now := time.Now().Truncate(time.Second)
	mustDeliver(t, f.m, acmeSubscribed(t, "evt_on_pro", now.Add(-time.Minute), now))
	if tn := f.tenantState(t, "acme"); tn.Plan != "pro" {
		t.Fatalf("plan %s after subscribing to pro", tn.Plan)
	}
	mustDeliver(t, f.m, event(t, "evt_price_gone", "customer.subscription.updated", now, testenv.StripeSubscription{
		ID: "sub_acme", Tenant: "acme", Customer: "cus_acme", Status: "active", Price: "price_gone", Start: now}.Object()))
	if tn := f.tenantState(t, "acme"); tn.Plan != "free" || tn.Billing.Status != tenant.BillingActive {
		t.Errorf("plan %s, billing %+v; want active on the default plan free", tn.Plan, tn.Billing)
	}
	wantLogged(t, logs, zapcore.WarnLevel, "evt_price_gone")
}
