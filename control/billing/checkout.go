package billing

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
)

var (
	errUnknownPlan     = errs.E(errs.KindInvalid, "unknown_plan", "No such plan in the catalog.")
	errNotPurchasable  = errs.E(errs.KindInvalid, "plan_not_purchasable", "This plan has no Stripe price: it cannot be bought.")
	errSubscribed      = errs.E(errs.KindConflict, "subscription_exists", "The tenant already has a subscription; change or cancel it in the customer portal (POST /subscriptions/portal).")
	errNoCustomer      = errs.E(errs.KindConflict, "no_subscription", "The tenant has no Stripe customer yet; start a subscription first (POST /subscriptions).")
	errStripeFailed    = errs.E(errs.KindUnavailable, "stripe_unavailable", "Stripe did not answer as expected; try again.")
	errTenantForbidden = errs.E(errs.KindForbidden, "forbidden", "Only the tenant's owner or a platform admin may manage its subscription.")
)

// Checkout starts a subscription to planID for tenantID: the tenant's Stripe customer (made
// once) and a Checkout Session in subscription mode for the plan's price.
func (m *Manager) Checkout(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, planID string) (*CheckoutSession, error) {
	if !m.Enabled() {
		return nil, ErrDisabled
	}
	if !p.CanAccessTenant(tenantID, identity.RoleOwner) {
		return nil, errTenantForbidden
	}
	pl, ok := m.Plans.Get(planID)
	if !ok {
		return nil, errUnknownPlan
	}
	if !pl.Purchasable() {
		return nil, errNotPurchasable
	}
	t, err := m.Tenants.Lookup(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if b := t.Billing; b != nil && b.SubscriptionID != "" {
		switch b.Status {
		case tenant.BillingActive, tenant.BillingTrialing, tenant.BillingPastDue, tenant.BillingSuspended:
			return nil, errSubscribed
		}
	}
	customer, err := m.customer(ctx, actor, t)
	if err != nil {
		return nil, err
	}
	sess, err := m.Stripe.CreateCheckout(ctx, CheckoutRequest{
		TenantID: tenantID, PlanID: pl.ID, CustomerID: customer, PriceID: pl.StripePrice,
		SuccessURL: m.SuccessURL, CancelURL: m.CancelURL,
	})
	if err != nil {
		m.logger().Error("creating a Stripe Checkout Session", zap.String("tenant", tenantID), zap.Error(err))
		return nil, errStripeFailed
	}
	m.Audit.Record(ctx, tenantID, actor, ActionCheckout, sess.ID, audit.OutcomeSuccess, map[string]any{"plan": pl.ID})
	return sess, nil
}

// customer returns the tenant's Stripe customer, creating it the first time. Two concurrent
// first calls both ask Stripe, with the same idempotency key (so real Stripe returns one
// customer); the first stored id wins and both use it.
func (m *Manager) customer(ctx context.Context, actor identity.Actor, t *tenant.Tenant) (string, error) {
	if t.Billing != nil && t.Billing.CustomerID != "" {
		return t.Billing.CustomerID, nil
	}
	id, err := m.Stripe.CreateCustomer(ctx, t.ID, t.Name)
	if err != nil {
		m.logger().Error("creating a Stripe customer", zap.String("tenant", t.ID), zap.Error(err))
		return "", errStripeFailed
	}
	updated, changed, err := m.Tenants.UpdateBilling(ctx, t.ID, func(_ *tenant.Tenant, b *tenant.Billing) bool {
		if b.CustomerID != "" {
			return false
		}
		b.CustomerID = id
		return true
	})
	if err != nil {
		return "", storeErr(err, "Could not store the tenant's Stripe customer.")
	}
	if changed {
		m.Audit.Record(ctx, t.ID, actor, ActionCustomerMade, id, audit.OutcomeSuccess, nil)
	}
	return updated.Billing.CustomerID, nil
}

// Subscription is GET /subscriptions/current.
type Subscription struct {
	TenantID string               `json:"tenant_id"`
	Plan     string               `json:"plan"`
	Status   tenant.BillingStatus `json:"status"` // "none" before any subscription
	// CustomerID is the tenant's Stripe customer, null before its first Checkout: the owner
	// matches it with what Stripe's receipts and dashboard show.
	CustomerID     *string    `json:"customer_id"`
	SubscriptionID string     `json:"subscription_id,omitempty"`
	PeriodStart    *time.Time `json:"current_period_start,omitempty"`
	PeriodEnd      *time.Time `json:"current_period_end,omitempty"`
	CancelAtEnd    bool       `json:"cancel_at_period_end"`
	GraceUntil     *time.Time `json:"grace_until,omitempty"`
	PaymentRetries int        `json:"payment_retries,omitempty"`
	NextRetryAt    *time.Time `json:"next_payment_retry_at,omitempty"`
}

// Current returns the tenant's subscription as billing last recorded it.
func (m *Manager) Current(ctx context.Context, p identity.Principal, tenantID string) (*Subscription, error) {
	if !m.Enabled() {
		return nil, ErrDisabled
	}
	if !p.CanAccessTenant(tenantID, identity.RoleOwner) {
		return nil, errTenantForbidden
	}
	t, err := m.Tenants.Lookup(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	s := &Subscription{TenantID: t.ID, Plan: t.EffectivePlan(), Status: "none"}
	if b := t.Billing; b != nil {
		if b.Status != tenant.BillingNone {
			s.Status = b.Status
		}
		if b.CustomerID != "" {
			s.CustomerID = &b.CustomerID
		}
		s.SubscriptionID, s.CancelAtEnd, s.PaymentRetries = b.SubscriptionID, b.CancelAtEnd, b.Retries
		s.PeriodStart, s.PeriodEnd = timePtr(b.PeriodStart), timePtr(b.PeriodEnd)
		if b.Status == tenant.BillingPastDue || b.Status == tenant.BillingSuspended {
			s.GraceUntil = timePtr(b.GraceUntil)
		}
		if next, ok := m.nextRetry(b); ok {
			s.NextRetryAt = &next
		}
	}
	return s, nil
}

// Portal returns a Stripe customer portal URL for the tenant, where its owner changes plan,
// card or cancels.
func (m *Manager) Portal(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID string) (string, error) {
	if !m.Enabled() {
		return "", ErrDisabled
	}
	if !p.CanAccessTenant(tenantID, identity.RoleOwner) {
		return "", errTenantForbidden
	}
	t, err := m.Tenants.Lookup(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if t.Billing == nil || t.Billing.CustomerID == "" {
		return "", errNoCustomer
	}
	returnURL := m.ReturnURL
	if returnURL == "" {
		// success_url without its query: Stripe fills {CHECKOUT_SESSION_ID} for Checkout only.
		returnURL, _, _ = strings.Cut(m.SuccessURL, "?")
	}
	url, err := m.Stripe.CreatePortal(ctx, t.Billing.CustomerID, returnURL)
	if err != nil {
		m.logger().Error("creating a Stripe portal session", zap.String("tenant", tenantID), zap.Error(err))
		return "", errStripeFailed
	}
	m.Audit.Record(ctx, tenantID, actor, ActionPortal, t.Billing.CustomerID, audit.OutcomeSuccess, nil)
	return url, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
