package control

import (
	"context"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/tenant"
)

// EmbeddedTenantLimit is how many tenants the embedded store serves well: README's "Embedded
// store limits" gives the figures it rests on. Past it, creating a tenant and reading a tenant
// that is not cached grow slower with every tenant, and saasgate says so at start.
const EmbeddedTenantLimit = 10000

// warnEmbeddedTenants logs a WARN when the embedded store holds more than limit tenants (0:
// EmbeddedTenantLimit). A store that cannot be counted is not worth failing the start for.
func warnEmbeddedTenants(ctx context.Context, b *Backend, tenants tenant.Store, limit int, logger *zap.Logger) {
	if b.embedded == nil {
		return
	}
	if limit <= 0 {
		limit = EmbeddedTenantLimit
	}
	counts, err := tenants.CountByStatus(ctx)
	if err != nil {
		logger.Warn("could not count the tenants of the embedded store", zap.Error(err))
		return
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	if n > int64(limit) {
		logger.Warn("the embedded store holds more tenants than it serves well; move to MongoDB (mongo_uri)",
			zap.Int64("tenants", n), zap.Int("limit", limit))
	}
}
