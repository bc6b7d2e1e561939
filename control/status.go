package control

import (
	"context"

	"github.com/saasgate/saasgate/control/tenant"
)

// TenantsByStatus counts the platform's tenants by the status the gateway enforces, from the
// store: the tenant cache would answer only for this replica, only while it holds every tenant,
// and not for a tenant another replica just changed (invalidated here, unread until its next
// request).
func (s *Service) TenantsByStatus(ctx context.Context) (map[tenant.Status]int64, error) {
	return s.Tenants.Store.CountByStatus(ctx)
}
