package billing

import (
	"context"
	"time"

	"github.com/stripe/stripe-go/v76"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/errs"
)

// staleProcessing is how long an event may stay "processing" before a redelivery takes it
// over (its first handler died between recording and finishing it).
const staleProcessing = time.Minute

// eventRetention is how long processed event ids are kept: far longer than Stripe's three days
// of redelivery.
const eventRetention = 30 * 24 * time.Hour

var errInProgress = errs.E(errs.KindConflict, "event_in_progress", "Another request is processing this event; Stripe will deliver it again.")

// begin records the event as being processed. It reports false, with a nil error, for an
// event already done; concurrent deliveries of the same event get errInProgress, all but one.
// The record it returns carries the notifications of an earlier, interrupted handling.
func (m *Manager) begin(ctx context.Context, ev *stripe.Event) (bool, *EventRecord, error) {
	now := m.now()
	rec := EventRecord{ID: ev.ID, Type: string(ev.Type), Created: ev.Created, State: EventProcessing, ReceivedAt: now, StartedAt: now}
	fresh, err := m.Events.Insert(ctx, &rec)
	if err != nil {
		return false, nil, storeErr(err, "The event could not be recorded; Stripe will deliver it again.")
	}
	if fresh {
		return true, &rec, nil
	}
	old, err := m.Events.Get(ctx, ev.ID)
	if err != nil {
		return false, nil, storeErr(err, "The event could not be read; Stripe will deliver it again.")
	}
	switch {
	case old == nil:
		return false, nil, errInProgress // swept a moment ago
	case old.State == EventDone:
		return false, nil, nil
	case old.State == EventProcessing && now.Sub(old.StartedAt) < staleProcessing:
		return false, nil, errInProgress
	}
	// Its handler died, or failed and parked it: one redelivery takes over, chosen by a claim
	// on that attempt.
	won, err := m.Events.ClaimTakeover(ctx, ev.ID, old.StartedAt, now.Add(24*time.Hour))
	if err != nil {
		return false, nil, storeErr(err, "The event could not be recorded; Stripe will deliver it again.")
	}
	if !won {
		return false, nil, errInProgress
	}
	if err := m.Events.Restart(ctx, ev.ID, now); err != nil {
		return false, nil, storeErr(err, "The event could not be recorded; Stripe will deliver it again.")
	}
	return true, old, nil
}

// park keeps an event whose notifications may not all be published, so that Stripe's
// redelivery publishes them (see begin).
func (m *Manager) park(ctx context.Context, ev *stripe.Event) {
	if err := m.Events.Park(context.WithoutCancel(ctx), ev.ID); err != nil {
		m.logger().Warn("could not park a Stripe event; its redelivery waits a minute", zap.String("event", ev.ID), zap.Error(err))
	}
}

// finish marks an applied event done, naming its tenant ("" for none).
func (m *Manager) finish(ctx context.Context, ev *stripe.Event, tenantID string) error {
	if err := m.Events.Done(ctx, ev.ID, tenantID); err != nil {
		// Applied but not marked: a redelivery re-applies it, which changes nothing (the
		// event is no longer newer than the state: see applyIfNewer).
		return storeErr(err, "The event was applied but could not be recorded; Stripe will deliver it again.")
	}
	return nil
}

// SweepEvents deletes the records of events received before the retention window.
func (m *Manager) SweepEvents(ctx context.Context) (int64, error) {
	return m.Events.DeleteReceivedBefore(ctx, m.now().Add(-eventRetention))
}
