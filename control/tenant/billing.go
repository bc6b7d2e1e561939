package tenant

import "time"

// BillingStatus is where a tenant stands with its payments. The empty status means the tenant
// never subscribed (it is on the default plan).
type BillingStatus string

const (
	BillingNone      BillingStatus = ""
	BillingActive    BillingStatus = "active"
	BillingTrialing  BillingStatus = "trialing"
	BillingPastDue   BillingStatus = "past_due"  // a payment failed; the plan is kept until GraceUntil
	BillingSuspended BillingStatus = "suspended" // grace over and still unpaid: the gateway answers 402
	BillingCanceled  BillingStatus = "canceled"  // back on the default plan
)

// Billing is a tenant's subscription as the webhooks and the retry scheduler last left it. It
// lives in the tenant's document so that the gateway reads it with the tenant, in one load, and
// so that one write changes plan and billing state together.
type Billing struct {
	// Rev counts writes; a writer claims Rev+1 before writing (see Manager.UpdateBilling), so that
	// concurrent webhooks on different replicas cannot interleave their read-modify-writes.
	Rev            int64         `bson:"rev" json:"-"`
	CustomerID     string        `bson:"customer_id,omitempty" json:"customer_id,omitempty"`
	SubscriptionID string        `bson:"subscription_id,omitempty" json:"subscription_id,omitempty"`
	Status         BillingStatus `bson:"status,omitempty" json:"status"`
	// PeriodStart and PeriodEnd are the subscription's current period; monthly quotas are
	// counted in months anchored at PeriodStart.
	PeriodStart time.Time `bson:"period_start,omitempty" json:"current_period_start,omitempty"`
	PeriodEnd   time.Time `bson:"period_end,omitempty" json:"current_period_end,omitempty"`
	CancelAtEnd bool      `bson:"cancel_at_end,omitempty" json:"cancel_at_period_end,omitempty"`
	// GraceUntil is when a past-due tenant is suspended if still unpaid.
	GraceUntil time.Time `bson:"grace_until,omitempty" json:"grace_until,omitempty"`
	// FailedAt is when the payment first failed; retries are scheduled from it.
	FailedAt time.Time `bson:"failed_at,omitempty" json:"-"`
	// InvoiceID is the open invoice the scheduler retries.
	InvoiceID string `bson:"invoice_id,omitempty" json:"-"`
	// Retries counts the payment retries made for InvoiceID.
	Retries int `bson:"retries,omitempty" json:"payment_retries,omitempty"`
	// SubVersion and StatusVersion are the creation times (Unix seconds) of the newest Stripe
	// events applied to the subscription's shape (plan, period) and to its status: an older
	// event, delivered late, changes nothing (billing's applyIfNewer).
	SubVersion    int64 `bson:"sub_version,omitempty" json:"-"`
	StatusVersion int64 `bson:"status_version,omitempty" json:"-"`
}

// PastDue reports whether a payment failed and the grace period runs.
func (b *Billing) PastDue() bool { return b != nil && b.Status == BillingPastDue }

// Suspended reports whether billing has suspended the tenant.
func (b *Billing) Suspended() bool { return b != nil && b.Status == BillingSuspended }
