package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
)

var _ Publisher = (*Manager)(nil)

// payload is a delivery's body, as the Standard Webhooks spec shapes it.
type payload struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// Publish records ev in the outbox and fans it out into one delivery per enabled endpoint
// subscribed to its type: the tenant's and the platform's. Both steps are idempotent (the
// event by its id, each delivery by an id derived from the event and the endpoint), so
// publishing again after a crash half-way completes the fan-out and duplicates nothing. An
// endpoint registered after the first publish is not added by a second one only if the
// first one completed; that is the price of not tracking fan-out progress.
func (m *Manager) Publish(ctx context.Context, ev Event) error {
	if ev.ID == "" || ev.Type == "" || !store.ValidTenantID(ev.TenantID) {
		return fmt.Errorf("notify: event needs an id, a type and a valid tenant (got %q, %q, %q)", ev.ID, ev.Type, ev.TenantID)
	}
	at := ev.Time
	if at.IsZero() {
		at = m.now()
	}
	if ev.Data == nil {
		ev.Data = map[string]any{}
	}
	body, err := json.Marshal(payload{Type: ev.Type, Timestamp: at.UTC(), Data: ev.Data})
	if err != nil {
		return fmt.Errorf("notify: encoding event %s: %w", ev.ID, err)
	}
	if len(body) >= MaxPayload {
		return ErrPayloadTooLarge
	}
	// Truncated as the store keeps it: a publish repeated later derives the deliveries' ids
	// from the stored time.
	rec := &eventRecord{ID: ev.ID, Type: ev.Type, TenantID: ev.TenantID, Payload: string(body), CreatedAt: m.now().Truncate(time.Millisecond)}
	fresh, err := m.Store.InsertEvent(ctx, rec)
	if err != nil {
		return fmt.Errorf("notify: recording event %s: %w", ev.ID, err)
	}
	if fresh {
		if m.Observer != nil {
			m.Observer.Emitted(ev.Type)
		}
	} else if rec, err = m.Store.GetEvent(ctx, ev.ID); err != nil {
		return fmt.Errorf("notify: reading event %s: %w", ev.ID, err)
	}
	if err := m.fanOut(ctx, rec); err != nil {
		return err
	}
	m.wake()
	return nil
}

func (m *Manager) fanOut(ctx context.Context, rec *eventRecord) error {
	owners := []string{rec.TenantID}
	if rec.TenantID != store.SystemTenant {
		owners = append(owners, store.SystemTenant)
	}
	for _, owner := range owners {
		endpoints, err := m.Store.ListEndpoints(ctx, owner)
		if err != nil {
			return fmt.Errorf("notify: listing %s's endpoints: %w", owner, err)
		}
		for _, e := range endpoints {
			if !e.Enabled || !e.Subscribed(rec.Type) {
				continue
			}
			d := &Delivery{
				ID: deliveryID(rec.CreatedAt, rec.ID, owner, e.ID), EventID: rec.ID, Type: rec.Type,
				TenantID: rec.TenantID, EndpointID: e.ID, EndpointTenant: owner, Payload: rec.Payload,
				Status: StatusPending, Attempts: []Attempt{}, NextAttemptAt: rec.CreatedAt, CreatedAt: rec.CreatedAt,
			}
			if err := m.Store.InsertDelivery(ctx, d); err != nil {
				return fmt.Errorf("notify: queueing event %s for endpoint %s: %w", rec.ID, e.ID, err)
			}
		}
	}
	return nil
}

// wake tells this process's workers that a delivery is due, without waiting for their poll.
func (m *Manager) wake() {
	select {
	case m.nudge <- struct{}{}:
	default:
	}
}

// DeliveryPage is a page of the delivery log; Cursor fetches the next one ("" at the end).
type DeliveryPage struct {
	Deliveries []*Delivery `json:"deliveries"`
	Cursor     string      `json:"next_cursor,omitempty"`
}

