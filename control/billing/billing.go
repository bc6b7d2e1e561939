// Package billing ties tenants to Stripe subscriptions: Checkout and the customer portal for
// owners, signed webhooks that move a tenant's billing state, and a scheduler that retries
// failed payments and suspends tenants whose grace period ran out. Stripe is the source of
// truth for what a tenant has paid for; the tenant's document carries the result, so the
// gateway enforces it from its tenant cache.
package billing

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/tenant"
)

// Audit actions of billing.
const (
	ActionCheckout     = "billing.checkout"
	ActionPortal       = "billing.portal"
	ActionChange       = "billing.change" // a webhook moved the billing state
	ActionRetry        = "billing.payment_retry"
	ActionSuspend      = "billing.suspend"
	ActionCustomerMade = "billing.customer_create"
)

// DefaultRetrySchedule is when failed payments are retried, counted from the first failure.
var DefaultRetrySchedule = []time.Duration{24 * time.Hour, 72 * time.Hour, 120 * time.Hour}

var ErrDisabled = errs.E(errs.KindUnavailable, "billing_disabled", "Billing is not configured on this gateway (no Stripe secret key).")

// Change is one move of a tenant's billing state, for the audit log.
type Change struct {
	TenantID string
	Cause    string // the Stripe event type, or "scheduler"
	EventID  string // empty for the scheduler
	From, To tenant.BillingStatus
	FromPlan string
	ToPlan   string
	Billing  tenant.Billing
}

// Config is billing's configuration.
type Config struct {
	Stripe        Stripe // nil: billing disabled
	WebhookSecret string
	SuccessURL    string
	CancelURL     string
	ReturnURL     string // where the customer portal returns; default SuccessURL
	Grace         time.Duration
	RetrySchedule []time.Duration
	// ObserveWebhook hears the outcome of every webhook delivery (metrics); may be nil. The
	// type is one of the handled event types, "other" or "unverified"; the result one of
	// the Webhook* constants.
	ObserveWebhook func(eventType, result string)
}

// Manager holds the billing rules. It changes tenants only through Tenants' methods.
type Manager struct {
	Config
	Tenants *tenant.Manager
	Plans   *plan.Catalog
	Events  EventStore
	// Notify records the notifications of billing's changes (nil: none are made).
	Notify notify.Publisher
	Audit  *audit.Log
	Now    func() time.Time
	Logger *zap.Logger

	// unpublished are the scheduler's notifications whose publishing failed.
	unpublished struct {
		sync.Mutex
		events []notify.Event
	}
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

func (m *Manager) logger() *zap.Logger {
	if m.Logger == nil {
		return zap.NewNop()
	}
	return m.Logger
}

// Enabled reports whether a Stripe key is configured.
func (m *Manager) Enabled() bool { return m != nil && m.Stripe != nil }

// Init creates every collection billing uses: the Stripe event records and the claims of
// scheduler ticks and event takeovers. (Billing revisions are claimed by the tenant store.)
func (m *Manager) Init(ctx context.Context) error { return m.Events.Init(ctx) }

// storeErr wraps a storage failure in a 503, so Stripe redelivers and clients retry.
func storeErr(err error, msg string) error {
	if e, ok := errs.As(err); ok {
		return e
	}
	if errors.Is(err, tenant.ErrNotFound) {
		return tenant.ErrNotFound
	}
	return &errs.Error{Kind: errs.KindUnavailable, Code: "store_unavailable", Message: msg, Err: err}
}

// record audits and announces a change.
func (m *Manager) record(ctx context.Context, actor identity.Actor, c Change) {
	detail := map[string]any{"cause": c.Cause, "from": string(c.From), "to": string(c.To), "plan": c.ToPlan}
	if c.FromPlan != c.ToPlan {
		detail["from_plan"] = c.FromPlan
	}
	if c.EventID != "" {
		detail["event_id"] = c.EventID
	}
	if !c.Billing.GraceUntil.IsZero() && c.To == tenant.BillingPastDue {
		detail["grace_until"] = c.Billing.GraceUntil
	}
	action := ActionChange
	if c.Cause == causeScheduler {
		action = ActionSuspend
	}
	m.Audit.Record(ctx, c.TenantID, actor, action, c.TenantID, audit.OutcomeSuccess, detail)
	m.logger().Info("billing state changed", zap.String("tenant", c.TenantID), zap.String("cause", c.Cause),
		zap.String("from", string(c.From)), zap.String("to", string(c.To)), zap.String("plan", c.ToPlan))
}
