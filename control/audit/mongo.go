package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/saasgate/saasgate/control/store"
)

// collAnchors is the platform collection of retention anchors, one per tenant (by _id).
const collAnchors = "audit_anchors"

// MongoStore keeps each tenant's entries in t_<tenant>_audit (the collections layout) or in the
// shared collection audit (the shared layout), reached only through store.Scoped handles. The
// chain is per tenant in both: seq is unique per tenant.
type MongoStore struct {
	DB *store.DB
	// Layout of the per-tenant documents; empty is store.LayoutCollections.
	Layout store.Layout

	// ready holds the tenants whose collection this process has brought up to date.
	ready sync.Map
}

var _ Store = (*MongoStore)(nil)

// Init creates the anchors' collection and the claims retention takes.
func (s *MongoStore) Init(ctx context.Context) error {
	if err := s.DB.InitClaims(ctx); err != nil {
		return err
	}
	if err := s.DB.EnsureCollection(ctx, collAnchors); err != nil {
		return err
	}
	return s.DB.EnsureShared(ctx, s.Layout, store.SuffixAudit, entryIndexes...)
}

// entryIndexes are the audit collection's; in the shared layout each is led by tenant_id, so
// seq is unique per tenant.
var entryIndexes = []store.Index{
	{Keys: []string{"seq"}, Unique: true},
	{Keys: []string{"time"}},
	{Keys: []string{"actor_id", "time"}},
}

// CreateTenantCollections creates the tenant's audit collection and its indexes; the unique
// one on seq is what keeps two appenders from forking the chain. A new collection gets them
// at once; in one that existed, entries written before the chain existed are numbered first
// (numberUnchained), or MongoDB would refuse the index. The shared layout is younger than the
// chain: there is nothing to create or number.
func (s *MongoStore) CreateTenantCollections(ctx context.Context, tenantID string) error {
	if s.Layout == store.LayoutShared {
		return nil
	}
	created, err := s.DB.CreateTenantCollection(ctx, tenantID, store.SuffixAudit, entryIndexes...)
	if err != nil || created {
		return err
	}
	if err := s.numberUnchained(ctx, tenantID); err != nil {
		return fmt.Errorf("numbering the audit entries of %s written before the chain: %w", tenantID, err)
	}
	return s.DB.EnsureTenantIndexes(ctx, tenantID, store.SuffixAudit, entryIndexes...)
}

