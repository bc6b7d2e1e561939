package control

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/notify"
)

// usageQueueSize bounds the usage notifications waiting to be published: alerts are raised
// on the request path, which must not wait for the outbox.
const usageQueueSize = 1024

// usagePublishTimeout bounds the publishing of one usage notification.
const usagePublishTimeout = 5 * time.Second

// rateAlertEvery is how often a rate-limited tenant alerts at most (rate_limit.exceeded is
// at most hourly per tenant).
const rateAlertEvery = time.Hour

// usageEvents hands usage alerts to the publisher through a bounded queue, drained by one
// goroutine (run). When the queue is full the notification is dropped, counted and logged:
// a request is never held for one. Publishing is idempotent by id (tenant, period,
// threshold), so another replica's alert of the same threshold is the same event.
type usageEvents struct {
	pub     notify.Publisher
	queue   chan notify.Event
	dropped atomic.Int64
	logger  *zap.Logger
}

func newUsageEvents(pub notify.Publisher, logger *zap.Logger) *usageEvents {
	return &usageEvents{pub: pub, queue: make(chan notify.Event, usageQueueSize), logger: logger}
}

// usageEvent is the notification of an alert.
func usageEvent(a limit.Alert, now time.Time) notify.Event {
	data := map[string]any{"tenant_id": a.TenantID, "plan": a.Plan}
	if a.Limit > 0 {
		data["quota_used"], data["quota_limit"] = a.Used, a.Limit
		data["period_end"] = a.PeriodEnd.UTC().Format(time.RFC3339)
	}
	if a.Kind == limit.AlertRateLimited {
		// At most one per tenant and hour, however many replicas alert: the hour names it.
		hour := now.UTC().Truncate(rateAlertEvery).Format(time.RFC3339)
		return notify.Event{ID: notify.EventID(a.TenantID, hour, notify.EventRateLimitExceeded), Type: notify.EventRateLimitExceeded,
			TenantID: a.TenantID, Time: now, Data: data}
	}
	data["threshold"] = a.Percent
	period := a.PeriodEnd.UTC().Format(time.RFC3339)
	return notify.Event{ID: notify.EventID(a.TenantID, period, strconv.Itoa(a.Percent), notify.EventUsageThresholdReached),
		Type: notify.EventUsageThresholdReached, TenantID: a.TenantID, Time: now, Data: data}
}

// offer queues ev without waiting.
func (u *usageEvents) offer(ev notify.Event) {
	select {
	case u.queue <- ev:
	default:
		if n := u.dropped.Add(1); n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th… drop: the log stays bounded
			u.logger.Warn("usage notification dropped: the queue is full", zap.String("type", ev.Type),
				zap.String("tenant", ev.TenantID), zap.Int64("dropped_total", n))
		}
	}
}

// run publishes the queued notifications until ctx ends.
func (u *usageEvents) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-u.queue:
			pctx, cancel := context.WithTimeout(ctx, usagePublishTimeout)
			if err := u.pub.Publish(pctx, ev); err != nil {
				u.logger.Warn("publishing a usage notification", zap.String("type", ev.Type), zap.String("tenant", ev.TenantID), zap.Error(err))
			}
			cancel()
		}
	}
}
