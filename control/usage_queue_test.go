package control

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/saasgate/saasgate/control/notify"
)

// The request path never waits for the outbox: with nobody draining the queue, offers beyond
// its size return at once, are counted, and are logged with a bounded number of lines.
func TestUsageEvents_FullQueueDropsCountsAndLogs(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	u := newUsageEvents(nil, zap.New(core))
	for range usageQueueSize + 100 {
		u.offer(notify.Event{Type: notify.EventUsageThresholdReached, TenantID: "acme"})
	}
	if n := u.dropped.Load(); n != 100 {
		t.Errorf("%d dropped, want 100", n)
	}
	if n := logs.Len(); n == 0 || n > 8 {
		t.Errorf("%d drop log lines for 100 drops, want 1..8", n)
	}
}
