package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
)

// Store persists users, the directory, invitations and login back-off.
type Store interface {
	InsertUser(ctx context.Context, tenantID string, u *User) error // ErrEmailTaken on duplicate
	UserByEmail(ctx context.Context, tenantID, email string) (*User, error)
	UserByID(ctx context.Context, tenantID, id string) (*User, error)
	ListUsers(ctx context.Context, tenantID string) ([]*User, error)
	CountRole(ctx context.Context, tenantID string, role identity.Role) (int64, error)
	// RolesRevision is the tenant's roles revision: the highest RoleRev of its users.
	RolesRevision(ctx context.Context, tenantID string) (int64, error)
	// ClaimRolesRevision reserves revision rev of the tenant's roles for one writer; false
	// when another writer holds it.
	ClaimRolesRevision(ctx context.Context, tenantID string, rev int64, expiresAt time.Time) (bool, error)
	// SetRole sets a user's role, as the change of roles revision rev.
	SetRole(ctx context.Context, tenantID, id string, role identity.Role, rev int64, now time.Time) (*User, error)

	AddDirectory(ctx context.Context, email, tenantID string) error
	TenantsOf(ctx context.Context, email string, limit int) ([]string, error)

	InsertInvitation(ctx context.Context, tenantID string, inv *Invitation) error
	// UsableInvitation returns the unused, unexpired invitation for email; ErrInvalidInvitation
	// when none matched.
	UsableInvitation(ctx context.Context, tenantID, hash, email string, now time.Time) (*Invitation, error)
	// ClaimInvitation marks an unused, unexpired invitation for email used; ErrInvalidInvitation
	// when none matched.
	ClaimInvitation(ctx context.Context, tenantID, hash, email string, now time.Time) (*Invitation, error)

	// LoginFailures counts the login attempts of key since its last reset, and the latest.
	LoginFailures(ctx context.Context, key string) (LoginFailures, error)
	// ReserveLogin records login attempt number seq of key, before its password is checked;
	// false when another attempt took that number first.
	ReserveLogin(ctx context.Context, key string, seq int, now time.Time) (bool, error)
	// ReleaseLogin forgets attempt seq of key, whose password was not checked.
	ReleaseLogin(ctx context.Context, key string, seq int) error
	ResetLogin(ctx context.Context, key string) error
	DeleteStaleLogins(ctx context.Context, before time.Time) (int64, error)

	// SetMFA replaces a user's MFA state (nil removes it).
	SetMFA(ctx context.Context, tenantID, userID string, mfa *MFA) error
	// ClaimOnce records that key was used; false when it was before (see store.Claim).
	ClaimOnce(ctx context.Context, key string, expiresAt time.Time) (bool, error)
}

// LoginFailures sums up the consecutive failed logins of one (tenant, email). An attempt counts
// as failed from the moment it is reserved until a success resets the count.
type LoginFailures struct {
	Count int
	Last  time.Time
	Seq   int // number of the latest attempt; the next one takes Seq+1
}

// MongoStore implements Store. Users and invitations are per-tenant documents, reached only
// through store.Scoped handles; the directory, login back-off and claims are platform
// collections.
type MongoStore struct {
	DB *store.DB
	// Layout of the per-tenant documents; empty is store.LayoutCollections.
	Layout store.Layout
}

// Indexes of the per-tenant collections; in the shared layout each is led by tenant_id, so
// that email is unique per tenant.
var (
	usersIndexes       = []store.Index{{Keys: []string{"email"}, Unique: true}, {Keys: []string{"role"}}}
	invitationsIndexes = []store.Index{{Keys: []string{"email"}}}
)

// Init creates the platform collections.
func (s *MongoStore) Init(ctx context.Context) error {
	if err := s.DB.EnsureCollection(ctx, store.CollDirectory,
		store.Index{Keys: []string{"email", "tenant_id"}, Unique: true}); err != nil {
		return err
	}
	if err := s.DB.InitClaims(ctx); err != nil {
		return err
	}
	if err := s.DB.EnsureCollection(ctx, store.CollLoginFailures,
		store.Index{Keys: []string{"key", "seq"}},
		store.Index{Keys: []string{"at"}}); err != nil {
		return err
	}
	if err := s.DB.EnsureShared(ctx, s.Layout, store.SuffixUsers, usersIndexes...); err != nil {
		return err
	}
	return s.DB.EnsureShared(ctx, s.Layout, store.SuffixInvitations, invitationsIndexes...)
}

