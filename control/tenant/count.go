package tenant

import (
	"context"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/store"
)

// CountByStatus counts the tenants by the status the gateway enforces (EffectiveStatus): a
// tenant suspended by billing counts as suspended. Two counts, no documents read into memory.
func (s *MongoStore) CountByStatus(ctx context.Context) (map[Status]int64, error) {
	c := s.DB.C(store.CollTenants)
	total, err := c.CountDocuments(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	suspended, err := c.CountDocuments(ctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "status", Value: StatusSuspended}},
		bson.D{{Key: "billing.status", Value: BillingSuspended}},
	}}})
	if err != nil {
		return nil, err
	}
	return map[Status]int64{StatusActive: total - suspended, StatusSuspended: suspended}, nil
}
