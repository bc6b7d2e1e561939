// Package store is the storage infrastructure of the control plane: the MongoDB client, the
// embedded FerretDB used when no mongo_uri is configured, collection naming and index helpers.
// It knows no domain package; domain packages own their collections through it.
package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
)

// Platform collections (shared by all tenants).
const (
	CollTenants         = "tenants"
	CollDirectory       = "directory"        // email → tenant
	CollRefreshTokens   = "refresh_tokens"   // hashed opaque refresh tokens
	CollRevokedFamilies = "revoked_families" // one marker per revoked refresh-token family
	CollLoginFailures   = "login_failures"   // one document per failed login, for back-off
	CollClaims          = "claims"           // one-shot claims (see Claim)
	CollStripeEvents    = "stripe_events"    // Stripe webhook events by id, recorded before they are acknowledged
)

// Per-tenant collection suffixes: t_<tenant>_<suffix> in the collections layout, the shared
// collection <suffix> in the shared layout (see Layout).
const (
	SuffixUsers            = "users"
	SuffixAudit            = "audit"
	SuffixInvitations      = "invitations"
	SuffixWebhookEndpoints = "webhook_endpoints"
)

// SystemTenant is the pseudo-tenant holding platform admins and platform-wide audit entries.
// "system" is a reserved tenant id, so no real tenant can take it.
const SystemTenant = "system"

// ValidTenantID reports whether id can name a tenant and its collections: a DNS label of 3 to
// 63 characters, ^[a-z0-9]([a-z0-9-]{1,61}[a-z0-9])$ (which includes the SystemTenant). It is
// written out rather than a regexp because the gateway checks every request's tenant id.
func ValidTenantID(id string) bool {
	if len(id) < 3 || len(id) > 63 || id[0] == '-' || id[len(id)-1] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// TenantCollection names a tenant's collection. It panics on an id that is not a DNS label:
// ids are validated long before they reach storage, so this is a last line of defence against
// a collection name built from unchecked input.
func TenantCollection(tenantID, suffix string) string {
	if !ValidTenantID(tenantID) {
		panic(fmt.Sprintf("store: tenant id %q is not a DNS label", tenantID))
	}
	return "t_" + tenantID + "_" + suffix
}

// DB is the database handle shared by domain stores.
type DB struct {
	Client   *mongo.Client
	Database *mongo.Database
	// spread, when set, are the databases the tenants' own collections are spread over (see
	// SpreadTenants); nil keeps them in Database.
	spread []*mongo.Database
}

// Connect dials uri and checks the server answers within timeout.
func Connect(ctx context.Context, uri, database string, timeout time.Duration) (*DB, error) {
	return ConnectWith(ctx, uri, database, Options{ConnectTimeout: timeout, ServerSelectionTimeout: timeout})
}

// Options tune the driver. A zero field keeps the driver's default (pool of 100, 30s
// timeouts, primary reads); settings in the URI apply unless a field overrides them.
type Options struct {
	PoolSize               uint64
	ConnectTimeout         time.Duration
	ServerSelectionTimeout time.Duration
	// primary, primaryPreferred, secondary, secondaryPreferred or nearest.
	ReadPreference string
}

// ReadPreferences are the read preference modes Options accepts.
var ReadPreferences = []string{"primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"}

func (o Options) client(uri string) (*options.ClientOptions, error) {
	opts := options.Client().ApplyURI(uri).SetAppName("saasgate")
	if o.PoolSize > 0 {
		opts.SetMaxPoolSize(o.PoolSize)
	}
	if o.ConnectTimeout > 0 {
		opts.SetConnectTimeout(o.ConnectTimeout)
	}
	if o.ServerSelectionTimeout > 0 {
		opts.SetServerSelectionTimeout(o.ServerSelectionTimeout)
	}
	if o.ReadPreference != "" {
		if !slices.Contains(ReadPreferences, o.ReadPreference) {
			return nil, fmt.Errorf("read preference %q is not one of %s", o.ReadPreference, strings.Join(ReadPreferences, ", "))
		}
		mode, err := readpref.ModeFromString(o.ReadPreference)
		if err != nil {
			return nil, err
		}
		rp, err := readpref.New(mode)
		if err != nil {
			return nil, err
		}
		opts.SetReadPreference(rp)
	}
	return opts, opts.Validate()
}

// ConnectWith dials uri with o and checks a primary answers (the stores write) within the
// server-selection and connect timeouts, then settles where the tenants' collections live
// (SpreadTenants).
func ConnectWith(ctx context.Context, uri, database string, o Options) (*DB, error) {
	opts, err := o.client(uri)
	if err != nil {
		return nil, fmt.Errorf("MongoDB options: %w", err)
	}
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to MongoDB: %w", err)
	}
	bound := 30 * time.Second
	if opts.ServerSelectionTimeout != nil && opts.ConnectTimeout != nil {
		bound = *opts.ServerSelectionTimeout + *opts.ConnectTimeout
	}
	pingCtx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("MongoDB at %s did not answer: %w", redactURI(uri), err)
	}
	db := &DB{Client: client, Database: client.Database(database)}
	if _, err := db.SpreadTenants(pingCtx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return db, nil
}

// Close disconnects the client.
func (db *DB) Close(ctx context.Context) error { return db.Client.Disconnect(ctx) }

// Ping checks the server is reachable (readiness).
func (db *DB) Ping(ctx context.Context) error { return db.Client.Ping(ctx, readpref.Primary()) }

// C returns a collection of the database: a tenant's own collection (TenantCollection) from
// the database it is spread to, when the tenants are spread.
func (db *DB) C(name string) *mongo.Collection { return db.databaseOf(name).Collection(name) }

