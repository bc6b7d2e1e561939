package notify

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/saasgate/saasgate/control/errs"
)

var (
	ErrEndpointNotFound = errs.E(errs.KindNotFound, "webhook_endpoint_not_found", "No such webhook endpoint.")
	ErrDeliveryNotFound = errs.E(errs.KindNotFound, "webhook_delivery_not_found", "No such webhook delivery.")
	ErrInvalidFilter    = errs.E(errs.KindBadRequest, "invalid_webhook_filter", "Bad delivery filter (status or cursor).")
)

// ErrPayloadTooLarge refuses an event whose payload would reach MaxPayload. It is the
// publisher's bug, not a caller's mistake, so it is a plain error.
var ErrPayloadTooLarge = fmt.Errorf("notify: event payload is %d bytes or more", MaxPayload)

// rotationOverlap is how long a rotated-out secret keeps signing beside the new one.
const rotationOverlap = 24 * time.Hour

// disableAfter is how long an endpoint may fail every attempt before it is disabled.
const disableAfter = 5 * 24 * time.Hour

// Endpoint is a registered receiver. Platform endpoints belong to store.SystemTenant and hear
// every tenant's events.
type Endpoint struct {
	ID          string `bson:"_id" json:"id"`
	TenantID    string `bson:"tenant_id" json:"tenant_id"`
	URL         string `bson:"url" json:"url"`
	Description string `bson:"description,omitempty" json:"description,omitempty"`
	// Events are the subscribed types; empty subscribes to every type.
	Events  []string `bson:"events" json:"events"`
	Enabled bool     `bson:"enabled" json:"enabled"`
	// DisabledReason says why the endpoint stopped receiving (410, failing for 5 days, owner).
	DisabledReason string `bson:"disabled_reason,omitempty" json:"disabled_reason,omitempty"`
	// FailingSince is the first failed attempt of an unbroken run of failures; a success
	// clears it.
	FailingSince *time.Time `bson:"failing_since,omitempty" json:"failing_since,omitempty"`
	// Secrets sign deliveries: the current one first, then a rotated-out one until it expires.
	// Never listed, never logged.
	Secrets   []Secret  `bson:"secrets" json:"-"`
	CreatedAt time.Time `bson:"created_at" json:"created_at"`
	UpdatedAt time.Time `bson:"updated_at" json:"updated_at"`
}

// Secret is one signing secret, "whsec_" + base64 of its bytes.
type Secret struct {
	Value     string     `bson:"value"`
	ExpiresAt *time.Time `bson:"expires_at,omitempty"`
}

// Subscribed reports whether the endpoint wants events of type typ.
func (e *Endpoint) Subscribed(typ string) bool {
	return len(e.Events) == 0 || slices.Contains(e.Events, typ)
}

// signingSecrets are the secrets still valid at now.
func (e *Endpoint) signingSecrets(now time.Time) []string {
	var out []string
	for _, s := range e.Secrets {
		if s.ExpiresAt == nil || now.Before(*s.ExpiresAt) {
			out = append(out, s.Value)
		}
	}
	return out
}

// Delivery statuses.
const (
	StatusPending   = "pending"   // waiting for its next attempt, or being attempted
	StatusSucceeded = "succeeded" // a 2xx was received
	StatusFailed    = "failed"    // given up: schedule spent, 410, or endpoint gone or disabled
)

// Delivery is one event on its way to one endpoint, with its log of attempts.
type Delivery struct {
	ID         string `bson:"_id" json:"id"`
	EventID    string `bson:"event_id" json:"event_id"`
	Type       string `bson:"type" json:"type"`
	TenantID   string `bson:"tenant_id" json:"tenant_id"`
	EndpointID string `bson:"endpoint_id" json:"endpoint_id"`
	// EndpointTenant owns the endpoint (the event's tenant, or the SystemTenant for a
	// platform endpoint); the delivery log is read per owner.
	EndpointTenant string    `bson:"endpoint_tenant" json:"-"`
	Payload        string    `bson:"payload" json:"payload"`
	Status         string    `bson:"status" json:"status"`
	Attempts       []Attempt `bson:"attempts" json:"attempts"`
	NextAttemptAt  time.Time `bson:"next_attempt_at" json:"next_attempt_at"`
	LeaseOwner     string    `bson:"lease_owner" json:"-"`
	LeaseUntil     time.Time `bson:"lease_until" json:"-"`
	ResentFrom     string    `bson:"resent_from,omitempty" json:"resent_from,omitempty"`
	CreatedAt      time.Time `bson:"created_at" json:"created_at"`
}

// Attempt is one POST of a delivery.
type Attempt struct {
	At         time.Time `bson:"at" json:"at"`
	StatusCode int       `bson:"status_code,omitempty" json:"status_code,omitempty"`
	LatencyMS  int64     `bson:"latency_ms" json:"latency_ms"`
	Error      string    `bson:"error,omitempty" json:"error,omitempty"`
}

// eventRecord is an event as the outbox keeps it: the payload is built once, so that a
// repeated publish fans out the very bytes recorded first.
type eventRecord struct {
	ID        string    `bson:"_id"`
	Type      string    `bson:"type"`
	TenantID  string    `bson:"tenant_id"`
	Payload   string    `bson:"payload"`
	CreatedAt time.Time `bson:"created_at"`
}

// deliveryID derives a delivery's id from its event and endpoint, so that fanning out again
// after a crash finds the deliveries already made. The time prefix orders the delivery log.
func deliveryID(created time.Time, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("dlv_%016x%s", created.UnixNano(), hex.EncodeToString(h.Sum(nil)[:10]))
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

func newEndpointID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "ep_" + hex.EncodeToString(b[:])
}

func validEvents(events []string) error {
	for _, e := range events {
		if !slices.Contains(EventTypes, e) {
			return errs.Ef(errs.KindInvalid, "invalid_event_type", "Unknown event type %q; see the event catalogue.", e)
		}
	}
	return nil
}
