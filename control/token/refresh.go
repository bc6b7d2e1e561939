package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/saasgate/saasgate/control/errs"
)

// DefaultRefreshTTL is how long an unused refresh token stays valid.
const DefaultRefreshTTL = 30 * 24 * time.Hour

// refreshPrefix marks opaque refresh tokens so they are recognisable in a leak scan.
const refreshPrefix = "rt_"

// Refresh is the stored form of a refresh token: only its hash, never the token.
type Refresh struct {
	Hash      string     `bson:"_id"`
	Family    string     `bson:"family"`
	TenantID  string     `bson:"tenant_id"`
	UserID    string     `bson:"user_id"`
	CreatedAt time.Time  `bson:"created_at"`
	ExpiresAt time.Time  `bson:"expires_at"`
	SpentAt   *time.Time `bson:"spent_at"`
	Revoked   bool       `bson:"revoked"`
}

// RefreshStore persists refresh tokens and the revocation markers of their families.
type RefreshStore interface {
	Insert(ctx context.Context, r *Refresh) error
	// Spend marks an unspent, unrevoked, unexpired token spent and returns it. Of concurrent
	// spends of one token exactly one succeeds. A token spent before comes back with
	// errRefreshSpent; an unknown, revoked or expired one gives errRefreshNoMatch.
	Spend(ctx context.Context, hash string, now time.Time) (*Refresh, error)
	// Get returns a token's record whatever its state; errRefreshNoMatch when unknown.
	Get(ctx context.Context, hash string) (*Refresh, error)
	// RevokeFamily marks the family revoked until the given time, then revokes its tokens.
	// The marker comes first: a token inserted after the revocation is caught by the marker,
	// one inserted before it by the revocation of the tokens.
	RevokeFamily(ctx context.Context, family string, until time.Time) error
	// RevokeUser does RevokeFamily for every family of the user.
	RevokeUser(ctx context.Context, tenantID, userID string, until time.Time) error
	// FamilyRevoked reports whether the family carries an unexpired revocation marker.
	FamilyRevoked(ctx context.Context, family string, now time.Time) (bool, error)
	// DeleteExpired deletes expired tokens and markers.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
}

var (
	// ErrRefreshInvalid answers any unusable refresh token: unknown, expired, revoked.
	ErrRefreshInvalid = errs.E(errs.KindUnauthorized, "invalid_token", "The refresh token is invalid or expired.")
	// ErrRefreshReused means a spent token came back: its family is now revoked.
	ErrRefreshReused  = errs.E(errs.KindUnauthorized, "invalid_token", "The refresh token was already used; every token of its session is now revoked.")
	errRefreshNoMatch = errs.E(errs.KindUnauthorized, "invalid_token", "no usable refresh token matched")
	errRefreshSpent   = errs.E(errs.KindUnauthorized, "invalid_token", "refresh token spent before")
)

// Refresher issues and rotates refresh tokens.
type Refresher struct {
	Store RefreshStore
	TTL   time.Duration
	Now   func() time.Time
}

func (r *Refresher) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Refresher) ttl() time.Duration {
	if r.TTL <= 0 {
		return DefaultRefreshTTL
	}
	return r.TTL
}

// Issue creates a refresh token in family (a new family when empty) and returns the token.
// A rotation's new token is checked against the family's revocation marker after it is
// stored: a reuse detected while the rotation was in flight revokes it one way or the other.
func (r *Refresher) Issue(ctx context.Context, tenantID, userID, family string) (string, error) {
	rotation := family != ""
	if !rotation {
		family = RandomID(12)
	}
	raw := refreshPrefix + RandomID(32)
	now := r.now()
	rec := &Refresh{Hash: hashRefresh(raw), Family: family, TenantID: tenantID, UserID: userID,
		CreatedAt: now, ExpiresAt: now.Add(r.ttl())}
	if err := r.Store.Insert(ctx, rec); err != nil {
		return "", errs.Internal(err, "Could not store the refresh token.")
	}
	if rotation {
		if err := r.refuseRevoked(ctx, family); err != nil {
			return "", err
		}
	}
	return raw, nil
}

// refuseRevoked answers ErrRefreshInvalid when the family has been revoked, and revokes it
// again so that a token stored after the first revocation is dead too.
func (r *Refresher) refuseRevoked(ctx context.Context, family string) error {
	revoked, err := r.Store.FamilyRevoked(ctx, family, r.now())
	if err != nil {
		return errs.Internal(err, "Could not read the session.")
	}
	if !revoked {
		return nil
	}
	if err := r.RevokeFamily(ctx, family); err != nil {
		return err
	}
	return ErrRefreshInvalid
}

// Spend consumes a refresh token for rotation. A token spent before is proof that it leaked
// (or that a client retried): the whole family is revoked and ErrRefreshReused returned along
// with the record, so the caller can audit it. A token whose family was revoked while it was
// being spent is refused.
func (r *Refresher) Spend(ctx context.Context, raw string) (*Refresh, error) {
	if !strings.HasPrefix(raw, refreshPrefix) || len(raw) > 128 {
		return nil, ErrRefreshInvalid
	}
	rec, err := r.Store.Spend(ctx, hashRefresh(raw), r.now())
	switch err {
	case nil:
		if err := r.refuseRevoked(ctx, rec.Family); err != nil {
			return nil, err
		}
		return rec, nil
	case errRefreshNoMatch:
		return nil, ErrRefreshInvalid
	case errRefreshSpent:
		if err := r.RevokeFamily(ctx, rec.Family); err != nil {
			return nil, err
		}
		return rec, ErrRefreshReused
	}
	return nil, errs.Internal(err, "Could not read the refresh token.")
}

// Lookup returns the record of a refresh token without spending it; ErrRefreshInvalid when
// unknown.
func (r *Refresher) Lookup(ctx context.Context, raw string) (*Refresh, error) {
	if !strings.HasPrefix(raw, refreshPrefix) || len(raw) > 128 {
		return nil, ErrRefreshInvalid
	}
	rec, err := r.Store.Get(ctx, hashRefresh(raw))
	if err == errRefreshNoMatch {
		return nil, ErrRefreshInvalid
	}
	if err != nil {
		return nil, errs.Internal(err, "Could not read the refresh token.")
	}
	return rec, nil
}

// RevokeFamily ends one session. Its marker lasts as long as any token of the family could.
func (r *Refresher) RevokeFamily(ctx context.Context, family string) error {
	if err := r.Store.RevokeFamily(ctx, family, r.now().Add(r.ttl())); err != nil {
		return errs.Internal(err, "Could not revoke the session.")
	}
	return nil
}

// RevokeUser ends every session of a user.
func (r *Refresher) RevokeUser(ctx context.Context, tenantID, userID string) error {
	if err := r.Store.RevokeUser(ctx, tenantID, userID, r.now().Add(r.ttl())); err != nil {
		return errs.Internal(err, "Could not revoke the sessions.")
	}
	return nil
}

// Sweep deletes expired tokens and markers (FerretDB has no TTL indexes).
func (r *Refresher) Sweep(ctx context.Context) (int64, error) {
	return r.Store.DeleteExpired(ctx, r.now())
}

// hashRefresh is SHA-256: refresh tokens carry 256 random bits, so a fast hash is enough
// and lookups by hash need no constant-time compare.
func hashRefresh(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}
