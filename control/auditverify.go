package control

import (
	"context"
	"fmt"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/store"
)

// VerifyAudit checks tenantID's audit chain over an open backend, without building a Service:
// it is what `saasgate audit verify` runs beside (or instead of) a running gateway. The tenant
// layout is read from the database (fixed at install, so the data says which it is).
func VerifyAudit(ctx context.Context, b *Backend, tenantID string) (*audit.Verification, error) {
	if !store.ValidTenantID(tenantID) {
		return nil, fmt.Errorf("%q is not a tenant id", tenantID)
	}
	layout, _, err := b.DB.DetectLayout(ctx)
	if err != nil {
		return nil, err
	}
	log := &audit.Log{Store: &audit.MongoStore{DB: b.DB, Layout: layout}}
	return log.Verify(ctx, tenantID)
}
