package billing

import (
	"context"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/tenant"
)

// The notifications of billing (SPEC §7). A webhook's change is announced after it is stored
// and before Stripe is answered: the notifications are recorded with the Stripe event first
// (EventRecord.Pending), so that when publishing fails, or the process dies, Stripe's
// redelivery (which changes nothing more) publishes the same ones, with the same ids.

// announce names the notifications of one applied Stripe event: before is the tenant's
// billing and plan before it, after (with plan) the result; paymentApplied reports that an
// invoice event moved the status (it was not late).
//
// The ids derive from the change. An activation and a cancellation are the subscription's
// (several Stripe events of one checkout may each be first to activate it, in any order, and
// name one change); the rest are the Stripe event's.
func (m *Manager) announce(ev *stripe.Event, paymentApplied bool, tenantID string, before *tenant.Billing, beforePlan string, after *tenant.Billing, plan string) []notify.Event {
	if m.Notify == nil {
		return nil
	}
	at := unixTime(ev.Created)
	data := billingData(tenantID, plan, after)
	var out []notify.Event
	add := func(typ string, extra map[string]any, idParts ...string) {
		d := make(map[string]any, len(data)+len(extra))
		for k, v := range data {
			d[k] = v
		}
		for k, v := range extra {
			d[k] = v
		}
		out = append(out, notify.Event{ID: notify.EventID(append(idParts, typ)...), Type: typ, TenantID: tenantID, Time: at, Data: d})
	}
	running := func(s tenant.BillingStatus) bool { return s == tenant.BillingActive || s == tenant.BillingTrialing }
	ongoing := func(s tenant.BillingStatus) bool {
		return running(s) || s == tenant.BillingPastDue || s == tenant.BillingSuspended
	}
	// shaped: a checkout or subscription event has told the plan. An invoice delivered first
	// makes the status active before it; the activation is announced once the plan is known,
	// so that whatever the order it names the plan bought, and is not followed by a change
	// from the default plan.
	shaped := func(b *tenant.Billing) bool { return b.SubVersion != 0 }
	newSubscription := after.SubscriptionID != "" && after.SubscriptionID != before.SubscriptionID

	switch {
	case after.Status == tenant.BillingCanceled && before.Status != tenant.BillingCanceled:
		add(notify.EventSubscriptionCanceled, map[string]any{"previous_plan": beforePlan}, tenantID, after.SubscriptionID)
	case ongoing(after.Status) && shaped(after) && (!ongoing(before.Status) || !shaped(before) || newSubscription):
		// Ongoing, not only running: a payment failure delivered before the subscription's
		// creation makes the status past due first; the subscription still began.
		add(notify.EventSubscriptionActivated, nil, tenantID, after.SubscriptionID)
	case running(after.Status) && before.Status == tenant.BillingSuspended:
		add(notify.EventTenantReactivated, nil, ev.ID)
	}
	if plan != beforePlan && shaped(before) && ongoing(before.Status) && ongoing(after.Status) && !newSubscription {
		add(notify.EventSubscriptionPlanChanged, map[string]any{"previous_plan": beforePlan}, ev.ID)
	}
	if paymentApplied {
		var invoice map[string]any
		if id := invoiceOf(ev); id != "" {
			invoice = map[string]any{"invoice_id": id}
		}
		switch ev.Type {
		case evInvoicePaid:
			add(notify.EventPaymentSucceeded, invoice, ev.ID)
		case evInvoiceFailed, evInvoiceAction:
			add(notify.EventPaymentFailed, invoice, ev.ID)
		}
	}
	return out
}

// suspended is the scheduler's notification of a suspension. A suspension ends one grace
// period, so the tenant and its end name it.
func (m *Manager) suspended(t *tenant.Tenant, now time.Time) notify.Event {
	grace := t.Billing.GraceUntil.UTC().Format(time.RFC3339)
	return notify.Event{ID: notify.EventID(t.ID, grace, notify.EventTenantSuspended), Type: notify.EventTenantSuspended,
		TenantID: t.ID, Time: now, Data: billingData(t.ID, t.Plan, t.Billing)}
}

// billingData is the payload every billing notification carries: what the tenant now has.
// Stripe identifiers are references the receiver can look up with its own key, not secrets.
// Times are strings, so that the record of a pending notification reads back the same.
func billingData(tenantID, plan string, b *tenant.Billing) map[string]any {
	d := map[string]any{"tenant_id": tenantID, "plan": plan, "status": string(b.Status)}
	if b.CustomerID != "" {
		d["customer_id"] = b.CustomerID
	}
	if b.SubscriptionID != "" {
		d["subscription_id"] = b.SubscriptionID
	}
	if !b.PeriodEnd.IsZero() {
		d["period_end"] = b.PeriodEnd.UTC().Format(time.RFC3339)
	}
	if !b.GraceUntil.IsZero() {
		d["grace_until"] = b.GraceUntil.UTC().Format(time.RFC3339)
	}
	return d
}

// publish records the notifications in the outbox, in order; the first failure stops it.
func (m *Manager) publish(ctx context.Context, evs []notify.Event) error {
	if m.Notify == nil {
		return nil
	}
	for _, ev := range evs {
		if err := m.Notify.Publish(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

func invoiceOf(ev *stripe.Event) string {
	if id, ok := ev.Data.Object["id"].(string); ok {
		return id
	}
	return ""
}
