package billing

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/stripe/stripe-go/v76"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/tenant"
)

// apply moves the billing state of the event's tenant. It returns the tenant id ("" when the
// event concerns no tenant of this platform), whether the state changed, and the
// notifications the change announces, recorded with the event before the change is written.
func (m *Manager) apply(ctx context.Context, actor identity.Actor, ev *stripe.Event) (string, bool, []notify.Event, error) {
	var (
		named, customer string // the tenant the event's metadata names, and its customer
		edit            func(t *tenant.Tenant, b *tenant.Billing)
		paid            bool // an invoice event moved the status
	)
	switch ev.Type {
	case evCheckoutCompleted, evCheckoutPaidLater, evCheckoutNotPaid:
		var s stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &s); err != nil {
			return "", false, nil, errBadEvent
		}
		if s.Mode != stripe.CheckoutSessionModeSubscription {
			return "", false, nil, nil
		}
		named, customer = s.Metadata["tenant_id"], customerID(s.Customer)
		if named == "" {
			named = s.ClientReferenceID
		}
		edit = m.checkoutEdit(ev.Created, &s, checkoutPaid(ev.Type, &s))
	case evSubCreated, evSubUpdated, evSubDeleted:
		var s stripe.Subscription
		if err := json.Unmarshal(ev.Data.Raw, &s); err != nil {
			return "", false, nil, errBadEvent
		}
		if ev.Type == evSubDeleted {
			s.Status = stripe.SubscriptionStatusCanceled
		}
		named, customer = s.Metadata["tenant_id"], customerID(s.Customer)
		edit = m.subscriptionEdit(ev.ID, ev.Created, &s)
	case evInvoicePaid, evInvoiceFailed, evInvoiceAction:
		var inv stripe.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
			return "", false, nil, errBadEvent
		}
		if inv.Subscription == nil || inv.Subscription.ID == "" {
			return "", false, nil, nil // a one-off invoice: nothing to do with plans
		}
		if inv.SubscriptionDetails != nil {
			named = inv.SubscriptionDetails.Metadata["tenant_id"]
		}
		customer = customerID(inv.Customer)
		edit = m.invoiceEdit(ev.Created, string(ev.Type), &inv, &paid)
	}
	t, err := m.tenantOf(ctx, ev, customer, named)
	if err != nil || t == nil {
		return "", false, nil, err
	}
	var (
		before     tenant.Billing
		beforePlan string
		pending    []notify.Event
		recorded   bool // pending was written to the event's record by this call
		recordErr  error
	)
	updated, changed, err := m.Tenants.UpdateBilling(ctx, t.ID, func(t *tenant.Tenant, b *tenant.Billing) bool {
		before, beforePlan, paid = *b, t.Plan, false
		edit(t, b)
		if sameBilling(&before, b) && beforePlan == t.Plan {
			return false
		}
		pending = m.announce(ev, paid, t.ID, &before, beforePlan, b, t.Plan)
		if len(pending) > 0 || recorded {
			if recordErr = m.Events.SetPending(ctx, ev.ID, pending); recordErr != nil {
				return false
			}
			recorded = true
		}
		return true
	})
	if err == nil {
		err = recordErr
	}
	if err == tenant.ErrNotFound {
		return "", false, nil, nil
	}
	if err != nil {
		return "", false, nil, err
	}
	if !changed {
		if recorded { // an earlier attempt's change lost to a concurrent one
			if err := m.Events.SetPending(ctx, ev.ID, nil); err != nil {
				return "", false, nil, err
			}
		}
		return t.ID, false, nil, nil
	}
	if before.Status != updated.Billing.Status || beforePlan != updated.Plan ||
		before.SubscriptionID != updated.Billing.SubscriptionID || !before.PeriodStart.Equal(updated.Billing.PeriodStart) {
		m.record(ctx, actor, Change{TenantID: t.ID, Cause: string(ev.Type), EventID: ev.ID,
			From: before.Status, To: updated.Billing.Status, FromPlan: beforePlan, ToPlan: updated.Plan, Billing: *updated.Billing})
	}
	return t.ID, true, pending, nil
}

