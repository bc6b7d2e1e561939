package billing

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
)

// WebhookTolerance is how old a signed webhook may be.
const WebhookTolerance = 300 * time.Second

// webhookTimeout bounds the handling of one delivery.
const webhookTimeout = 15 * time.Second

// staleProcessing is how long an event may stay "processing" before a redelivery takes it
// over (its first handler died between recording and finishing it).
const staleProcessing = time.Minute

var (
	errBadSignature = errs.E(errs.KindBadRequest, "invalid_signature", "The Stripe-Signature header is missing, malformed or stale, or does not match the body.")
	errAPIVersion   = errs.E(errs.KindBadRequest, "api_version_mismatch", "The event's API version is not the one saasgate reads ("+stripe.APIVersion+"); set it on the webhook endpoint.")
	errBadEvent     = errs.E(errs.KindBadRequest, "bad_request", "The event could not be read.")
	errInProgress   = errs.E(errs.KindConflict, "event_in_progress", "Another request is processing this event; Stripe will deliver it again.")
)

// Event types that change billing state; others are acknowledged and ignored.
const (
	evCheckoutCompleted = "checkout.session.completed"
	evCheckoutPaidLater = "checkout.session.async_payment_succeeded"
	evCheckoutNotPaid   = "checkout.session.async_payment_failed"
	evSubCreated        = "customer.subscription.created"
	evSubUpdated        = "customer.subscription.updated"
	evSubDeleted        = "customer.subscription.deleted"
	evInvoicePaid       = "invoice.paid"
	evInvoiceFailed     = "invoice.payment_failed"
	evInvoiceAction     = "invoice.payment_action_required"
)

var handled = map[stripe.EventType]bool{
	evCheckoutCompleted: true, evCheckoutPaidLater: true, evCheckoutNotPaid: true,
	evSubCreated: true, evSubUpdated: true, evSubDeleted: true,
	evInvoicePaid: true, evInvoiceFailed: true, evInvoiceAction: true,
}

// eventRecord is an event in the stripe_events collection.
type eventRecord struct {
	ID         string    `bson:"_id"`
	Type       string    `bson:"type"`
	Created    int64     `bson:"created"`
	State      string    `bson:"state"` // processing, done
	Tenant     string    `bson:"tenant,omitempty"`
	ReceivedAt time.Time `bson:"received_at"`
	StartedAt  time.Time `bson:"started_at"`
}

// Results of a webhook delivery, for ObserveWebhook.
const (
	WebhookApplied    = "applied"     // the event changed the tenant's billing state
	WebhookUnchanged  = "unchanged"   // recorded; stale, or nothing to change
	WebhookIgnored    = "ignored"     // a type billing does not handle, or no tenant of ours
	WebhookDuplicate  = "duplicate"   // applied before
	WebhookInProgress = "in_progress" // another delivery of it is being applied
	WebhookRejected   = "rejected"    // bad signature, API version or body: 400
	WebhookFailed     = "failed"      // the store failed: 5xx, Stripe delivers again
)

// HandleWebhook verifies a Stripe webhook delivery and applies its event once. It returns nil
// for an event applied now, applied before (a duplicate) or of a type billing ignores. A nil
// return means the event is recorded: Stripe may stop delivering it.
func (m *Manager) HandleWebhook(ctx context.Context, actor identity.Actor, payload []byte, signature string) error {
	if !m.Enabled() || m.WebhookSecret == "" {
		return ErrDisabled
	}
	// Stripe gives up on a delivery after a few seconds and sends it again; a slow store must
	// not hold the request (and its goroutine) much longer than that.
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	typ, result, err := m.handleWebhook(ctx, actor, payload, signature)
	if m.ObserveWebhook != nil {
		m.ObserveWebhook(typ, result)
	}
	return err
}