// numberUnchained gives the entries that have no seq (written before the chain) negative ones,
// newest closest to zero: outside the chain (Verify starts at 1), still listed after it.
func (s *MongoStore) numberUnchained(ctx context.Context, tenantID string) error {
	c := s.coll(tenantID)
	cur, err := c.Find(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$exists", Value: false}}}},
		options.Find().SetSort(bson.D{{Key: "time", Value: -1}}).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return err
	}
	var ids []struct {
		ID any `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil || len(ids) == 0 {
		return err
	}
	var lowest struct {
		Seq int64 `bson:"seq"`
	}
	err = c.FindOne(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$lt", Value: 0}}}}, &lowest,
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: 1}}))
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return err
	}
	for i, doc := range ids {
		if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: lowest.Seq - int64(i) - 1}}}}); err != nil {
			return err
		}
	}
	return nil
}

// ensure brings a tenant's collection up to date once per process: tenants created before
// the chain have neither its index nor numbered entries.
func (s *MongoStore) ensure(ctx context.Context, tenantID string) error {
	if _, ok := s.ready.Load(tenantID); ok {
		return nil
	}
	if err := s.CreateTenantCollections(ctx, tenantID); err != nil {
		return err
	}
	s.ready.Store(tenantID, true)
	return nil
}

func (s *MongoStore) coll(tenantID string) *store.Scoped {
	return s.DB.Scoped(s.Layout, tenantID, store.SuffixAudit)
}

// Head reads the newest entry before the anchor: retention writes the anchor before it
// deletes, so an empty read of the entries means the anchor already covers them.
func (s *MongoStore) Head(ctx context.Context, tenantID string) (int64, string, error) {
	if err := s.ensure(ctx, tenantID); err != nil {
		return 0, "", err
	}
	var last Entry
	err := s.coll(tenantID).FindOne(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: 0}}}}, &last,
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "hash", Value: 1}}),
	)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, "", err
	}
	a, err := s.Anchor(ctx, tenantID)
	if err != nil {
		return 0, "", err
	}
	if a.Seq > last.Seq {
		return a.Seq, a.Hash, nil
	}
	return last.Seq, last.Hash, nil
}

// Insert writes e; a duplicate key means another appender claimed e.Seq first.
func (s *MongoStore) Insert(ctx context.Context, e *Entry) (bool, error) {
	err := s.coll(e.TenantID).InsertOne(ctx, e)
	if store.IsDuplicateKey(err) {
		return true, nil
	}
	return false, err
}

// Anchor reads tenantID's anchor; a chain never swept has the zero anchor.
func (s *MongoStore) Anchor(ctx context.Context, tenantID string) (Anchor, error) {
	a := Anchor{TenantID: tenantID}
	err := s.DB.C(collAnchors).FindOne(ctx, bson.D{{Key: "_id", Value: tenantID}}).Decode(&a)
	if errors.Is(err, mongo.ErrNoDocuments) {
		err = nil
	}
	return a, err
}

// Ascending streams the entries after seq, oldest first.
func (s *MongoStore) Ascending(ctx context.Context, tenantID string, after int64, fn func(*Entry) error) error {
	return s.each(ctx, tenantID, bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}), fn)
}

// Newest streams the entries f selects, newest first.
func (s *MongoStore) Newest(ctx context.Context, tenantID string, f Filter, fn func(*Entry) error) error {
	filter := bson.D{}
	if f.Before != 0 {
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$lt", Value: f.Before}}})
	}
	for _, kv := range []struct{ key, value string }{{"action", f.Action}, {"actor_id", f.Actor}, {"outcome", f.Outcome}} {
		if kv.value != "" {
			filter = append(filter, bson.E{Key: kv.key, Value: kv.value})
		}
	}
	if !f.From.IsZero() || !f.To.IsZero() {
		t := bson.D{}
		if !f.From.IsZero() {
			t = append(t, bson.E{Key: "$gte", Value: f.From})
		}
		if !f.To.IsZero() {
			t = append(t, bson.E{Key: "$lt", Value: f.To})
		}
		filter = append(filter, bson.E{Key: "time", Value: t})
	}
	opts := options.Find().SetSort(bson.D{{Key: "seq", Value: -1}})
	if f.Limit > 0 {
		opts.SetLimit(int64(f.Limit))
	}
	return s.each(ctx, tenantID, filter, opts, fn)
}

func (s *MongoStore) each(ctx context.Context, tenantID string, filter bson.D, opts *options.FindOptions, fn func(*Entry) error) error {
	cur, err := s.coll(tenantID).Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var e Entry
		if err := cur.Decode(&e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return cur.Err()
}

// LastBefore is the newest entry (by seq) older than t.
func (s *MongoStore) LastBefore(ctx context.Context, tenantID string, t time.Time) (*Entry, error) {
	var e Entry
	err := s.coll(tenantID).FindOne(ctx,
		bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: 0}}}, {Key: "time", Value: bson.D{{Key: "$lt", Value: t}}}}, &e,
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}),
	)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Sweep moves the anchor forward to a and deletes what it covers. Replicas sweep at the same
// ticks and FerretDB has no conditional update, so the move from the current anchor is
// claimed once (store.Claim): an anchor written backwards over a newer one would leave the
// entries between them deleted and the chain broken.
func (s *MongoStore) Sweep(ctx context.Context, a Anchor) error {
	cur, err := s.Anchor(ctx, a.TenantID)
	if err != nil || cur.Seq >= a.Seq {
		return err
	}
	won, err := s.DB.Claim(ctx, "audit_anchor|"+a.TenantID+"|"+strconv.FormatInt(cur.Seq, 10), a.SweptAt.Add(time.Hour))
	if err != nil || !won {
		return err
	}
	if _, err := s.DB.C(collAnchors).ReplaceOne(ctx, bson.D{{Key: "_id", Value: a.TenantID}}, a,
		options.Replace().SetUpsert(true)); err != nil {
		return err
	}
	// The unchained entries (negative seq) are older than the chain, so they go with the first
	// sweep.
	_, err = s.coll(a.TenantID).DeleteMany(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$lte", Value: a.Seq}}}})
	return err
}