// CreateTenantCollections creates t_<tenant>_users and t_<tenant>_invitations in the
// collections layout; in the shared layout there is nothing to create.
func (s *MongoStore) CreateTenantCollections(ctx context.Context, tenantID string) error {
	if err := s.DB.EnsureTenant(ctx, s.Layout, tenantID, store.SuffixUsers, usersIndexes...); err != nil {
		return err
	}
	return s.DB.EnsureTenant(ctx, s.Layout, tenantID, store.SuffixInvitations, invitationsIndexes...)
}

func (s *MongoStore) users(tenantID string) *store.Scoped {
	return s.DB.Scoped(s.Layout, tenantID, store.SuffixUsers)
}

func (s *MongoStore) invitations(tenantID string) *store.Scoped {
	return s.DB.Scoped(s.Layout, tenantID, store.SuffixInvitations)
}

func (s *MongoStore) InsertUser(ctx context.Context, tenantID string, u *User) error {
	err := s.users(tenantID).InsertOne(ctx, u)
	if store.IsDuplicateKey(err) {
		return ErrEmailTaken
	}
	return err
}

func (s *MongoStore) findUser(ctx context.Context, tenantID string, filter bson.D) (*User, error) {
	var u User
	err := s.users(tenantID).FindOne(ctx, filter, &u)
	if store.IsNotFound(err) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (s *MongoStore) UserByEmail(ctx context.Context, tenantID, email string) (*User, error) {
	return s.findUser(ctx, tenantID, bson.D{{Key: "email", Value: email}})
}

func (s *MongoStore) UserByID(ctx context.Context, tenantID, id string) (*User, error) {
	return s.findUser(ctx, tenantID, bson.D{{Key: "_id", Value: id}})
}

func (s *MongoStore) ListUsers(ctx context.Context, tenantID string) ([]*User, error) {
	cur, err := s.users(tenantID).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var out []*User
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *MongoStore) RolesRevision(ctx context.Context, tenantID string) (int64, error) {
	var top User
	err := s.users(tenantID).FindOne(ctx, bson.D{}, &top,
		options.FindOne().SetSort(bson.D{{Key: "role_rev", Value: -1}}).SetProjection(bson.D{{Key: "role_rev", Value: 1}}))
	if store.IsNotFound(err) {
		return 0, nil
	}
	return top.RoleRev, err
}

// ClaimRolesRevision rests on store.Claim: FerretDB has no atomic conditional update, so the
// unique claim is what lets one writer per revision through.
func (s *MongoStore) ClaimRolesRevision(ctx context.Context, tenantID string, rev int64, expiresAt time.Time) (bool, error) {
	return s.DB.Claim(ctx, "roles:"+tenantID+":"+strconv.FormatInt(rev, 10), expiresAt)
}

func (s *MongoStore) SetRole(ctx context.Context, tenantID, id string, role identity.Role, rev int64, now time.Time) (*User, error) {
	var u User
	err := s.users(tenantID).FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "role", Value: role}, {Key: "role_rev", Value: rev}, {Key: "updated_at", Value: now}}}},
		&u, options.FindOneAndUpdate().SetReturnDocument(options.After),
	)
	if store.IsNotFound(err) {
		return nil, ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (s *MongoStore) CountRole(ctx context.Context, tenantID string, role identity.Role) (int64, error) {
	return s.users(tenantID).CountDocuments(ctx, bson.D{{Key: "role", Value: role}})
}

// AddDirectory records that email has an account in tenantID; recording it twice is harmless.
func (s *MongoStore) AddDirectory(ctx context.Context, email, tenantID string) error {
	_, err := s.DB.C(store.CollDirectory).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: email + " " + tenantID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: email}, {Key: "tenant_id", Value: tenantID}}}},
		options.Update().SetUpsert(true))
	if store.IsDuplicateKey(err) {
		// Two upserts raced (replicas bootstrapping the same admin): FerretDB does not retry
		// the loser as MongoDB does, but the entry it wanted is there.
		return nil
	}
	return err
}

