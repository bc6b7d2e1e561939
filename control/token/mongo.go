package token

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/saasgate/saasgate/control/store"
)

// MongoRefreshStore keeps refresh tokens in the platform collection "refresh_tokens" and the
// families' revocation markers in "revoked_families" (_id the family).
type MongoRefreshStore struct {
	DB *store.DB
}

// Init creates the collection and its indexes (and the claims collection Spend relies on).
func (s *MongoRefreshStore) Init(ctx context.Context) error {
	if err := s.DB.InitClaims(ctx); err != nil {
		return err
	}
	if err := s.DB.EnsureCollection(ctx, store.CollRevokedFamilies, store.Index{Keys: []string{"expires_at"}}); err != nil {
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

func (s *MongoRefreshStore) RevokeFamily(ctx context.Context, family string, until time.Time) error {
	return s.revoke(ctx, []string{family}, until, bson.D{{Key: "family", Value: family}})
}

func (s *MongoRefreshStore) RevokeUser(ctx context.Context, tenantID, userID string, until time.Time) error {
	filter := bson.D{{Key: "tenant_id", Value: tenantID}, {Key: "user_id", Value: userID}}
	families, err := s.DB.C(store.CollRefreshTokens).Distinct(ctx, "family", filter)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(families))
	for _, f := range families {
		if name, ok := f.(string); ok {
			names = append(names, name)
		}
	}
	return s.revoke(ctx, names, until, filter)
}

// revoke writes the families' markers (keeping the later expiry of a marker written before),
// then revokes the tokens tokenFilter selects. Of concurrent upserts of one marker, FerretDB
// may fail all but one with a duplicate key: the marker is then there, which is all we need.
func (s *MongoRefreshStore) revoke(ctx context.Context, families []string, until time.Time, tokenFilter bson.D) error {
	markers := s.DB.C(store.CollRevokedFamilies)
	for _, family := range families {
		_, err := markers.UpdateOne(ctx, bson.D{{Key: "_id", Value: family}},
			bson.D{{Key: "$max", Value: bson.D{{Key: "expires_at", Value: until}}}}, options.Update().SetUpsert(true))
		if err != nil && !store.IsDuplicateKey(err) {
			return err
		}
	}
	_, err := s.DB.C(store.CollRefreshTokens).UpdateMany(ctx, tokenFilter,
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked", Value: true}}}})
	return err
}

func (s *MongoRefreshStore) FamilyRevoked(ctx context.Context, family string, now time.Time) (bool, error) {
	n, err := s.DB.C(store.CollRevokedFamilies).CountDocuments(ctx, bson.D{
		{Key: "_id", Value: family}, {Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}}})
	return n > 0, err
}

// DeleteExpired counts the tokens it deletes, not the markers.
func (s *MongoRefreshStore) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	expired := bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: now}}}}
	if _, err := s.DB.C(store.CollRevokedFamilies).DeleteMany(ctx, expired); err != nil {
		return 0, err
	}
	res, err := s.DB.C(store.CollRefreshTokens).DeleteMany(ctx, expired)
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}
