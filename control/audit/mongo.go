package audit

import (
	"context"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

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

// List returns the newest entries of a tenant, newest first.
func (s *MongoStore) List(ctx context.Context, tenantID string, limit int) ([]Entry, error) {
	opts := options.Find().SetSort(bson.D{{Key: "time", Value: -1}}).SetLimit(int64(limit))
	cur, err := s.DB.C(store.TenantCollection(tenantID, store.SuffixAudit)).Find(ctx, bson.D{}, opts)
	if err != nil {
		return nil, err
	}
	var out []Entry
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}
