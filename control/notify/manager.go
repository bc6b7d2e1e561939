package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
)

// Audited actions of this package.
const (
	ActionEndpointCreate  = "webhook.endpoint_create"
	ActionEndpointUpdate  = "webhook.endpoint_update"
	ActionEndpointDelete  = "webhook.endpoint_delete"
	ActionEndpointRotate  = "webhook.secret_rotate"
	ActionEndpointDisable = "webhook.endpoint_disabled"
	ActionResend          = "webhook.resend"
	ActionRecover         = "webhook.recover"
)

// MaxEndpoints bounds a tenant's endpoints (the platform's too), and with them the fan-out
// of one event. Two registrations at once may pass it by one.
const MaxEndpoints = 20

// Manager holds the notification rules: endpoints, the outbox and its workers.
type Manager struct {
	Store Store
	// Audit records endpoint changes, resends and endpoints disabled; nil records nothing.
	Audit    *audit.Log
	Observer Observer
	Logger   *zap.Logger
	Now      func() time.Time
	// PollInterval is how often idle workers look for due deliveries (default 1 s); a
	// Publish in this process wakes them at once.
	PollInterval time.Duration
	// Workers is the number of delivery goroutines Run starts (default 4).
	Workers int
	// Retention is how long finished deliveries and recorded events are kept (default 30
	// days); an event published again after it is delivered again.
	Retention time.Duration
	// Lease is how long a claimed delivery stays a worker's; after it, another worker takes
	// the delivery over. Default: the timeout + 5 s, since an attempt ends by its timeout and
	// recording it is conditional on still holding the lease.
	Lease time.Duration

	cfg    Config
	guard  *Guard
	client *http.Client
	owner  string
	nudge  chan struct{}
}