// tenantOf finds the tenant an event is about: the one whose Stripe customer the event
// carries, that customer being the one saasgate made for it and stored before its first
// Checkout. Metadata and client_reference_id are chosen by whoever makes the session (a Payment
// Link takes client_reference_id from its URL), so they never bind a tenant; an event whose
// metadata names a tenant other than its customer's is inconsistent and changes no tenant.
func (m *Manager) tenantOf(ctx context.Context, ev *stripe.Event, customer, named string) (*tenant.Tenant, error) {
	var t *tenant.Tenant
	var err error = tenant.ErrNotFound // an event without a customer is no tenant's either
	if customer != "" {
		t, err = m.Tenants.ByCustomer(ctx, customer)
	}
	if errors.Is(err, tenant.ErrNotFound) {
		m.logger().Info("Stripe event for no customer of this platform ignored", zap.String("event", ev.ID),
			zap.String("type", string(ev.Type)), zap.String("customer", customer))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if named != "" && named != t.ID {
		m.logger().Warn("Stripe event's metadata names another tenant than its customer's; ignored",
			zap.String("event", ev.ID), zap.String("tenant", t.ID), zap.String("customer", customer))
		return nil, nil
	}
	return t, nil
}

// checkoutPaid reports whether a Checkout event grants its plan: a completion paid at once (or
// owing nothing), or the later success of a delayed payment (a bank debit completes the session
// unpaid). An unpaid completion waits for that success; async_payment_failed grants nothing.
func checkoutPaid(typ stripe.EventType, s *stripe.CheckoutSession) bool {
	switch typ {
	case evCheckoutCompleted:
		return s.PaymentStatus == stripe.CheckoutSessionPaymentStatusPaid || s.PaymentStatus == stripe.CheckoutSessionPaymentStatusNoPaymentRequired
	case evCheckoutPaidLater:
		return true
	}
	return false
}

// applyIfNewer is the ordering rule of the webhooks: Stripe delivers events late and out of
// order, and a late event changes nothing. Each part of a tenant's billing state (the
// subscription's shape: its id, plan and period; and its status) keeps in *version the
// creation time, in Unix seconds, of the newest event applied to it. An event created at at
// changes that part only when it is not older: then set runs and *version becomes at. Two
// events of the same second both apply, in the order they arrive. It reports whether set ran.
func applyIfNewer(version *int64, at int64, set func()) bool {
	if at < *version {
		return false
	}
	*version = at
	set()
	return true
}

// checkoutEdit: a paid Checkout starts the subscription on the plan it was opened for; an
// unpaid one changes nothing.
func (m *Manager) checkoutEdit(at int64, s *stripe.CheckoutSession, paid bool) func(*tenant.Tenant, *tenant.Billing) {
	return func(t *tenant.Tenant, b *tenant.Billing) {
		subID := subscriptionID(s.Subscription)
		if !paid || subID == "" || (b.Status == tenant.BillingCanceled && b.SubscriptionID == subID) {
			return
		}
		applyIfNewer(&b.SubVersion, at, func() {
			if p, ok := m.Plans.Get(s.Metadata["plan_id"]); ok && p.Purchasable() {
				t.Plan = p.ID
			}
			b.SubscriptionID = subID
			applyIfNewer(&b.StatusVersion, at, func() {
				if b.Status != tenant.BillingTrialing {
					b.Status = tenant.BillingActive
				}
				clearPastDue(b)
			})
		})
	}
}

// subscriptionEdit: the subscription's plan and period follow the newest subscription event,
// its status the newest status-bearing event. A subscription not yet paid for (incomplete,
// incomplete_expired) or paused grants nothing and changes nothing.
func (m *Manager) subscriptionEdit(eventID string, at int64, s *stripe.Subscription) func(*tenant.Tenant, *tenant.Billing) {
	return func(t *tenant.Tenant, b *tenant.Billing) {
		switch s.Status {
		case stripe.SubscriptionStatusIncomplete, stripe.SubscriptionStatusIncompleteExpired, stripe.SubscriptionStatusPaused:
			return
		}
		canceled := s.Status == stripe.SubscriptionStatusCanceled
		another := b.SubscriptionID != "" && b.SubscriptionID != s.ID
		if another && canceled {
			return // the end of an older subscription of the same customer
		}
		if b.Status == tenant.BillingCanceled && b.SubscriptionID == s.ID {
			return // a canceled subscription stays canceled; a new one comes with a new id
		}
		shaped := applyIfNewer(&b.SubVersion, at, func() {
			b.SubscriptionID, b.CancelAtEnd = s.ID, s.CancelAtPeriodEnd
			b.PeriodStart, b.PeriodEnd = unixTime(s.CurrentPeriodStart), unixTime(s.CurrentPeriodEnd)
			if !canceled {
				t.Plan = m.planOf(eventID, s)
			}
		})
		if another && !shaped {
			return // an older subscription of the same customer
		}
		applyIfNewer(&b.StatusVersion, at, func() {
			switch {
			case canceled:
				b.Status = tenant.BillingCanceled
				t.Plan = m.Plans.Default().ID
				clearPastDue(b)
			case s.Status == stripe.SubscriptionStatusActive || s.Status == stripe.SubscriptionStatusTrialing:
				b.Status = tenant.BillingStatus(s.Status)
				clearPastDue(b)
			case s.Status == stripe.SubscriptionStatusPastDue || s.Status == stripe.SubscriptionStatusUnpaid:
				m.markPastDue(b, at, invoiceID(s.LatestInvoice))
			}
		})
	}
}

// invoiceEdit: a paid invoice makes the subscription active; a failed one starts (or keeps)
// the grace period.
func (m *Manager) invoiceEdit(at int64, typ string, inv *stripe.Invoice, applied *bool) func(*tenant.Tenant, *tenant.Billing) {
	return func(t *tenant.Tenant, b *tenant.Billing) {
		subID := inv.Subscription.ID
		if b.SubscriptionID != "" && b.SubscriptionID != subID || b.Status == tenant.BillingCanceled {
			return
		}
		*applied = applyIfNewer(&b.StatusVersion, at, func() {
			if b.SubscriptionID == "" {
				b.SubscriptionID = subID
			}
			if typ == evInvoicePaid {
				b.Status = tenant.BillingActive
				clearPastDue(b)
				return
			}
			m.markPastDue(b, at, inv.ID)
		})
	}
}

// markPastDue starts the grace period at the first failure; later failures (the retries) keep
// its end. A suspended tenant stays suspended until paid.
func (m *Manager) markPastDue(b *tenant.Billing, at int64, invoiceID string) {
	if b.Status != tenant.BillingPastDue && b.Status != tenant.BillingSuspended {
		failed := unixTime(at)
		b.Status, b.FailedAt, b.GraceUntil, b.Retries = tenant.BillingPastDue, failed, failed.Add(m.Grace), 0
	}
	if invoiceID != "" && invoiceID != b.InvoiceID {
		b.InvoiceID = invoiceID
	}
}

func clearPastDue(b *tenant.Billing) {
	b.FailedAt, b.GraceUntil, b.InvoiceID, b.Retries = time.Time{}, time.Time{}, "", 0
}

// planOf maps the subscription's price to a plan. A price no plan has (a plan removed from
// the configuration, a price made in the dashboard) pays for nothing saasgate sells: the tenant
// gets the default plan rather than keeping what it had, and the operator is warned.
func (m *Manager) planOf(eventID string, s *stripe.Subscription) string {
	var prices []string
	if s.Items != nil {
		for _, item := range s.Items.Data {
			if item.Price == nil {
				continue
			}
			if p, ok := m.Plans.ByPrice(item.Price.ID); ok {
				return p.ID
			}
			prices = append(prices, item.Price.ID)
		}
	}
	m.logger().Warn("Stripe subscription's price maps to no plan; the tenant gets the default plan",
		zap.String("event", eventID), zap.String("subscription", s.ID), zap.Strings("prices", prices))
	return m.Plans.Default().ID
}

func sameBilling(a, b *tenant.Billing) bool {
	return a.CustomerID == b.CustomerID && a.SubscriptionID == b.SubscriptionID && a.Status == b.Status &&
		a.PeriodStart.Equal(b.PeriodStart) && a.PeriodEnd.Equal(b.PeriodEnd) && a.CancelAtEnd == b.CancelAtEnd &&
		a.GraceUntil.Equal(b.GraceUntil) && a.FailedAt.Equal(b.FailedAt) && a.InvoiceID == b.InvoiceID &&
		a.Retries == b.Retries && a.SubVersion == b.SubVersion && a.StatusVersion == b.StatusVersion
}

func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// The ids of expandable Stripe objects ("" when absent): events carry them as bare ids.

func customerID(c *stripe.Customer) string {
	if c == nil {
		return ""
	}
	return c.ID
}

func subscriptionID(s *stripe.Subscription) string {
	if s == nil {
		return ""
	}
	return s.ID
}

func invoiceID(i *stripe.Invoice) string {
	if i == nil {
		return ""
	}
	return i.ID
}
