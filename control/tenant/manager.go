package tenant

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/plan"
)

var (
	ErrNotFound    = errs.E(errs.KindNotFound, "tenant_not_found", "No such tenant.")
	ErrExists      = errs.E(errs.KindConflict, "tenant_exists", "A tenant with this id already exists.")
	ErrBillingBusy = errs.E(errs.KindUnavailable, "billing_busy", "The tenant's billing state is being changed by another request; try again.")
)

// billingWriteTimeout bounds a billing write (claim and update) once it is decided.
const billingWriteTimeout = 10 * time.Second

// Patch is a partial update; nil fields are left alone.
type Patch struct {
	Name         *string
	Status       *Status
	Plan         *string
	PlanOverride *string // "" clears the override
	Billing      *Billing
	RequireMFA   *bool
	UpdatedAt    time.Time
}

// Provisioner creates a tenant's own collections (users, audit, ...). Each domain package that
// keeps per-tenant data contributes one.
type Provisioner func(ctx context.Context, tenantID string) error

// ChangeListener hears about every change to a tenant, its creation included, with the state
// stored, so caches on every replica can take it (the gateway's tenant cache hears it through
// Redis pub/sub).
type ChangeListener func(ctx context.Context, t *Tenant)

// Manager holds the tenant rules.
type Manager struct {
	Store        Store
	Plans        *plan.Catalog
	Audit        *audit.Log
	Provisioners []Provisioner
	OnChange     ChangeListener
	// OnRemove hears about a tenant removed, for the same caches.
	OnRemove func(ctx context.Context, id string)
	// Cached, when set, is where Exists looks first: the request path's tenant cache, which
	// answers an unknown id from memory while it holds every tenant (and reads the store
	// otherwise). nil: Exists reads the store.
	Cached func(ctx context.Context, id string) (*Snapshot, error)
	Now    func() time.Time

	// provisioning serialises the making of tenants' collections in this process (see
	// Create).
	provisioning sync.Mutex
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

// Create makes a tenant from a display name, with its collections, on the default plan. The
// id is the slug of the name.
func (m *Manager) Create(ctx context.Context, actor identity.Actor, name string) (*Tenant, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return nil, errs.E(errs.KindInvalid, "invalid_tenant", "Tenant name must be 1 to 100 characters.")
	}
	id := Slug(name)
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	now := m.now()
	t := &Tenant{ID: id, Name: name, Status: StatusActive, Plan: m.Plans.Default().ID, CreatedAt: now, UpdatedAt: now, Rev: 1}
	if err := m.Store.Insert(ctx, t); err != nil {
		if err == ErrExists {
			return nil, ErrExists
		}
		return nil, errs.Internal(err, "Could not create the tenant.")
	}
	if err := m.provision(ctx, id); err != nil {
		// Without transactions, undo by hand: a tenant without its collections must not
		// stay visible. Collections already made are idempotent to create again.
		_ = m.Store.Delete(context.WithoutCancel(ctx), id)
		return nil, errs.Internal(err, "Could not create the tenant's storage.")
	}
	m.Audit.Record(ctx, id, actor, audit.ActionTenantCreate, id, audit.OutcomeSuccess, map[string]any{"name": name})
	// Announced once its storage exists: a cache that holds every tenant learns of it here.
	if m.OnChange != nil {
		m.OnChange(ctx, t)
	}
	return t, nil
}