// NewManager checks cfg, filling its defaults, and builds a manager over st.
func NewManager(st Store, cfg Config) (*Manager, error) {
	if len(cfg.RetrySchedule) == 0 {
		cfg.RetrySchedule = DefaultRetrySchedule
	}
	for _, d := range cfg.RetrySchedule {
		if d < 0 {
			return nil, fmt.Errorf("notify: retry_schedule step %v is negative", d)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	g, err := NewGuard(cfg.AllowPrivate)
	if err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Manager{
		Store:  st,
		cfg:    cfg,
		guard:  g,
		client: newClient(g, cfg.Timeout),
		owner:  "wrk_" + hex.EncodeToString(b[:]),
		nudge:  make(chan struct{}, 1),
	}, nil
}

// Init creates the outbox's collections.
func (m *Manager) Init(ctx context.Context) error { return m.Store.Init(ctx) }

// Guard is the manager's SSRF guard.
func (m *Manager) Guard() *Guard { return m.guard }

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

func (m *Manager) record(ctx context.Context, tenantID string, actor identity.Actor, action, target string, detail map[string]any) {
	if m.Audit != nil {
		m.Audit.Record(ctx, tenantID, actor, action, target, audit.OutcomeSuccess, detail)
	}
}

// authorize lets the tenant's owners and admins act on the tenant's endpoints and
// deliveries; the platform's (SystemTenant) are the admins' alone.
func authorize(p identity.Principal, tenantID string) error {
	if tenantID == store.SystemTenant && p.Role != identity.RoleAdmin {
		return errs.ErrForbidden
	}
	if !p.CanAccessTenant(tenantID, identity.RoleOwner) || !store.ValidTenantID(tenantID) {
		return errs.ErrForbidden
	}
	return nil
}

// EndpointInput registers an endpoint.
type EndpointInput struct {
	URL         string
	Events      []string
	Description string
}

// EndpointPatch changes an endpoint; nil fields are left alone.
type EndpointPatch struct {
	URL         *string
	Events      *[]string
	Description *string
	Enabled     *bool
}

func (m *Manager) checkFields(ctx context.Context, url string, events []string, description string) error {
	if err := m.guard.CheckURL(ctx, url); err != nil {
		return err
	}
	if utf8.RuneCountInString(description) > 200 {
		return errs.E(errs.KindInvalid, "invalid_webhook_description", "The description is at most 200 characters.")
	}
	return validEvents(events)
}

// CreateEndpoint registers an endpoint of tenantID and returns it with its secret, which is
// shown this once.
func (m *Manager) CreateEndpoint(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID string, in EndpointInput) (*Endpoint, string, error) {
	if err := authorize(p, tenantID); err != nil {
		return nil, "", err
	}
	in.URL = strings.TrimSpace(in.URL)
	if err := m.checkFields(ctx, in.URL, in.Events, in.Description); err != nil {
		return nil, "", err
	}
	existing, err := m.Store.ListEndpoints(ctx, tenantID)
	if err != nil {
		return nil, "", errs.Internal(err, "Could not count the endpoints.")
	}
	if len(existing) >= MaxEndpoints {
		return nil, "", errs.Ef(errs.KindConflict, "webhook_endpoint_limit", "A tenant has at most %d webhook endpoints.", MaxEndpoints)
	}
	now := m.now()
	secret := newSecret()
	e := &Endpoint{ID: newEndpointID(), TenantID: tenantID, URL: in.URL, Description: in.Description,
		Events: append([]string{}, in.Events...), Enabled: true, Secrets: []Secret{{Value: secret}},
		CreatedAt: now, UpdatedAt: now}
	if err := m.Store.InsertEndpoint(ctx, e); err != nil {
		return nil, "", errs.Internal(err, "Could not register the endpoint.")
	}
	m.record(ctx, tenantID, actor, ActionEndpointCreate, e.ID, map[string]any{"url": e.URL, "events": e.Events})
	return e, secret, nil
}

// ListEndpoints lists tenantID's endpoints, without their secrets.
func (m *Manager) ListEndpoints(ctx context.Context, p identity.Principal, tenantID string) ([]*Endpoint, error) {
	if err := authorize(p, tenantID); err != nil {
		return nil, err
	}
	list, err := m.Store.ListEndpoints(ctx, tenantID)
	if err != nil {
		return nil, errs.Internal(err, "Could not list the endpoints.")
	}
	return list, nil
}

func (m *Manager) endpoint(ctx context.Context, tenantID, id string) (*Endpoint, error) {
	e, err := m.Store.GetEndpoint(ctx, tenantID, id)
	if err == ErrEndpointNotFound {
		return nil, err
	}
	if err != nil {
		return nil, errs.Internal(err, "Could not read the endpoint.")
	}
	return e, nil
}

// UpdateEndpoint changes an endpoint's URL, events, description or enabled state. Enabling
// it clears the reason it was disabled and its run of failures.
func (m *Manager) UpdateEndpoint(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, id string, patch EndpointPatch) (*Endpoint, error) {
	if err := authorize(p, tenantID); err != nil {
		return nil, err
	}
	e, err := m.endpoint(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	detail := map[string]any{}
	if patch.URL != nil {
		e.URL = strings.TrimSpace(*patch.URL)
		detail["url"] = e.URL
	}
	if patch.Events != nil {
		e.Events = append([]string{}, (*patch.Events)...)
		detail["events"] = e.Events
	}
	if patch.Description != nil {
		e.Description = *patch.Description
	}
	if patch.Enabled != nil {
		e.Enabled = *patch.Enabled
		e.DisabledReason = ""
		if !e.Enabled {
			e.DisabledReason = "disabled by its owner"
		}
		e.FailingSince = nil
		detail["enabled"] = e.Enabled
	}
	if err := m.checkFields(ctx, e.URL, e.Events, e.Description); err != nil {
		return nil, err
	}
	e.UpdatedAt = m.now()
	if err := m.Store.ReplaceEndpoint(ctx, e); err != nil {
		if err == ErrEndpointNotFound {
			return nil, err
		}
		return nil, errs.Internal(err, "Could not update the endpoint.")
	}
	m.record(ctx, tenantID, actor, ActionEndpointUpdate, id, detail)
	return e, nil
}

// DeleteEndpoint removes an endpoint; its pending deliveries fail at their next attempt.
func (m *Manager) DeleteEndpoint(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, id string) error {
	if err := authorize(p, tenantID); err != nil {
		return err
	}
	if err := m.Store.DeleteEndpoint(ctx, tenantID, id); err != nil {
		if err == ErrEndpointNotFound {
			return err
		}
		return errs.Internal(err, "Could not delete the endpoint.")
	}
	m.record(ctx, tenantID, actor, ActionEndpointDelete, id, nil)
	return nil
}

// RotateSecret gives the endpoint a new secret, returned this once; the current one keeps
// signing beside it for 24 hours, so receivers can switch without losing a delivery.
func (m *Manager) RotateSecret(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, id string) (string, error) {
	if err := authorize(p, tenantID); err != nil {
		return "", err
	}
	e, err := m.endpoint(ctx, tenantID, id)
	if err != nil {
		return "", err
	}
	now := m.now()
	until := now.Add(rotationOverlap)
	secret := newSecret()
	kept := []Secret{{Value: secret}}
	for _, s := range e.Secrets {
		if s.ExpiresAt == nil {
			kept = append(kept, Secret{Value: s.Value, ExpiresAt: &until})
		}
	}
	e.Secrets, e.UpdatedAt = kept, now
	if err := m.Store.ReplaceEndpoint(ctx, e); err != nil {
		if err == ErrEndpointNotFound {
			return "", err
		}
		return "", errs.Internal(err, "Could not rotate the secret.")
	}
	m.record(ctx, tenantID, actor, ActionEndpointRotate, id, nil)
	return secret, nil
}