// maxPage bounds a page of the delivery log.
const maxPage = 100

// ListDeliveries reads tenantID's delivery log (the deliveries to its endpoints), newest
// first, filtered by endpoint, status and type.
func (m *Manager) ListDeliveries(ctx context.Context, p identity.Principal, tenantID string, f DeliveryFilter) (*DeliveryPage, error) {
	if err := authorize(p, tenantID); err != nil {
		return nil, err
	}
	if f.Status != "" && !slices.Contains([]string{StatusPending, StatusSucceeded, StatusFailed}, f.Status) ||
		f.Before != "" && !validDeliveryID(f.Before) {
		return nil, ErrInvalidFilter
	}
	if f.Type != "" {
		if err := validEvents([]string{f.Type}); err != nil {
			return nil, err
		}
	}
	if f.Limit <= 0 || f.Limit > maxPage {
		f.Limit = maxPage
	}
	list, err := m.Store.ListDeliveries(ctx, tenantID, f)
	if err != nil {
		return nil, errs.Internal(err, "Could not read the delivery log.")
	}
	page := &DeliveryPage{Deliveries: list}
	if len(list) == f.Limit {
		page.Cursor = list[len(list)-1].ID
	}
	return page, nil
}

func validDeliveryID(id string) bool {
	if len(id) != len("dlv_")+16+20 || id[:4] != "dlv_" {
		return false
	}
	for _, c := range id[4:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Resend sends a delivery again, whatever its status: a new delivery with the same payload
// and the same webhook-id (the receiver can tell it is the same message), to the same
// endpoint, with an attempt log of its own. The original is left as it was.
func (m *Manager) Resend(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, deliveryID string) (*Delivery, error) {
	if err := authorize(p, tenantID); err != nil {
		return nil, err
	}
	d, err := m.Store.GetDelivery(ctx, deliveryID)
	if errors.Is(err, ErrDeliveryNotFound) || err == nil && d.EndpointTenant != tenantID {
		return nil, ErrDeliveryNotFound
	}
	if err != nil {
		return nil, errs.Internal(err, "Could not read the delivery.")
	}
	nd, err := m.resend(ctx, d)
	if err != nil {
		return nil, err
	}
	m.record(ctx, tenantID, actor, ActionResend, nd.ID, map[string]any{"from": d.ID, "endpoint": d.EndpointID})
	return nd, nil
}

func (m *Manager) resend(ctx context.Context, d *Delivery) (*Delivery, error) {
	now := m.now()
	nd := &Delivery{
		ID: deliveryID(now, d.ID, now.String()), EventID: d.EventID, Type: d.Type, TenantID: d.TenantID,
		EndpointID: d.EndpointID, EndpointTenant: d.EndpointTenant, Payload: d.Payload,
		Status: StatusPending, Attempts: []Attempt{}, NextAttemptAt: now, ResentFrom: d.ID, CreatedAt: now,
	}
	if err := m.Store.InsertDelivery(ctx, nd); err != nil {
		return nil, errs.Internal(err, "Could not queue the delivery.")
	}
	m.wake()
	return nd, nil
}

// Recover resends every delivery to the endpoint that failed for good since since, and
// returns how many were queued.
func (m *Manager) Recover(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, endpointID string, since time.Time) (int, error) {
	if err := authorize(p, tenantID); err != nil {
		return 0, err
	}
	if _, err := m.endpoint(ctx, tenantID, endpointID); err != nil {
		return 0, err
	}
	failed, err := m.Store.FailedSince(ctx, tenantID, endpointID, since)
	if err != nil {
		return 0, errs.Internal(err, "Could not read the delivery log.")
	}
	for _, d := range failed {
		if _, err := m.resend(ctx, d); err != nil {
			return 0, err
		}
	}
	m.record(ctx, tenantID, actor, ActionRecover, endpointID, map[string]any{"since": since, "resent": len(failed)})
	return len(failed), nil
}