// provision runs the provisioners for a new tenant, one tenant at a time. Creating collections
// and indexes changes the store's schema: in the embedded store every other connection to the
// SQLite file reads the whole schema again before its next statement, so creations that
// overlap make each other slower than the same creations in turn. With every tenant in one
// file, eight at once took 7.5 s each at 1,000 tenants and failed with SQLITE_BUSY at 5,000;
// spread over 64 files (store.SpreadTenants), 190-320 ms each without this lock and 130-190
// ms with it (cmd/storebench).
func (m *Manager) provision(ctx context.Context, id string) error {
	m.provisioning.Lock()
	defer m.provisioning.Unlock()
	for _, provision := range m.Provisioners {
		if err := provision(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes a tenant record; used to undo a signup that failed half-way.
func (m *Manager) Remove(ctx context.Context, id string) error {
	if err := m.Store.Delete(ctx, id); err != nil {
		return err
	}
	if m.OnRemove != nil {
		m.OnRemove(ctx, id)
	}
	return nil
}

// Lookup returns a tenant without an access check, for the data plane and for signup.
func (m *Manager) Lookup(ctx context.Context, id string) (*Tenant, error) {
	t, err := m.Store.Get(ctx, id)
	if err == ErrNotFound {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, errs.Internal(err, "Could not read the tenant.")
	}
	return t, nil
}

// Exists reports whether id names a tenant, for signup. Reading the store for an id it does not
// hold reads every tenant in the embedded store (FerretDB's SQLite backend scans for _id: 85 ms
// at 10,000 tenants on a loaded machine), so Cached answers when it can. An answer of false
// that is out of date (a tenant another replica created a moment ago) costs nothing worse
// than Create's ErrExists.
func (m *Manager) Exists(ctx context.Context, id string) (bool, error) {
	var err error
	if m.Cached != nil {
		_, err = m.Cached(ctx, id)
	} else {
		_, err = m.Lookup(ctx, id)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// ByCustomer returns the tenant whose Stripe customer is customerID, for billing's webhooks;
// ErrNotFound when none.
func (m *Manager) ByCustomer(ctx context.Context, customerID string) (*Tenant, error) {
	return m.Store.FindByCustomer(ctx, customerID)
}

// ListByBillingStatus returns the tenants in billing status s, for billing's scheduler. Store
// failures come back as they are, for billing to classify.
func (m *Manager) ListByBillingStatus(ctx context.Context, s BillingStatus) ([]*Tenant, error) {
	return m.Store.ListByBillingStatus(ctx, s)
}

// UpdateBilling applies edit to tenant id's plan and billing state and, when edit reports a
// change, stores both as the next billing revision and announces the tenant to the caches. It
// returns the tenant as stored and whether it changed; store failures come back as they are,
// for billing to classify.
//
// FerretDB has no atomic conditional update, so writers are serialised by claiming the next
// revision number: of two replicas reading revision r, one claims r+1 and writes; the other
// reads again and calls edit again, on the newer state. edit may therefore run more than once,
// and decides on the copies it is given.
func (m *Manager) UpdateBilling(ctx context.Context, id string, edit func(t *Tenant, b *Billing) bool) (*Tenant, bool, error) {
	for attempt := 0; attempt < 20; attempt++ {
		t, err := m.Store.Get(ctx, id)
		if err != nil {
			return nil, false, err
		}
		var b Billing
		if t.Billing != nil {
			b = *t.Billing
		}
		if !edit(t, &b) {
			return t, false, nil
		}
		// A claim whose writer died before writing blocks the revision until it expires and is
		// swept; keep that short. The claim and the write are not abandoned when the caller's
		// context ends (a tick's deadline, a webhook client hanging up): a claim stored but
		// reported as failed, or a write applied but reported as failed, would block the
		// revision or spend a payment attempt without making it.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), billingWriteTimeout)
		won, err := m.Store.ClaimBillingRevision(wctx, id, b.Rev+1, m.now().Add(time.Minute))
		if err != nil {
			cancel()
			return nil, false, err
		}
		if !won {
			cancel()
			time.Sleep(time.Duration(1+rand.IntN(10)) * time.Millisecond)
			continue
		}
		b.Rev++
		planID := t.Plan
		updated, err := m.Store.Update(wctx, id, Patch{Billing: &b, Plan: &planID, UpdatedAt: m.now()})
		cancel()
		if err != nil {
			return nil, false, err
		}
		if m.OnChange != nil {
			m.OnChange(ctx, updated)
		}
		return updated, true, nil
	}
	return nil, false, ErrBillingBusy
}

// Get returns a tenant the principal may see: admins any, owners their own.
func (m *Manager) Get(ctx context.Context, p identity.Principal, id string) (*Tenant, error) {
	if !p.CanAccessTenant(id, identity.RoleOwner) {
		return nil, errs.ErrForbidden
	}
	return m.Lookup(ctx, id)
}

// List returns every tenant to an admin and the owner's own tenant to an owner.
func (m *Manager) List(ctx context.Context, p identity.Principal) ([]*Tenant, error) {
	switch p.Role {
	case identity.RoleAdmin:
		ts, err := m.Store.List(ctx)
		if err != nil {
			return nil, errs.Internal(err, "Could not list tenants.")
		}
		return ts, nil
	case identity.RoleOwner:
		t, err := m.Lookup(ctx, p.TenantID)
		if err != nil {
			return nil, err
		}
		return []*Tenant{t}, nil
	}
	return nil, errs.ErrForbidden
}

// Update is the request of PATCH /tenants/{id}.
type Update struct {
	Name   *string
	Status *string
	Plan   *string // sets the admin override; "" clears it
	// RequireMFA makes MFA a condition of the API for the tenant's members.
	RequireMFA *bool
}

// Apply changes a tenant. Owners may rename their own tenant; status and plan are the
// platform's to change (owners change plans through billing).
func (m *Manager) Apply(ctx context.Context, p identity.Principal, actor identity.Actor, id string, u Update) (*Tenant, error) {
	if !p.CanAccessTenant(id, identity.RoleOwner) {
		return nil, errs.ErrForbidden
	}
	if (u.Status != nil || u.Plan != nil) && p.Role != identity.RoleAdmin {
		return nil, errs.E(errs.KindForbidden, "forbidden", "Only a platform admin may change a tenant's status or plan.")
	}
	patch := Patch{UpdatedAt: m.now()}
	detail := map[string]any{}
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		if name == "" || utf8.RuneCountInString(name) > 100 {
			return nil, errs.E(errs.KindInvalid, "invalid_tenant", "Tenant name must be 1 to 100 characters.")
		}
		patch.Name = &name
		detail["name"] = name
	}
	if u.Status != nil {
		s := Status(*u.Status)
		if !s.Valid() {
			return nil, errs.Ef(errs.KindInvalid, "invalid_status", "Status must be %q or %q.", StatusActive, StatusSuspended)
		}
		patch.Status = &s
		detail["status"] = string(s)
	}
	if u.Plan != nil {
		if *u.Plan != "" {
			if _, ok := m.Plans.Get(*u.Plan); !ok {
				return nil, errs.Ef(errs.KindInvalid, "unknown_plan", "No plan %q in the catalog.", truncate(*u.Plan, 64))
			}
		}
		patch.PlanOverride = u.Plan
		detail["plan_override"] = *u.Plan
	}
	if u.RequireMFA != nil {
		patch.RequireMFA = u.RequireMFA
		detail["require_mfa"] = *u.RequireMFA
	}
	if len(detail) == 0 {
		return nil, errs.E(errs.KindBadRequest, "bad_request", "Nothing to change: give name, status, plan or require_mfa.")
	}
	t, err := m.Store.Update(ctx, id, patch)
	if err == ErrNotFound {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, errs.Internal(err, "Could not update the tenant.")
	}
	m.Audit.Record(ctx, id, actor, audit.ActionTenantUpdate, id, audit.OutcomeSuccess, detail)
	if m.OnChange != nil {
		m.OnChange(ctx, t)
	}
	return t, nil
}
