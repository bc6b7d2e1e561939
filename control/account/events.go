package account

import (
	"context"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/notify"
)

// The notifications of accounts (SPEC §7): member.joined when an account is made in a tenant,
// the owner's own signup that creates the tenant included (a platform endpoint learns of the
// new tenant's first member; the tenant has no endpoints yet), and member.role_changed.
//
// Both changes are made by the caller's request and cannot be repeated by it (a second signup
// is a conflict, the same role again changes nothing): a failure to publish is logged, not
// answered, since the change is stored and the caller could not make it again.

// publishMember records a member notification; ids name the change: the user (made once) for
// a join, the user and the roles revision the change claimed for a role change.
func (m *Manager) publishMember(ctx context.Context, typ, tenantID string, data map[string]any, idParts ...string) {
	if m.Notify == nil {
		return
	}
	ev := notify.Event{ID: notify.EventID(append([]string{tenantID}, append(idParts, typ)...)...), Type: typ,
		TenantID: tenantID, Time: m.now(), Data: data}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := m.Notify.Publish(ctx, ev); err != nil {
		m.logger().Error("publishing a member notification; it is lost", zap.String("type", typ),
			zap.String("tenant", tenantID), zap.Error(err))
	}
}

// publishTimeout bounds a member notification's publishing, which the request waits for.
const publishTimeout = 5 * time.Second

func revision(rev int64) string { return strconv.FormatInt(rev, 10) }
