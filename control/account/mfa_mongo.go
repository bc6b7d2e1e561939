package account

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/bson"
)

func (s *MongoStore) SetMFA(ctx context.Context, tenantID, userID string, mfa *MFA) error {
	update := bson.D{{Key: "$unset", Value: bson.D{{Key: "mfa", Value: ""}}}}
	if mfa != nil {
		update = bson.D{{Key: "$set", Value: bson.D{{Key: "mfa", Value: mfa}}}}
	}
	res, err := s.users(tenantID).UpdateOne(ctx, bson.D{{Key: "_id", Value: userID}}, update)
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		return ErrUserNotFound
	}
	return nil
}

func (s *MongoStore) ClaimOnce(ctx context.Context, key string, expiresAt time.Time) (bool, error) {
	return s.DB.Claim(ctx, key, expiresAt)
}
