package token

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/saasgate/saasgate/control/store"
)

// MongoRefreshStore keeps refresh tokens in the platform collection "refresh_tokens".
type MongoRefreshStore struct {
	DB *store.DB
}

// Init creates the collection and its indexes.
func (s *MongoRefreshStore) Init(ctx context.Context) error {
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

func (s *MongoRefreshStore) Spend(ctx context.Context, hash string, now time.Time) (*Refresh, error) {
	var r Refresh
	err := s.DB.C(store.CollRefreshTokens).FindOneAndUpdate(ctx,
		bson.D{
			{Key: "_id", Value: hash},
			{Key: "spent_at", Value: nil},
			{Key: "revoked", Value: false},
			{Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}},
		},
		bson.D{{Key: "$set", Value: bson.D{{Key: "spent_at", Value: now}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&r)
	if store.IsNotFound(err) {
		return nil, errRefreshNoMatch
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
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