// Index describes one index; Keys are field names in order, ascending.
type Index struct {
	Keys   []string
	Unique bool
}

// EnsureCollection creates a collection (if absent) and its indexes. It is idempotent, so
// concurrent creators and restarts are harmless.
func (db *DB) EnsureCollection(ctx context.Context, name string, indexes ...Index) error {
	if err := db.databaseOf(name).CreateCollection(ctx, name); err != nil && !IsNamespaceExists(err) {
		return fmt.Errorf("creating collection %s: %w", name, err)
	}
	return db.ensureIndexes(ctx, name, indexes)
}

// ensureIndexes creates indexes on name one createIndexes call each: FerretDB 1.24 panics
// (or skips an index) when a single call names several indexes some of which exist, as on
// every restart, and as when replicas starting together on a new database race to make the
// same collection's.
func (db *DB) ensureIndexes(ctx context.Context, name string, indexes []Index) error {
	for _, ix := range indexes {
		if _, err := db.C(name).Indexes().CreateOne(ctx, ix.model()); err != nil {
			return fmt.Errorf("creating index %v on %s: %w", ix.Keys, name, err)
		}
	}
	return nil
}

// CreateTenantCollection makes tenantID's collection suffix with its indexes and reports
// whether it was new. A collection that existed is left as it is: its indexes are the
// caller's to bring up to date (EnsureTenant does; the audit store numbers its old entries
// first, or MongoDB would refuse its unique index over them). A new tenant's collection is
// made in two store calls (each is a schema change in the embedded store, whose cost grows
// with the number of collections): one createIndexes names them all, which FerretDB 1.24 takes
// only when none exists yet, so only where no one else can be making them. A tenant's
// collections are made by the one replica whose insert created the tenant, one tenant at a
// time per process; the system tenant's are made at every start, by every replica at once on a
// new database, so theirs get one index per call.
func (db *DB) CreateTenantCollection(ctx context.Context, tenantID, suffix string, indexes ...Index) (bool, error) {
	name := TenantCollection(tenantID, suffix)
	if tenantID != SystemTenant {
		return db.createCollection(ctx, name, indexes...)
	}
	err := db.databaseOf(name).CreateCollection(ctx, name)
	if IsNamespaceExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating collection %s: %w", name, err)
	}
	return true, db.ensureIndexes(ctx, name, indexes)
}

// EnsureTenantIndexes creates those of indexes that tenantID's collection suffix lacks, one
// call each (see ensureIndexes).
func (db *DB) EnsureTenantIndexes(ctx context.Context, tenantID, suffix string, indexes ...Index) error {
	return db.ensureIndexes(ctx, TenantCollection(tenantID, suffix), indexes)
}

// createCollection creates a collection and all its indexes in two store calls, and reports
// true; when the collection exists already it does nothing more and reports false.
func (db *DB) createCollection(ctx context.Context, name string, indexes ...Index) (bool, error) {
	err := db.databaseOf(name).CreateCollection(ctx, name)
	if IsNamespaceExists(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating collection %s: %w", name, err)
	}
	if len(indexes) == 0 {
		return true, nil
	}
	// A collection made just now has none of these indexes, so one call naming them all is
	// safe on FerretDB 1.24.
	models := make([]mongo.IndexModel, len(indexes))
	for i, ix := range indexes {
		models[i] = ix.model()
	}
	if _, err := db.C(name).Indexes().CreateMany(ctx, models); err != nil {
		return false, fmt.Errorf("creating the indexes of %s: %w", name, err)
	}
	return true, nil
}

func (ix Index) model() mongo.IndexModel {
	keys := bson.D{}
	for _, k := range ix.Keys {
		keys = append(keys, bson.E{Key: k, Value: 1})
	}
	opts := options.Index()
	if ix.Unique {
		opts.SetUnique(true)
	}
	return mongo.IndexModel{Keys: keys, Options: opts}
}

// Claim records that key has been used, exactly once: of any number of concurrent callers
// for the same key, one gets true. It rests on the unique _id index, the one atomic
// primitive that FerretDB's SQLite backend guarantees (its findAndModify is a read followed by
// a write, so two callers can both "win" a conditional update). Claims are swept after
// expiresAt.
func (db *DB) Claim(ctx context.Context, key string, expiresAt time.Time) (bool, error) {
	_, err := db.C(CollClaims).InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "expires_at", Value: expiresAt}})
	if IsDuplicateKey(err) {
		return false, nil
	}
	return err == nil, err
}

// InitClaims creates the claims collection.
func (db *DB) InitClaims(ctx context.Context) error {
	return db.EnsureCollection(ctx, CollClaims, Index{Keys: []string{"expires_at"}})
}

// SweepClaims deletes claims that expired before now.
func (db *DB) SweepClaims(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.C(CollClaims).DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: now}}}})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}

// IsDuplicateKey reports a unique-index violation.
func IsDuplicateKey(err error) bool { return mongo.IsDuplicateKeyError(err) }

// IsNamespaceExists reports the "collection already exists" error (code 48).
func IsNamespaceExists(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 48
}

// IsNotFound reports a lookup that matched no document.
func IsNotFound(err error) bool { return errors.Is(err, mongo.ErrNoDocuments) }

// redactURI hides credentials in a connection string for error messages.
func redactURI(uri string) string {
	return userinfoPattern.ReplaceAllString(uri, "$1***@")
}

var userinfoPattern = regexp.MustCompile(`^(mongodb(?:\+srv)?://)[^@/]*@`)
