package billing

import (
	"context"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/store"
)

// EventState is where the handling of a recorded Stripe event stands.
type EventState string

const (
	EventProcessing EventState = "processing" // recorded, being applied
	EventDone       EventState = "done"       // applied, or found to concern no tenant
	// EventParked: its handling failed, perhaps after the tenant changed (a notification not
	// published); the record keeps the pending notifications and a redelivery takes it over.
	EventParked EventState = "parked"
)

// EventRecord is a Stripe event as billing records it, by its id, before acknowledging it.
type EventRecord struct {
	ID         string     `bson:"_id"`
	Type       string     `bson:"type"`
	Created    int64      `bson:"created"`
	State      EventState `bson:"state"`
	Tenant     string     `bson:"tenant,omitempty"`
	ReceivedAt time.Time  `bson:"received_at"`
	StartedAt  time.Time  `bson:"started_at"`
	// Pending are the notifications the event's change announces, recorded before the change
	// is written, so that a redelivery after a crash or a failed publish (which changes
	// nothing more) publishes them again, with the same ids.
	Pending []notify.Event `bson:"pending,omitempty"`
}

// EventStore persists what billing keeps beside the tenants' documents: a record of every
// Stripe event it takes on, and the one-shot claims that pick a single replica for a
// scheduler tick or for taking over an event whose handler died. Every claim is granted to one
// caller only, whatever the number of concurrent callers on any replica.
type EventStore interface {
	// Init creates the store's collections and indexes; it may run again.
	Init(ctx context.Context) error
	// Insert records an event; false, with a nil error, when a record with its id exists.
	Insert(ctx context.Context, rec *EventRecord) (bool, error)
	// Get returns an event's record; nil, with a nil error, when there is none.
	Get(ctx context.Context, id string) (*EventRecord, error)
	// Restart records that the event's processing starts again at at (a takeover): it is
	// processing, from at.
	Restart(ctx context.Context, id string, at time.Time) error
	// Done marks the event applied; tenantID is the tenant it concerned, "" for none.
	Done(ctx context.Context, id, tenantID string) error
	// SetPending records the notifications the event's change announces (nil: none).
	SetPending(ctx context.Context, id string, pending []notify.Event) error
	// Park marks the event's handling failed and resumable (EventParked).
	Park(ctx context.Context, id string) error
	// DeleteReceivedBefore deletes the records of events received before t, and counts them.
	DeleteReceivedBefore(ctx context.Context, t time.Time) (int64, error)
	// ClaimTakeover reserves, until expiresAt, the takeover of the event whose processing
	// started at startedAt; a later restart is a new takeover.
	ClaimTakeover(ctx context.Context, id string, startedAt, expiresAt time.Time) (bool, error)
	// ClaimTick reserves, until expiresAt, the scheduler's tick of time slot slot.
	ClaimTick(ctx context.Context, slot, expiresAt time.Time) (bool, error)
}

// MongoEventStore keeps event records in the platform collection "stripe_events" and its
// claims in "claims" (see store.Claim).
type MongoEventStore struct {
	DB *store.DB
}

// Init creates both collections.
func (s *MongoEventStore) Init(ctx context.Context) error {
	if err := s.DB.EnsureCollection(ctx, store.CollStripeEvents, store.Index{Keys: []string{"received_at"}}); err != nil {
		return err
	}
	return s.DB.InitClaims(ctx)
}

func (s *MongoEventStore) Insert(ctx context.Context, rec *EventRecord) (bool, error) {
	_, err := s.DB.C(store.CollStripeEvents).InsertOne(ctx, rec)
	if store.IsDuplicateKey(err) {
		return false, nil
	}
	return err == nil, err
}

func (s *MongoEventStore) Get(ctx context.Context, id string) (*EventRecord, error) {
	var rec EventRecord
	err := s.DB.C(store.CollStripeEvents).FindOne(ctx, byID(id)).Decode(&rec)
	if store.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

func (s *MongoEventStore) Restart(ctx context.Context, id string, at time.Time) error {
	return s.set(ctx, id, bson.D{{Key: "state", Value: EventProcessing}, {Key: "started_at", Value: at}})
}

func (s *MongoEventStore) Done(ctx context.Context, id, tenantID string) error {
	return s.set(ctx, id, bson.D{{Key: "state", Value: EventDone}, {Key: "tenant", Value: tenantID}})
}

func (s *MongoEventStore) SetPending(ctx context.Context, id string, pending []notify.Event) error {
	return s.set(ctx, id, bson.D{{Key: "pending", Value: pending}})
}

func (s *MongoEventStore) Park(ctx context.Context, id string) error {
	return s.set(ctx, id, bson.D{{Key: "state", Value: EventParked}})
}

func (s *MongoEventStore) set(ctx context.Context, id string, fields bson.D) error {
	_, err := s.DB.C(store.CollStripeEvents).UpdateOne(ctx, byID(id), bson.D{{Key: "$set", Value: fields}})
	return err
}

func (s *MongoEventStore) DeleteReceivedBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.DB.C(store.CollStripeEvents).DeleteMany(ctx, bson.D{{Key: "received_at", Value: bson.D{{Key: "$lt", Value: t}}}})
	if err != nil {
		return 0, err
	}
	return res.DeletedCount, nil
}

func (s *MongoEventStore) ClaimTakeover(ctx context.Context, id string, startedAt, expiresAt time.Time) (bool, error) {
	return s.DB.Claim(ctx, "stripe-event:"+id+":"+strconv.FormatInt(startedAt.UnixNano(), 10), expiresAt)
}

func (s *MongoEventStore) ClaimTick(ctx context.Context, slot, expiresAt time.Time) (bool, error) {
	return s.DB.Claim(ctx, "billing-tick:"+strconv.FormatInt(slot.UnixNano(), 10), expiresAt)
}

func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }
