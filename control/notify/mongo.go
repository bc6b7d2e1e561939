package notify

import (
	"context"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/saasgate/saasgate/control/store"
)

// Collections of the outbox (platform collections) and the per-tenant endpoint suffix.
const (
	CollEvents      = "webhook_events"
	CollDeliveries  = "webhook_deliveries"
	SuffixEndpoints = store.SuffixWebhookEndpoints
)

// DeliveryFilter selects a page of an owner's delivery log, newest first.
type DeliveryFilter struct {
	EndpointID string
	Status     string
	Type       string
	// Before is the cursor: only deliveries whose id sorts before it.
	Before string
	Limit  int
}

// Store persists endpoints (per tenant) and the outbox (events and deliveries).
type Store interface {
	// Init creates the platform collections (and the platform endpoints'); it may run again.
	Init(ctx context.Context) error
	// CreateTenantCollections creates the tenant's endpoint collection.
	CreateTenantCollections(ctx context.Context, tenantID string) error

	InsertEndpoint(ctx context.Context, e *Endpoint) error
	// GetEndpoint returns ErrEndpointNotFound when the tenant has no such endpoint.
	GetEndpoint(ctx context.Context, tenantID, id string) (*Endpoint, error)
	ListEndpoints(ctx context.Context, tenantID string) ([]*Endpoint, error)
	// ReplaceEndpoint writes e whole; ErrEndpointNotFound when it was deleted.
	ReplaceEndpoint(ctx context.Context, e *Endpoint) error
	DeleteEndpoint(ctx context.Context, tenantID, id string) error
	// MarkFailing records since as the start of the endpoint's failures unless one is
	// recorded, and returns the recorded start.
	MarkFailing(ctx context.Context, tenantID, id string, since time.Time) (time.Time, error)
	ClearFailing(ctx context.Context, tenantID, id string) error
	Disable(ctx context.Context, tenantID, id, reason string, at time.Time) error

	// InsertEvent records an event; false, with a nil error, when its id is recorded.
	InsertEvent(ctx context.Context, rec *eventRecord) (bool, error)
	GetEvent(ctx context.Context, id string) (*eventRecord, error)
	// InsertDelivery records a delivery; a delivery with its id already recorded is kept.
	InsertDelivery(ctx context.Context, d *Delivery) error
	GetDelivery(ctx context.Context, id string) (*Delivery, error)
	ListDeliveries(ctx context.Context, endpointTenant string, f DeliveryFilter) ([]*Delivery, error)
	// FailedSince lists the endpoint's failed deliveries created at or after since.
	FailedSince(ctx context.Context, endpointTenant, endpointID string, since time.Time) ([]*Delivery, error)
	// Due lists up to limit pending deliveries whose attempt is due and whose lease expired.
	Due(ctx context.Context, now time.Time, limit int) ([]*Delivery, error)
	// Lease gives d to owner until until, if nobody took it since d was read: of any number
	// of concurrent callers with the same d, one gets true.
	Lease(ctx context.Context, d *Delivery, owner string, until time.Time) (bool, error)
	// Finish records an attempt and the delivery's new status and next attempt, if owner
	// still holds the lease until leaseUntil; false when the lease was taken over.
	Finish(ctx context.Context, id, owner string, leaseUntil time.Time, a Attempt, status string, next time.Time) (bool, error)
	// DeleteBefore deletes the finished deliveries and the events created before t, and
	// counts the deliveries deleted.
	DeleteBefore(ctx context.Context, t time.Time) (int64, error)
	// Pending counts the deliveries waiting.
	Pending(ctx context.Context) (int64, error)
}

// MongoStore keeps endpoints in t_<tenant>_webhook_endpoints (the collections layout) or in the
// shared collection webhook_endpoints (the shared layout), reached only through store.Scoped
// handles, and the outbox in the platform collections webhook_events and webhook_deliveries.
type MongoStore struct {
	DB *store.DB
	// Layout of the per-tenant documents; empty is store.LayoutCollections.
	Layout store.Layout
}

func (s *MongoStore) Init(ctx context.Context) error {
	if err := s.DB.EnsureCollection(ctx, CollEvents, store.Index{Keys: []string{"created_at"}}); err != nil {
		return err
	}
	if err := s.DB.EnsureCollection(ctx, CollDeliveries,
		store.Index{Keys: []string{"status", "next_attempt_at"}},
		store.Index{Keys: []string{"endpoint_tenant", "endpoint_id"}}); err != nil {
		return err
	}
	if err := s.DB.InitClaims(ctx); err != nil {
		return err
	}
	if err := s.DB.EnsureShared(ctx, s.Layout, SuffixEndpoints, store.Index{Keys: []string{"created_at"}}); err != nil {
		return err
	}
	return s.CreateTenantCollections(ctx, store.SystemTenant)
}

func (s *MongoStore) CreateTenantCollections(ctx context.Context, tenantID string) error {
	return s.DB.EnsureTenant(ctx, s.Layout, tenantID, SuffixEndpoints)
}

func (s *MongoStore) endpoints(tenantID string) *store.Scoped {
	return s.DB.Scoped(s.Layout, tenantID, SuffixEndpoints)
}

func (s *MongoStore) InsertEndpoint(ctx context.Context, e *Endpoint) error {
	return s.endpoints(e.TenantID).InsertOne(ctx, e)
}

func (s *MongoStore) GetEndpoint(ctx context.Context, tenantID, id string) (*Endpoint, error) {
	var e Endpoint
	err := s.endpoints(tenantID).FindOne(ctx, byID(id), &e)
	if store.IsNotFound(err) {
		return nil, ErrEndpointNotFound
	}
	if err != nil {
		return nil, err
	}
	return &e, nil
}

func (s *MongoStore) ListEndpoints(ctx context.Context, tenantID string) ([]*Endpoint, error) {
	cur, err := s.endpoints(tenantID).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := []*Endpoint{}
	return out, cur.All(ctx, &out)
}

func (s *MongoStore) ReplaceEndpoint(ctx context.Context, e *Endpoint) error {
	res, err := s.endpoints(e.TenantID).ReplaceOne(ctx, byID(e.ID), e)
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		return ErrEndpointNotFound
	}
	return nil
}

func (s *MongoStore) DeleteEndpoint(ctx context.Context, tenantID, id string) error {
	res, err := s.endpoints(tenantID).DeleteOne(ctx, byID(id))
	if err != nil {
		return err
	}
	if res.DeletedCount == 0 {
		return ErrEndpointNotFound
	}
	return nil
}

func (s *MongoStore) MarkFailing(ctx context.Context, tenantID, id string, since time.Time) (time.Time, error) {
	c := s.endpoints(tenantID)
	_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "failing_since", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "failing_since", Value: since}}}})
	if err != nil {
		return time.Time{}, err
	}
	e, err := s.GetEndpoint(ctx, tenantID, id)
	if err != nil {
		return time.Time{}, err
	}
	if e.FailingSince == nil {
		return since, nil
	}
	return *e.FailingSince, nil
}

func (s *MongoStore) ClearFailing(ctx context.Context, tenantID, id string) error {
	_, err := s.endpoints(tenantID).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "failing_since", Value: bson.D{{Key: "$ne", Value: nil}}}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "failing_since", Value: ""}}}})
	return err
}

func (s *MongoStore) Disable(ctx context.Context, tenantID, id, reason string, at time.Time) error {
	_, err := s.endpoints(tenantID).UpdateOne(ctx, byID(id), bson.D{{Key: "$set", Value: bson.D{
		{Key: "enabled", Value: false}, {Key: "disabled_reason", Value: reason}, {Key: "updated_at", Value: at}}}})
	return err
}

func (s *MongoStore) InsertEvent(ctx context.Context, rec *eventRecord) (bool, error) {
	_, err := s.DB.C(CollEvents).InsertOne(ctx, rec)
	if store.IsDuplicateKey(err) {
		return false, nil
	}
	return err == nil, err
}

