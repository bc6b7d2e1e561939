package billing

import (
	"context"
	"time"

	"github.com/stripe/stripe-go/v76"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
)

const causeScheduler = "scheduler"

// payTimeout bounds one payment retry's call to Stripe, once the attempt is recorded.
const payTimeout = time.Minute

// schedulerActor is who the audit log names for the scheduler's actions.
var schedulerActor = identity.Actor{UserID: "billing-scheduler"}

// TickReport says what one scheduler pass did.
type TickReport struct {
	Retried   []string // tenants whose open invoice was sent to Stripe's pay call
	Suspended []string // tenants suspended because their grace period ended
}

// nextRetry is when b's open invoice is due for its next payment retry.
func (m *Manager) nextRetry(b *tenant.Billing) (time.Time, bool) {
	schedule := m.RetrySchedule
	if schedule == nil {
		schedule = DefaultRetrySchedule
	}
	if b == nil || b.Status != tenant.BillingPastDue || b.InvoiceID == "" || b.Retries >= len(schedule) {
		return time.Time{}, false
	}
	return b.FailedAt.Add(schedule[b.Retries]), true
}

// Tick makes one pass over the past-due tenants at the manager's clock: it suspends those whose
// grace period ended and retries the payments that are due. Its state lives in the tenants'
// documents, so a restarted or different replica carries on where the last pass stopped.
func (m *Manager) Tick(ctx context.Context) (TickReport, error) {
	var rep TickReport
	if !m.Enabled() {
		return rep, nil
	}
	m.republish(ctx)
	due, err := m.Tenants.ListByBillingStatus(ctx, tenant.BillingPastDue)
	if err != nil {
		return rep, err
	}
	for _, t := range due {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		now := m.now()
		if !now.Before(t.Billing.GraceUntil) {
			suspended, err := m.suspend(ctx, t.ID, now)
			if err != nil {
				m.logger().Error("suspending a past-due tenant", zap.String("tenant", t.ID), zap.Error(err))
				continue
			}
			if suspended {
				rep.Suspended = append(rep.Suspended, t.ID)
			}
			continue
		}
		if next, ok := m.nextRetry(t.Billing); ok && !now.Before(next) {
			retried, err := m.retry(ctx, t.ID, now)
			if err != nil {
				m.logger().Error("retrying a payment", zap.String("tenant", t.ID), zap.Error(err))
				continue
			}
			if retried {
				rep.Retried = append(rep.Retried, t.ID)
			}
		}
	}
	return rep, nil
}

func (m *Manager) suspend(ctx context.Context, id string, now time.Time) (bool, error) {
	var before tenant.Billing
	updated, changed, err := m.Tenants.UpdateBilling(ctx, id, func(_ *tenant.Tenant, b *tenant.Billing) bool {
		before = *b
		if b.Status != tenant.BillingPastDue || now.Before(b.GraceUntil) {
			return false // paid, or the grace changed, since the list was read
		}
		b.Status = tenant.BillingSuspended
		return true
	})
	if err != nil || !changed {
		return false, err
	}
	m.record(ctx, schedulerActor, Change{TenantID: id, Cause: causeScheduler, From: before.Status, To: updated.Billing.Status,
		FromPlan: updated.Plan, ToPlan: updated.Plan, Billing: *updated.Billing})
	if m.Notify != nil {
		ev := m.suspended(updated, now)
		if err := m.Notify.Publish(ctx, ev); err != nil {
			m.logger().Error("publishing a suspension; the next tick tries again", zap.String("tenant", id), zap.Error(err))
			m.unpublished.Lock()
			m.unpublished.events = append(m.unpublished.events, ev)
			m.unpublished.Unlock()
		}
	}
	return true, nil
}

// republish tries again the suspensions whose publishing failed. They are held in memory:
// a replica that dies first loses them (the suspension itself is stored).
func (m *Manager) republish(ctx context.Context) {
	m.unpublished.Lock()
	evs := m.unpublished.events
	m.unpublished.events = nil
	m.unpublished.Unlock()
	for i, ev := range evs {
		if err := m.Notify.Publish(ctx, ev); err != nil {
			m.logger().Error("publishing a suspension; the next tick tries again", zap.String("tenant", ev.TenantID), zap.Error(err))
			m.unpublished.Lock()
			m.unpublished.events = append(m.unpublished.events, evs[i:]...)
			m.unpublished.Unlock()
			return
		}
	}
}

// retry records the attempt first, then calls Stripe: a crash in between loses that attempt
// rather than charging twice. The outcome arrives as invoice.paid or invoice.payment_failed.
func (m *Manager) retry(ctx context.Context, id string, now time.Time) (bool, error) {
	var invoice string
	var attempt int
	_, changed, err := m.Tenants.UpdateBilling(ctx, id, func(_ *tenant.Tenant, b *tenant.Billing) bool {
		next, ok := m.nextRetry(b)
		if !ok || now.Before(next) {
			return false
		}
		b.Retries++
		invoice, attempt = b.InvoiceID, b.Retries
		return true
	})
	if err != nil || !changed {
		return false, err
	}
	detail := map[string]any{"invoice": invoice, "attempt": attempt}
	outcome := audit.OutcomeSuccess
	// The attempt is recorded: make it even if the tick's deadline (or shutdown) comes first,
	// else the attempt is spent without Stripe being asked. The call is bounded on its own.
	payCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), payTimeout)
	defer cancel()
	if err := m.Stripe.PayInvoice(payCtx, invoice, attempt); err != nil {
		outcome = audit.OutcomeFailure
		if se, ok := err.(*stripe.Error); ok {
			detail["stripe_code"] = string(se.Code)
			detail["decline_code"] = string(se.DeclineCode)
		}
		m.logger().Info("payment retry failed", zap.String("tenant", id), zap.String("invoice", invoice),
			zap.Int("attempt", attempt), zap.Error(err))
	}
	m.Audit.Record(ctx, id, schedulerActor, ActionRetry, invoice, outcome, detail)
	return true, nil
}

// RunScheduler ticks every interval until ctx ends. Replicas tick independently; each tick
// slot is claimed in the store, so one replica at a time does a slot's work.
func (m *Manager) RunScheduler(ctx context.Context, interval time.Duration) {
	if !m.Enabled() {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		slot := m.now().Truncate(interval)
		won, err := m.Events.ClaimTick(ctx, slot, slot.Add(2*interval))
		if err != nil {
			m.logger().Warn("billing scheduler: claiming a tick", zap.Error(err))
			continue
		}
		if !won {
			continue
		}
		tickCtx, cancel := context.WithTimeout(ctx, interval/2)
		rep, err := m.Tick(tickCtx)
		cancel()
		if err != nil {
			m.logger().Warn("billing scheduler tick", zap.Error(err))
		}
		if len(rep.Retried)+len(rep.Suspended) > 0 {
			m.logger().Info("billing scheduler tick", zap.Strings("retried", rep.Retried), zap.Strings("suspended", rep.Suspended))
		}
	}
}
