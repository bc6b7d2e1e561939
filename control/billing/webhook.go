package billing

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/identity"
)

// A webhook delivery goes through three steps, one file each: verify.go checks its signature
// and reads the event, record.go records the event so that it is applied once, and apply.go
// moves the tenant's billing state, by the ordering rule of applyIfNewer; events.go names
// the notifications of the change, published before the delivery is answered.

// webhookTimeout bounds the handling of one delivery.
const webhookTimeout = 15 * time.Second

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
	ev, typ, err := m.verify(payload, signature)
	if err != nil {
		return typ, WebhookRejected, err
	}
	if !handled[ev.Type] {
		return typ, WebhookIgnored, nil
	}
	first, rec, err := m.begin(ctx, ev)
	switch {
	case err == errInProgress:
		return typ, WebhookInProgress, err
	case err != nil:
		return typ, WebhookFailed, err
	case !first:
		return typ, WebhookDuplicate, nil
	}
	actor.UserID = "stripe"
	tenantID, changed, pending, err := m.apply(ctx, actor, ev)
	if err != nil {
		m.park(ctx, ev)
		m.logger().Error("applying a Stripe event", zap.String("event", ev.ID), zap.String("type", string(ev.Type)), zap.Error(err))
		return typ, WebhookFailed, storeErr(err, "The event could not be applied; Stripe will deliver it again.")
	}
	if !changed {
		pending = rec.Pending // an interrupted handling's change, announced again
	}
	if err := m.publish(ctx, pending); err != nil {
		m.park(ctx, ev)
		m.logger().Error("publishing a Stripe event's notifications", zap.String("event", ev.ID), zap.String("type", string(ev.Type)), zap.Error(err))
		// The outbox is in the store: its failure is the store's, 503 store_unavailable.
		return typ, WebhookFailed, storeErr(err, "The event's notifications could not be recorded; Stripe will deliver it again.")
	}
	if err := m.finish(ctx, ev, tenantID); err != nil {
		return typ, WebhookFailed, err
	}
	switch {
	case tenantID == "":
		return typ, WebhookIgnored, nil
	case changed:
		return typ, WebhookApplied, nil
	}
	return typ, WebhookUnchanged, nil
}
