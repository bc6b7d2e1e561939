package tenant

import (
	"context"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/saasgate/saasgate/control/store"
)

// Store persists tenants.
type Store interface {
	// Insert adds a tenant; ErrExists when the id is taken.
	Insert(ctx context.Context, t *Tenant) error
	// Get returns a tenant; ErrNotFound when absent.
	Get(ctx context.Context, id string) (*Tenant, error)
	List(ctx context.Context) ([]*Tenant, error)
	// ListN returns at most n tenants, in id order.
	ListN(ctx context.Context, n int) ([]*Tenant, error)
	// Update sets the given fields and updated_at, and counts one more revision (Tenant.Rev);
	// ErrNotFound when absent.
	Update(ctx context.Context, id string, fields Patch) (*Tenant, error)
	Delete(ctx context.Context, id string) error
	// FindByCustomer returns the tenant with a Stripe customer id; ErrNotFound when none.
	FindByCustomer(ctx context.Context, customerID string) (*Tenant, error)
	// ListByBillingStatus returns the tenants in a billing status.
	ListByBillingStatus(ctx context.Context, s BillingStatus) ([]*Tenant, error)
	// ClaimBillingRevision reserves revision rev of the tenant's billing state for one writer;
	// false when another writer holds it.
	ClaimBillingRevision(ctx context.Context, id string, rev int64, expiresAt time.Time) (bool, error)
	// CountByStatus counts the tenants by effective status, every Status present.
	CountByStatus(ctx context.Context) (map[Status]int64, error)
}

// MongoStore keeps tenants in the platform collection "tenants".
type MongoStore struct {
	DB *store.DB
}

// Init creates the platform collection (and the claims collection that billing revisions are
// claimed in).
func (s *MongoStore) Init(ctx context.Context) error {
	if err := s.DB.InitClaims(ctx); err != nil {
		return err
	}
	return s.DB.EnsureCollection(ctx, store.CollTenants, store.Index{Keys: []string{"status"}},
		store.Index{Keys: []string{"billing.customer_id"}}, store.Index{Keys: []string{"billing.status"}})
}

func (s *MongoStore) Insert(ctx context.Context, t *Tenant) error {
	_, err := s.DB.C(store.CollTenants).InsertOne(ctx, t)
	if store.IsDuplicateKey(err) {
		return ErrExists
	}
	return err
}

func (s *MongoStore) Get(ctx context.Context, id string) (*Tenant, error) {
	return s.findOne(ctx, bson.D{{Key: "_id", Value: id}})
}

func (s *MongoStore) FindByCustomer(ctx context.Context, customerID string) (*Tenant, error) {
	return s.findOne(ctx, bson.D{{Key: "billing.customer_id", Value: customerID}})
}

func (s *MongoStore) findOne(ctx context.Context, filter bson.D) (*Tenant, error) {
	var t Tenant
	err := s.DB.C(store.CollTenants).FindOne(ctx, filter).Decode(&t)
	if store.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (s *MongoStore) List(ctx context.Context) ([]*Tenant, error) { return s.ListN(ctx, 0) }

// EachN hands at most n tenants (0: all) to each, in id order, one decoded at a time: the
// tenant cache's Lister.
func (s *MongoStore) EachN(ctx context.Context, n int, each func(*Tenant)) error {
	return s.each(ctx, bson.D{}, n, each)
}

func (s *MongoStore) ListN(ctx context.Context, n int) ([]*Tenant, error) {
	return s.find(ctx, bson.D{}, n)
}

func (s *MongoStore) ListByBillingStatus(ctx context.Context, status BillingStatus) ([]*Tenant, error) {
	return s.find(ctx, bson.D{{Key: "billing.status", Value: status}}, 0)
}

// find returns the tenants matching filter in id order, at most n (0: all).
func (s *MongoStore) find(ctx context.Context, filter bson.D, n int) ([]*Tenant, error) {
	var out []*Tenant
	err := s.each(ctx, filter, n, func(t *Tenant) { out = append(out, t) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// each hands the tenants matching filter to fn in id order, at most n (0: all), one decoded
// at a time.
func (s *MongoStore) each(ctx context.Context, filter bson.D, n int, fn func(*Tenant)) error {
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
	if n > 0 {
		opts.SetLimit(int64(n))
	}
	cur, err := s.DB.C(store.CollTenants).Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		t := new(Tenant)
		if err := cur.Decode(t); err != nil {
			return err
		}
		fn(t)
	}
	return cur.Err()
}

// updateLocks serialise this process's updates of one tenant (by a hash of its id). FerretDB
// (the embedded store) applies a findAndModify as a read then a write: two at once count the
// same revision, and the later write may even store the older one, so caches ordering
// announcements by revision would be misled. MongoDB applies each update atomically and needs
// no help; replicas sharing one FerretDB still race (updates are rare, and the cache's MaxAge
// refresh reads the store again).
var (
	updateLocks    [64]sync.Mutex
	updateLockSeed = maphash.MakeSeed()
)

func (s *MongoStore) Update(ctx context.Context, id string, p Patch) (*Tenant, error) {
	lock := &updateLocks[maphash.String(updateLockSeed, id)%uint64(len(updateLocks))]
	lock.Lock()
	defer lock.Unlock()
	set := bson.D{{Key: "updated_at", Value: p.UpdatedAt}}
	if p.Name != nil {
		set = append(set, bson.E{Key: "name", Value: *p.Name})
	}
	if p.Status != nil {
		set = append(set, bson.E{Key: "status", Value: *p.Status})
	}
	if p.Plan != nil {
		set = append(set, bson.E{Key: "plan", Value: *p.Plan})
	}
	if p.PlanOverride != nil {
		set = append(set, bson.E{Key: "plan_override", Value: *p.PlanOverride})
	}
	if p.Billing != nil {
		set = append(set, bson.E{Key: "billing", Value: p.Billing})
	}
	if p.RequireMFA != nil {
		set = append(set, bson.E{Key: "require_mfa", Value: *p.RequireMFA})
	}
	var t Tenant
	err := s.DB.C(store.CollTenants).FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: "rev", Value: 1}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&t)
	if store.IsNotFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (s *MongoStore) Delete(ctx context.Context, id string) error {
	_, err := s.DB.C(store.CollTenants).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return err
}

// ClaimBillingRevision claims through store.Claim. The key is the one billing claimed before
// the claim moved here, so that replicas of both versions exclude each other during an upgrade.
func (s *MongoStore) ClaimBillingRevision(ctx context.Context, id string, rev int64, expiresAt time.Time) (bool, error) {
	return s.DB.Claim(ctx, "billing:"+id+":"+strconv.FormatInt(rev, 10), expiresAt)
}