func (s *MongoStore) GetEvent(ctx context.Context, id string) (*eventRecord, error) {
	var rec eventRecord
	if err := s.DB.C(CollEvents).FindOne(ctx, byID(id)).Decode(&rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

func (s *MongoStore) InsertDelivery(ctx context.Context, d *Delivery) error {
	_, err := s.DB.C(CollDeliveries).InsertOne(ctx, d)
	if store.IsDuplicateKey(err) {
		return nil
	}
	return err
}

func (s *MongoStore) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	var d Delivery
	err := s.DB.C(CollDeliveries).FindOne(ctx, byID(id)).Decode(&d)
	if store.IsNotFound(err) {
		return nil, ErrDeliveryNotFound
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (s *MongoStore) ListDeliveries(ctx context.Context, endpointTenant string, f DeliveryFilter) ([]*Delivery, error) {
	q := bson.D{{Key: "endpoint_tenant", Value: endpointTenant}}
	if f.EndpointID != "" {
		q = append(q, bson.E{Key: "endpoint_id", Value: f.EndpointID})
	}
	if f.Status != "" {
		q = append(q, bson.E{Key: "status", Value: f.Status})
	}
	if f.Type != "" {
		q = append(q, bson.E{Key: "type", Value: f.Type})
	}
	if f.Before != "" {
		q = append(q, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: f.Before}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(f.Limit))
	return s.find(ctx, q, opts)
}

func (s *MongoStore) FailedSince(ctx context.Context, endpointTenant, endpointID string, since time.Time) ([]*Delivery, error) {
	return s.find(ctx, bson.D{{Key: "endpoint_tenant", Value: endpointTenant}, {Key: "endpoint_id", Value: endpointID},
		{Key: "status", Value: StatusFailed}, {Key: "created_at", Value: bson.D{{Key: "$gte", Value: since}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
}

func (s *MongoStore) Due(ctx context.Context, now time.Time, limit int) ([]*Delivery, error) {
	return s.find(ctx, bson.D{{Key: "status", Value: StatusPending},
		{Key: "next_attempt_at", Value: bson.D{{Key: "$lte", Value: now}}},
		{Key: "lease_until", Value: bson.D{{Key: "$lte", Value: now}}}},
		options.Find().SetSort(bson.D{{Key: "next_attempt_at", Value: 1}}).SetLimit(int64(limit)))
}

func (s *MongoStore) find(ctx context.Context, q bson.D, opts *options.FindOptions) ([]*Delivery, error) {
	cur, err := s.DB.C(CollDeliveries).Find(ctx, q, opts)
	if err != nil {
		return nil, err
	}
	out := []*Delivery{}
	return out, cur.All(ctx, &out)
}

// Lease rests on store.Claim rather than on a conditional findAndModify: FerretDB's
// findAndModify reads then writes, so two workers could both take a delivery. The claim's key
// names the state being replaced (attempts made, lease expiry), so a delivery can be claimed
// once per attempt and once more per lease that expires.
func (s *MongoStore) Lease(ctx context.Context, d *Delivery, owner string, until time.Time) (bool, error) {
	key := "webhook-lease:" + d.ID + ":" + strconv.Itoa(len(d.Attempts)) + ":" + strconv.FormatInt(d.LeaseUntil.UnixMilli(), 10)
	won, err := s.DB.Claim(ctx, key, until.Add(time.Hour))
	if err != nil || !won {
		return false, err
	}
	res, err := s.DB.C(CollDeliveries).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: d.ID}, {Key: "lease_until", Value: d.LeaseUntil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lease_owner", Value: owner}, {Key: "lease_until", Value: until}}}})
	if err != nil {
		return false, err
	}
	return res.MatchedCount == 1, nil
}

func (s *MongoStore) Finish(ctx context.Context, id, owner string, leaseUntil time.Time, a Attempt, status string, next time.Time) (bool, error) {
	res, err := s.DB.C(CollDeliveries).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "lease_owner", Value: owner}, {Key: "lease_until", Value: leaseUntil}},
		bson.D{
			{Key: "$push", Value: bson.D{{Key: "attempts", Value: a}}},
			{Key: "$set", Value: bson.D{{Key: "status", Value: status}, {Key: "next_attempt_at", Value: next},
				{Key: "lease_owner", Value: ""}, {Key: "lease_until", Value: time.Time{}}}},
		})
	if err != nil {
		return false, err
	}
	return res.MatchedCount == 1, nil
}

func (s *MongoStore) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	before := bson.D{{Key: "$lt", Value: t}}
	res, err := s.DB.C(CollDeliveries).DeleteMany(ctx, bson.D{{Key: "created_at", Value: before},
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusSucceeded, StatusFailed}}}}})
	if err != nil {
		return 0, err
	}
	if _, err := s.DB.C(CollEvents).DeleteMany(ctx, bson.D{{Key: "created_at", Value: before}}); err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}

func (s *MongoStore) Pending(ctx context.Context) (int64, error) {
	return s.DB.C(CollDeliveries).CountDocuments(ctx, bson.D{{Key: "status", Value: StatusPending}})
}

func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }
