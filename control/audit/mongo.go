package audit

import (
	"context"

	"github.com/saasgate/saasgate/control/store"
)

// MongoStore keeps each tenant's entries in t_<tenant>_audit.
type MongoStore struct {
	DB *store.DB
}

// CreateTenantCollections creates the tenant's audit collection and its indexes.
func (s *MongoStore) CreateTenantCollections(ctx context.Context, tenantID string) error {
	return s.DB.EnsureCollection(ctx, store.TenantCollection(tenantID, store.SuffixAudit),
		store.Index{Keys: []string{"time"}},
		store.Index{Keys: []string{"actor_id", "time"}},
	)
}

// Append inserts one entry.
func (s *MongoStore) Append(ctx context.Context, e *Entry) error {
	_, err := s.DB.C(store.TenantCollection(e.TenantID, store.SuffixAudit)).InsertOne(ctx, e)
	return err
}