func (m *Manager) handleWebhook(ctx context.Context, actor identity.Actor, payload []byte, signature string) (typ, result string, err error) {
	// The signature first: nothing of an unverified body is read or stored.
	if err := webhook.ValidatePayloadWithTolerance(payload, signature, m.WebhookSecret, WebhookTolerance); err != nil {
		return "unverified", WebhookRejected, errBadSignature
	}
	ev, err := webhook.ConstructEventIgnoringTolerance(payload, signature, m.WebhookSecret)
	typ = "other"
	if handled[ev.Type] {
		typ = string(ev.Type) // a label from a fixed set, never the sender's free text
	}
	if err != nil {
		if ev.APIVersion != "" && ev.APIVersion != stripe.APIVersion {
			m.logger().Warn("Stripe event with another API version refused", zap.String("event", ev.ID), zap.String("api_version", ev.APIVersion))
			return typ, WebhookRejected, errAPIVersion
		}
		return typ, WebhookRejected, errBadEvent
	}
	if ev.ID == "" || ev.Data == nil {
		return typ, WebhookRejected, errBadEvent
	}
	if !handled[ev.Type] {
		return typ, WebhookIgnored, nil
	}
	first, err := m.begin(ctx, &ev)
	switch {
	case err == errInProgress:
		return typ, WebhookInProgress, err
	case err != nil:
		return typ, WebhookFailed, err
	case !first:
		return typ, WebhookDuplicate, nil
	}
	actor.UserID = "stripe"
	tenantID, changed, err := m.apply(ctx, actor, &ev)
	if err != nil {
		// Forget the event so that Stripe's redelivery applies it.
		if _, derr := m.DB.C(store.CollStripeEvents).DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: ev.ID}}); derr != nil {
			m.logger().Warn("could not release a failed Stripe event; its redelivery waits a minute", zap.String("event", ev.ID), zap.Error(derr))
		}
		m.logger().Error("applying a Stripe event", zap.String("event", ev.ID), zap.String("type", string(ev.Type)), zap.Error(err))
		return typ, WebhookFailed, storeErr(err, "The event could not be applied; Stripe will deliver it again.")
	}
	if _, err := m.DB.C(store.CollStripeEvents).UpdateOne(ctx, bson.D{{Key: "_id", Value: ev.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "done"}, {Key: "tenant", Value: tenantID}}}}); err != nil {
		// Applied but not marked: a redelivery re-applies it, which changes nothing (the
		// event's version is no longer newer than the state).
		return typ, WebhookFailed, storeErr(err, "The event was applied but could not be recorded; Stripe will deliver it again.")
	}
	switch {
	case tenantID == "":
		return typ, WebhookIgnored, nil
	case changed:
		return typ, WebhookApplied, nil
	}
	return typ, WebhookUnchanged, nil
}

// begin records the event as being processed. It reports false, with a nil error, for an
// event already done; concurrent deliveries of the same event get errInProgress, all but one.
func (m *Manager) begin(ctx context.Context, ev *stripe.Event) (bool, error) {
	now := m.now()
	coll := m.DB.C(store.CollStripeEvents)
	rec := eventRecord{ID: ev.ID, Type: string(ev.Type), Created: ev.Created, State: "processing", ReceivedAt: now, StartedAt: now}
	_, err := coll.InsertOne(ctx, rec)
	if err == nil {
		return true, nil
	}
	if !store.IsDuplicateKey(err) {
		return false, storeErr(err, "The event could not be recorded; Stripe will deliver it again.")
	}
	var old eventRecord
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: ev.ID}}).Decode(&old); err != nil {
		if store.IsNotFound(err) {
			return false, errInProgress // released by a failed handler a moment ago
		}
		return false, storeErr(err, "The event could not be read; Stripe will deliver it again.")
	}
	if old.State == "done" {
		return false, nil
	}
	if now.Sub(old.StartedAt) < staleProcessing {
		return false, errInProgress
	}
	// Its handler died: one redelivery takes over, chosen by a claim on that attempt.
	won, err := m.DB.Claim(ctx, "stripe-event:"+ev.ID+":"+strconv.FormatInt(old.StartedAt.UnixNano(), 10), now.Add(24*time.Hour))
	if err != nil {
		return false, storeErr(err, "The event could not be recorded; Stripe will deliver it again.")
	}
	if !won {
		return false, errInProgress
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: ev.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "started_at", Value: now}}}}); err != nil {
		return false, storeErr(err, "The event could not be recorded; Stripe will deliver it again.")
	}
	return true, nil
}

// apply moves the billing state of the event's tenant. It returns the tenant id ("" when the
// event concerns no tenant of this platform) and whether the state changed.
func (m *Manager) apply(ctx context.Context, actor identity.Actor, ev *stripe.Event) (string, bool, error) {
	var (
		named, customer string // the tenant the event's metadata names, and its customer
		edit            func(t *tenant.Tenant, b *tenant.Billing)
	)
	switch ev.Type {
	case evCheckoutCompleted, evCheckoutPaidLater, evCheckoutNotPaid:
		var s stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &s); err != nil {
			return "", false, errBadEvent
		}
		if s.Mode != stripe.CheckoutSessionModeSubscription {
			return "", false, nil
		}
		named, customer = s.Metadata["tenant_id"], customerID(s.Customer)
		if named == "" {
			named = s.ClientReferenceID
		}
		edit = m.checkoutEdit(ev.Created, &s, checkoutPaid(ev.Type, &s))
	case evSubCreated, evSubUpdated, evSubDeleted:
		var s stripe.Subscription
		if err := json.Unmarshal(ev.Data.Raw, &s); err != nil {
			return "", false, errBadEvent
		}
		if ev.Type == evSubDeleted {
			s.Status = stripe.SubscriptionStatusCanceled
		}
		named, customer = s.Metadata["tenant_id"], customerID(s.Customer)
		edit = m.subscriptionEdit(ev.ID, ev.Created, &s)
	case evInvoicePaid, evInvoiceFailed, evInvoiceAction:
		var inv stripe.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
			return "", false, errBadEvent
		}
		if inv.Subscription == nil || inv.Subscription.ID == "" {
			return "", false, nil // a one-off invoice: nothing to do with plans
		}
		if inv.SubscriptionDetails != nil {
			named = inv.SubscriptionDetails.Metadata["tenant_id"]
		}
		customer = customerID(inv.Customer)
		edit = m.invoiceEdit(ev.Created, string(ev.Type), &inv)
	}
	t, err := m.tenantOf(ctx, ev, customer, named)
	if err != nil || t == nil {
		return "", false, err
	}
	var before tenant.Billing
	var beforePlan string
	updated, changed, err := m.mutate(ctx, t.ID, func(t *tenant.Tenant, b *tenant.Billing) bool {
		before, beforePlan = *b, t.Plan
		edit(t, b)
		return !sameBilling(&before, b) || beforePlan != t.Plan
	})
	if err == tenant.ErrNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if changed && (before.Status != updated.Billing.Status || beforePlan != updated.Plan ||
		before.SubscriptionID != updated.Billing.SubscriptionID || !before.PeriodStart.Equal(updated.Billing.PeriodStart)) {
		m.record(ctx, actor, Change{TenantID: t.ID, Cause: string(ev.Type), EventID: ev.ID,
			From: before.Status, To: updated.Billing.Status, FromPlan: beforePlan, ToPlan: updated.Plan, Billing: *updated.Billing})
	}
	return t.ID, changed, nil
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

// checkoutEdit: a paid Checkout starts the subscription on the plan it was opened for; an
// unpaid one changes nothing.
func (m *Manager) checkoutEdit(at int64, s *stripe.CheckoutSession, paid bool) func(*tenant.Tenant, *tenant.Billing) {
	return func(t *tenant.Tenant, b *tenant.Billing) {
		subID := subscriptionID(s.Subscription)
		if !paid || subID == "" || at < b.SubVersion || (b.Status == tenant.BillingCanceled && b.SubscriptionID == subID) {
			return
		}
		if p, ok := m.Plans.Get(s.Metadata["plan_id"]); ok && p.Purchasable() {
			t.Plan = p.ID
		}
		b.SubscriptionID, b.SubVersion = subID, at
		if at >= b.StatusVersion {
			b.StatusVersion = at
			if b.Status != tenant.BillingTrialing {
				b.Status = tenant.BillingActive
			}
			clearPastDue(b)
		}
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
		if b.SubscriptionID != "" && b.SubscriptionID != s.ID && (at < b.SubVersion || canceled) {
			return // an older subscription of the same customer
		}
		if b.Status == tenant.BillingCanceled && b.SubscriptionID == s.ID {
			return // a canceled subscription stays canceled; a new one comes with a new id
		}
		if at >= b.SubVersion {
			b.SubscriptionID, b.SubVersion, b.CancelAtEnd = s.ID, at, s.CancelAtPeriodEnd
			b.PeriodStart, b.PeriodEnd = unixTime(s.CurrentPeriodStart), unixTime(s.CurrentPeriodEnd)
			if !canceled {
				t.Plan = m.planOf(eventID, s)
			}
		}
		if at < b.StatusVersion {
			return
		}
		switch {
		case canceled:
			b.StatusVersion, b.Status = at, tenant.BillingCanceled
			t.Plan = m.Plans.Default().ID
			clearPastDue(b)
		case s.Status == stripe.SubscriptionStatusActive || s.Status == stripe.SubscriptionStatusTrialing:
			b.StatusVersion, b.Status = at, tenant.BillingStatus(s.Status)
			clearPastDue(b)
		case s.Status == stripe.SubscriptionStatusPastDue || s.Status == stripe.SubscriptionStatusUnpaid:
			b.StatusVersion = at
			m.markPastDue(b, at, invoiceID(s.LatestInvoice))
		}
	}
}

// invoiceEdit: a paid invoice makes the subscription active; a failed one starts (or keeps)
// the grace period.
func (m *Manager) invoiceEdit(at int64, typ string, inv *stripe.Invoice) func(*tenant.Tenant, *tenant.Billing) {
	return func(t *tenant.Tenant, b *tenant.Billing) {
		subID := inv.Subscription.ID
		if b.SubscriptionID != "" && b.SubscriptionID != subID || b.Status == tenant.BillingCanceled || at < b.StatusVersion {
			return
		}
		if b.SubscriptionID == "" {
			b.SubscriptionID = subID
		}
		b.StatusVersion = at
		if typ == evInvoicePaid {
			b.Status = tenant.BillingActive
			clearPastDue(b)
			return
		}
		m.markPastDue(b, at, inv.ID)
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

// eventRetention is how long processed event ids are kept: far longer than Stripe's three days
// of redelivery.
const eventRetention = 30 * 24 * time.Hour

// SweepEvents deletes the records of events received before the retention window.
func (m *Manager) SweepEvents(ctx context.Context) (int64, error) {
	res, err := m.DB.C(store.CollStripeEvents).DeleteMany(ctx, bson.D{{Key: "received_at", Value: bson.D{{Key: "$lt", Value: m.now().Add(-eventRetention)}}}})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}
