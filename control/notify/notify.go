// Package notify tells tenants' and the operator's systems what happened, reliably: events
// are written to a durable outbox in MongoDB by the code path that makes the change, and
// workers on every replica deliver them to the registered webhook endpoints, signed as the
// Standard Webhooks spec says, with retries.
//
// This file is the seam the rest of the control plane codes against: the event model, the
// Publisher the domain packages call, the configuration and the metrics observer.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// The event types, the catalogue of SPEC §7.
const (
	EventSubscriptionActivated   = "subscription.activated"
	EventSubscriptionPlanChanged = "subscription.plan_changed"
	EventSubscriptionCanceled    = "subscription.canceled"
	EventPaymentFailed           = "payment.failed"
	EventPaymentSucceeded        = "payment.succeeded"
	EventTenantSuspended         = "tenant.suspended"
	EventTenantReactivated       = "tenant.reactivated"
	EventUsageThresholdReached   = "usage.threshold_reached"
	EventRateLimitExceeded       = "rate_limit.exceeded"
	EventMemberJoined            = "member.joined"
	EventMemberRoleChanged       = "member.role_changed"
)

// EventTypes lists every event type, in catalogue order.
var EventTypes = []string{
	EventSubscriptionActivated, EventSubscriptionPlanChanged, EventSubscriptionCanceled,
	EventPaymentFailed, EventPaymentSucceeded, EventTenantSuspended, EventTenantReactivated,
	EventUsageThresholdReached, EventRateLimitExceeded, EventMemberJoined, EventMemberRoleChanged,
}

// Event is one thing that happened to a tenant. Its ID derives from the change it reports
// (EventID), so that a change repeated after a crash publishes the same event again, and the
// outbox keeps one.
type Event struct {
	ID       string
	Type     string
	TenantID string
	Time     time.Time
	// Data is the payload's `data` member: JSON-encodable values only, and small (the whole
	// payload stays under MaxPayload).
	Data map[string]any
}

// Publisher records events in the outbox. Publish is idempotent by Event.ID: publishing an
// id already recorded changes nothing and is not an error. A failure is returned so that the
// caller can fail the change's retry path (a Stripe webhook answered 5xx is delivered again).
type Publisher interface {
	Publish(ctx context.Context, ev Event) error
}

// EventID derives an event id from what identifies the change, e.g. the Stripe event id and
// the event type, or the tenant, the quota period and the threshold.
func EventID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "evt_" + hex.EncodeToString(sum[:12])
}

// MaxPayload bounds a delivery's body ({type, timestamp, data}).
const MaxPayload = 20 << 10

// Config is the `webhooks` block of the saas option.
type Config struct {
	// RetrySchedule is when each attempt is made, counted from the previous one: the first
	// entry is the first attempt (0: at once). Each is jittered by ±10 %.
	RetrySchedule []time.Duration
	// Timeout bounds one attempt: connecting, sending and reading the answer.
	Timeout time.Duration
	// AllowPrivate lists the CIDR ranges the SSRF guard lets through, e.g. a receiver on the
	// operator's own network (tests use 127.0.0.0/8).
	AllowPrivate []string
}

// The defaults of Config.
var (
	DefaultRetrySchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
)

const DefaultTimeout = 15 * time.Second

// Delivery results, the values of the deliveries metric's result label.
const (
	ResultSuccess  = "success"
	ResultFailure  = "failure"
	ResultDisabled = "disabled"
)

// Observer hears what the metrics count. Implementations must be cheap and must not block;
// labels are bounded: event types and results only, never a tenant, endpoint or URL.
type Observer interface {
	// Emitted is called once per event recorded in the outbox (not for a repeated id).
	Emitted(eventType string)
	// Attempted is called once per delivery attempt with its result and latency.
	Attempted(result string, latency time.Duration)
	// OutboxDepth reports the deliveries waiting (pending or due for retry), sampled by the
	// workers.
	OutboxDepth(n int64)
}