func (s *MongoStore) TenantsOf(ctx context.Context, email string, limit int) ([]string, error) {
	cur, err := s.DB.C(store.CollDirectory).Find(ctx, bson.D{{Key: "email", Value: email}},
		options.Find().SetLimit(int64(limit)).SetSort(bson.D{{Key: "tenant_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var rows []struct {
		TenantID string `bson:"tenant_id"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.TenantID
	}
	return out, nil
}

func (s *MongoStore) InsertInvitation(ctx context.Context, tenantID string, inv *Invitation) error {
	return s.invitations(tenantID).InsertOne(ctx, inv)
}

func (s *MongoStore) UsableInvitation(ctx context.Context, tenantID, hash, email string, now time.Time) (*Invitation, error) {
	var inv Invitation
	err := s.invitations(tenantID).FindOne(ctx, bson.D{{Key: "_id", Value: hash}}, &inv)
	if store.IsNotFound(err) {
		return nil, ErrInvalidInvitation
	}
	if err != nil {
		return nil, err
	}
	if inv.Email != email || inv.UsedAt != nil || !inv.ExpiresAt.After(now) {
		return nil, ErrInvalidInvitation
	}
	return &inv, nil
}

// ClaimInvitation uses store.Claim so that an invitation admits one signup even when two
// arrive at once.
func (s *MongoStore) ClaimInvitation(ctx context.Context, tenantID, hash, email string, now time.Time) (*Invitation, error) {
	inv, err := s.UsableInvitation(ctx, tenantID, hash, email, now)
	if err != nil {
		return nil, err
	}
	won, err := s.DB.Claim(ctx, "invitation:"+tenantID+":"+hash, inv.ExpiresAt)
	if err != nil {
		return nil, err
	}
	if !won {
		return nil, ErrInvalidInvitation
	}
	_, err = s.invitations(tenantID).UpdateOne(ctx, bson.D{{Key: "_id", Value: hash}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "used_at", Value: now}}}})
	if err != nil {
		return nil, err
	}
	inv.UsedAt = &now
	return inv, nil
}

// loginKey hashes (tenant, email) so the collection holds no addresses of strangers who
// mistyped theirs, and ids stay short.
func loginKey(tenantID, email string) string {
	sum := sha256.Sum256([]byte(tenantID + "\x00" + email))
	return hex.EncodeToString(sum[:16])
}

// Login attempts are one document each, whose _id is the key and the attempt's number: a
// unique insert is the one atomic primitive of every backend (see store.Claim), so of
// concurrent attempts that read the same count exactly one can take the next number.
type loginAttempt struct {
	ID  string    `bson:"_id"`
	Key string    `bson:"key"`
	Seq int       `bson:"seq"`
	At  time.Time `bson:"at"`
}

func loginAttemptID(key string, seq int) string { return key + ":" + strconv.Itoa(seq) }

func (s *MongoStore) LoginFailures(ctx context.Context, key string) (LoginFailures, error) {
	coll := s.DB.C(store.CollLoginFailures)
	var last loginAttempt
	err := coll.FindOne(ctx, bson.D{{Key: "key", Value: key}}, options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}})).Decode(&last)
	if store.IsNotFound(err) {
		return LoginFailures{}, nil
	}
	if err != nil {
		return LoginFailures{}, err
	}
	// Counted up to the latest attempt read, not beyond: an attempt inserted in between would
	// make a count that the number does not match, and let one more attempt past the back-off.
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "key", Value: key}, {Key: "seq", Value: bson.D{{Key: "$lte", Value: last.Seq}}}})
	if err != nil {
		return LoginFailures{}, err
	}
	return LoginFailures{Count: int(n), Last: last.At, Seq: last.Seq}, nil
}

func (s *MongoStore) ReserveLogin(ctx context.Context, key string, seq int, now time.Time) (bool, error) {
	_, err := s.DB.C(store.CollLoginFailures).InsertOne(ctx, loginAttempt{ID: loginAttemptID(key, seq), Key: key, Seq: seq, At: now})
	if store.IsDuplicateKey(err) {
		return false, nil
	}
	return err == nil, err
}

func (s *MongoStore) ReleaseLogin(ctx context.Context, key string, seq int) error {
	_, err := s.DB.C(store.CollLoginFailures).DeleteOne(ctx, bson.D{{Key: "_id", Value: loginAttemptID(key, seq)}})
	return err
}

func (s *MongoStore) ResetLogin(ctx context.Context, key string) error {
	_, err := s.DB.C(store.CollLoginFailures).DeleteMany(ctx, bson.D{{Key: "key", Value: key}})
	return err
}

func (s *MongoStore) DeleteStaleLogins(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.DB.C(store.CollLoginFailures).DeleteMany(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}
