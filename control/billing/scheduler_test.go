package billing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/billing"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

// tickAll runs one Tick on every manager at once (replicas ticking at the same moment).
func tickAll(t *testing.T, ms ...*billing.Manager) []billing.TickReport {
	t.Helper()
	reps := make([]billing.TickReport, len(ms))
	failures := make([]error, len(ms))
	testenv.AtOnce(len(ms), func(i int) {
		reps[i], failures[i] = ms[i].Tick(context.Background())
	})
	for i, err := range failures {
		if err != nil {
			t.Fatalf("replica %d: Tick: %v", i, err)
		}
	}
	return reps
}

// A failed payment makes the tenant past due with grace until T + grace; the scheduler retries
// the open invoice through Stripe's pay call at T+24h, T+72h and T+120h, once each, whichever
// replica ticks and across a restart (its state is in the tenant document); when the grace
// period ends it suspends the tenant, once; a payment then makes it active again.
func TestScheduler_RetriesOnScheduleThenSuspendsUntilPaid(t *testing.T) {
	T := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clk := testenv.NewClock(T)
	f := newManager(t, opts{clock: clk})
	f.stripe.Fail("POST", "/v1/invoices/", "card_declined") // stripe-mock never declines by itself
	f.newTenant(t, "acme", "cus_acme")
	const payPath = "/v1/invoices/in_acme/pay"
	mustDeliver(t, f.m, acmeSubscribed(t, "evt_created", T.Add(-30*24*time.Hour), T.Add(-30*24*time.Hour)))
	mustDeliver(t, f.m, event(t, "evt_failed", "invoice.payment_failed", T, testenv.StripeInvoice{
		ID: "in_acme", Tenant: "acme", Customer: "cus_acme", Subscription: "sub_acme", Status: "open",
	}.Object()))

	tn := f.tenantState(t, "acme")
	if b := tn.Billing; b.Status != tenant.BillingPastDue || !b.GraceUntil.Equal(T.Add(grace)) || tn.Plan != "pro" ||
		tn.EffectiveStatus() != tenant.StatusActive {
		t.Fatalf("after the failure: plan %s, status %s, billing %+v; want past_due on pro until %v, still served",
			tn.Plan, tn.EffectiveStatus(), b, T.Add(grace))
	}
	cur, err := f.m.Current(context.Background(), identity.Principal{TenantID: "acme", Role: identity.RoleOwner}, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if cur.NextRetryAt == nil || !cur.NextRetryAt.Equal(T.Add(24*time.Hour)) {
		t.Errorf("Current: next retry %v, want %v", cur.NextRetryAt, T.Add(24*time.Hour))
	}

	// at sets the clock to T+d and ticks every manager given at once.
	at := func(d time.Duration, ms ...*billing.Manager) {
		t.Helper()
		clk.Set(T.Add(d))
		tickAll(t, ms...)
	}
	wantPays := func(when string, n int) {
		t.Helper()
		if calls := f.stripe.Calls("POST", payPath); len(calls) != n {
			t.Fatalf("%s: %d pay calls, want %d", when, len(calls), n)
		}
		if entries := f.auditEntries(t, "acme", billing.ActionRetry); len(entries) != n {
			t.Fatalf("%s: %d %s audit entries, want %d", when, len(entries), billing.ActionRetry, n)
		}
	}

	at(23*time.Hour, f.m)
	wantPays("T+23h", 0)

	at(24*time.Hour, f.m)
	wantPays("T+24h", 1)
	retry := f.auditEntries(t, "acme", billing.ActionRetry)[0]
	if retry.Outcome != audit.OutcomeFailure || retry.Target != "in_acme" || retry.Detail["stripe_code"] != "card_declined" ||
		retry.Detail["decline_code"] != "insufficient_funds" {
		t.Errorf("retry audit entry %+v; want a failure on in_acme with the card_declined code", retry)
	}
	if key := f.stripe.Calls("POST", payPath)[0].Header.Get("Idempotency-Key"); key != "saasgate-retry-in_acme-1" {
		t.Errorf("first pay call's idempotency key %q", key)
	}

	at(24*time.Hour, f.m) // the same moment again: already done
	wantPays("T+24h again", 1)

	// A restart: a new manager over the same database carries on with the second retry.
	restarted := f.replica(t)
	at(72*time.Hour-time.Second, restarted)
	wantPays("T+72h-1s", 1)
	at(72*time.Hour, restarted, f.m) // and two replicas ticking at the same moment retry once
	wantPays("T+72h", 2)
	if key := f.stripe.Calls("POST", payPath)[1].Header.Get("Idempotency-Key"); key != "saasgate-retry-in_acme-2" {
		t.Errorf("second pay call's idempotency key %q, want attempt 2", key)
	}

	at(120*time.Hour, f.m, restarted)
	wantPays("T+120h on two replicas", 3)
	if b := f.tenantState(t, "acme").Billing; b.Status != tenant.BillingPastDue || b.Retries != 3 {
		t.Errorf("after three retries: billing %+v, want past_due with 3 retries", b)
	}

	at(grace-time.Second, f.m, restarted) // no fourth retry, not yet suspended
	wantPays("T+grace-1s", 3)
	if tn := f.tenantState(t, "acme"); tn.Billing.Status != tenant.BillingPastDue {
		t.Errorf("suspended before the grace period ended: %+v", tn.Billing)
	}

	at(grace, f.m, restarted)
	tn = f.tenantState(t, "acme")
	if tn.Billing.Status != tenant.BillingSuspended || tn.EffectiveStatus() != tenant.StatusSuspended {
		t.Fatalf("at T+grace: billing %+v, effective status %s; want suspended", tn.Billing, tn.EffectiveStatus())
	}
	if n := len(f.auditEntries(t, "acme", billing.ActionSuspend)); n != 1 {
		t.Errorf("%d %s audit entries, want 1", n, billing.ActionSuspend)
	}
	at(grace+24*time.Hour, f.m, restarted) // a suspended tenant is neither retried nor suspended again
	wantPays("after the suspension", 3)
	if n := len(f.auditEntries(t, "acme", billing.ActionSuspend)); n != 1 {
		t.Errorf("%d %s audit entries after another tick, want 1", n, billing.ActionSuspend)
	}

	// The owner pays (say in the portal): Stripe sends invoice.paid.
	mustDeliver(t, f.m, event(t, "evt_paid", "invoice.paid", T.Add(grace+25*time.Hour), testenv.StripeInvoice{
		ID: "in_acme", Tenant: "acme", Customer: "cus_acme", Subscription: "sub_acme", Status: "paid",
	}.Object()))
	tn = f.tenantState(t, "acme")
	if b := tn.Billing; b.Status != tenant.BillingActive || !b.GraceUntil.IsZero() || !b.FailedAt.IsZero() ||
		b.Retries != 0 || b.InvoiceID != "" || tn.EffectiveStatus() != tenant.StatusActive || tn.Plan != "pro" {
		t.Errorf("after invoice.paid: plan %s, status %s, billing %+v; want active on pro, grace cleared",
			tn.Plan, tn.EffectiveStatus(), b)
	}
}

// RunScheduler on two replicas at once: a retry that is due is made exactly once.
func TestRunScheduler_TwoReplicasRetryOnce(t *testing.T) {
	f := newManager(t, opts{})
	f.newTenant(t, "acme", "cus_acme")
	failedAt := time.Now().Add(-25 * time.Hour).Truncate(time.Second) // the first retry is due
	mustDeliver(t, f.m, event(t, "evt_failed", "invoice.payment_failed", failedAt, testenv.StripeInvoice{
		ID: "in_acme", Tenant: "acme", Customer: "cus_acme", Subscription: "sub_acme", Status: "open",
	}.Object()))
	const payPath = "/v1/invoices/in_acme/pay"
	const interval = 50 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, m := range []*billing.Manager{f.m, f.replica(t)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.RunScheduler(ctx, interval)
		}()
	}
	defer wg.Wait()
	defer cancel()

	for deadline := time.Now().Add(15 * time.Second); len(f.stripe.Calls("POST", payPath)) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no pay call within 15 s; billing %+v", f.tenantState(t, "acme").Billing)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(10 * interval) // a few more ticks on both replicas
	if n := len(f.stripe.Calls("POST", payPath)); n != 1 {
		t.Errorf("%d pay calls, want 1", n)
	}
	entries := f.auditEntries(t, "acme", billing.ActionRetry)
	if len(entries) != 1 || entries[0].Outcome != audit.OutcomeSuccess {
		t.Errorf("retry audit entries %+v, want one success", entries)
	}
	if b := f.tenantState(t, "acme").Billing; b.Retries != 1 {
		t.Errorf("billing %+v, want 1 retry recorded", b)
	}
}
