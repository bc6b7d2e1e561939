package audit

import (
	"context"
	"time"
)

// Sweep deletes tenantID's entries older than retention, leaving an anchor (the last swept
// seq and hash) from which Verify still checks the rest. It reports how far the anchor moved
// (0 when nothing was old enough).
func (l *Log) Sweep(ctx context.Context, tenantID string, retention time.Duration) (int64, error) {
	if retention <= 0 {
		return 0, nil
	}
	now := l.now()
	last, err := l.Store.LastBefore(ctx, tenantID, now.Add(-retention))
	if err != nil || last == nil {
		return 0, err
	}
	before, err := l.Store.Anchor(ctx, tenantID)
	if err != nil || before.Seq >= last.Seq {
		return 0, err
	}
	if err := l.Store.Sweep(ctx, Anchor{TenantID: tenantID, Seq: last.Seq, Hash: last.Hash, SweptAt: now}); err != nil {
		return 0, err
	}
	return last.Seq - before.Seq, nil
}
