package token

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/store"
)

// MongoRefreshStore keeps refresh tokens in the platform collection "refresh_tokens".
type MongoRefreshStore struct {
	DB *store.DB
}

// Init creates the collection and its indexes (and the claims collection Spend relies on).
func (s *MongoRefreshStore) Init(ctx context.Context) error {
	if err := s.DB.InitClaims(ctx); err != nil {
		return err
	}
	return s.DB.EnsureCollection(ctx, store.CollRefreshTokens,
		store.Index{Keys: []string{"family"}},
		store.Index{Keys: []string{"tenant_id", "user_id"}},
		store.Index{Keys: []string{"expires_at"}},
	)
}

func (s *MongoRefreshStore) Insert(ctx context.Context, r *Refresh) error {
	_, err := s.DB.C(store.CollRefreshTokens).InsertOne(ctx, r)
	return err
}

// Spend claims the token through store.Claim, so that of concurrent spends exactly one wins,
// then records the spend time.
func (s *MongoRefreshStore) Spend(ctx context.Context, hash string, now time.Time) (*Refresh, error) {
	r, err := s.Get(ctx, hash)
	if err != nil {
		return nil, err
	}
	if r.Revoked || !r.ExpiresAt.After(now) {
		return nil, errRefreshNoMatch
	}
	if r.SpentAt != nil {
		return r, errRefreshSpent
	}
	won, err := s.DB.Claim(ctx, "refresh:"+hash, r.ExpiresAt)
	if err != nil {
		return nil, err
	}
	if !won {
		return r, errRefreshSpent
	}
	_, err = s.DB.C(store.CollRefreshTokens).UpdateOne(ctx, bson.D{{Key: "_id", Value: hash}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "spent_at", Value: now}}}})
	if err != nil {
		return nil, err
	}
	r.SpentAt = &now
	return r, nil
}

func (s *MongoRefreshStore) Get(ctx context.Context, hash string) (*Refresh, error) {
	var r Refresh
	err := s.DB.C(store.CollRefreshTokens).FindOne(ctx, bson.D{{Key: "_id", Value: hash}}).Decode(&r)
	if store.IsNotFound(err) {
		return nil, errRefreshNoMatch
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *MongoRefreshStore) RevokeFamily(ctx context.Context, family string) error {
	_, err := s.DB.C(store.CollRefreshTokens).UpdateMany(ctx,
		bson.D{{Key: "family", Value: family}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked", Value: true}}}})
	return err
}

func (s *MongoRefreshStore) RevokeUser(ctx context.Context, tenantID, userID string) error {
	_, err := s.DB.C(store.CollRefreshTokens).UpdateMany(ctx,
		bson.D{{Key: "tenant_id", Value: tenantID}, {Key: "user_id", Value: userID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked", Value: true}}}})
	return err
}

func (s *MongoRefreshStore) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.DB.C(store.CollRefreshTokens).DeleteMany(ctx,
		bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now}}}})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}
