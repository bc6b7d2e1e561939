package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
)

// InvitationTTL is how long an invitation can be used.
const InvitationTTL = 7 * 24 * time.Hour

// Invite creates an invitation to tenantID for email with role (user or owner).
func (m *Manager) Invite(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, email string, role identity.Role) (*IssuedInvitation, error) {
	if !p.CanAccessTenant(tenantID, identity.RoleOwner) {
		return nil, errs.ErrForbidden
	}
	if role == "" {
		role = identity.RoleUser
	}
	if role != identity.RoleUser && role != identity.RoleOwner {
		return nil, errs.E(errs.KindInvalid, "invalid_role", "An invitation's role must be \"user\" or \"owner\".")
	}
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if _, err := m.Tenants.Lookup(ctx, tenantID); err != nil {
		return nil, err
	}
	if _, err := m.Store.UserByEmail(ctx, tenantID, email); err == nil {
		return nil, ErrEmailTaken
	} else if err != ErrUserNotFound {
		return nil, errs.Internal(err, "Could not read the account.")
	}
	raw := "inv_" + token.RandomID(24)
	now := m.now()
	inv := &Invitation{Hash: hashInvitation(raw), Email: email, Role: role, InvitedBy: p.UserID, CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}
	if err := m.Store.InsertInvitation(ctx, tenantID, inv); err != nil {
		return nil, errs.Internal(err, "Could not store the invitation.")
	}
	m.Audit.Record(ctx, tenantID, actor, audit.ActionInvite, email, audit.OutcomeSuccess, map[string]any{"role": string(role)})
	return &IssuedInvitation{Token: raw, TenantID: tenantID, Email: email, Role: role, ExpiresAt: inv.ExpiresAt}, nil
}

// CreateTenant is the admin's POST /tenants: a tenant and an invitation for its first owner.
func (m *Manager) CreateTenant(ctx context.Context, p identity.Principal, actor identity.Actor, name, ownerEmail string) (*tenant.Tenant, *IssuedInvitation, error) {
	if p.Role != identity.RoleAdmin {
		return nil, nil, errs.ErrForbidden
	}
	if _, err := NormalizeEmail(ownerEmail); err != nil {
		return nil, nil, err
	}
	t, err := m.Tenants.Create(ctx, actor, name)
	if err != nil {
		return nil, nil, err
	}
	inv, err := m.Invite(ctx, p, actor, t.ID, ownerEmail, identity.RoleOwner)
	if err != nil {
		return nil, nil, err
	}
	return t, inv, nil
}

// ListUsers returns a tenant's users to its owners and to admins.
func (m *Manager) ListUsers(ctx context.Context, p identity.Principal, tenantID string) ([]*User, error) {
	if !p.CanAccessTenant(tenantID, identity.RoleOwner) {
		return nil, errs.ErrForbidden
	}
	if _, err := m.Tenants.Lookup(ctx, tenantID); err != nil {
		return nil, err
	}
	users, err := m.Store.ListUsers(ctx, tenantID)
	if err != nil {
		return nil, errs.Internal(err, "Could not list users.")
	}
	return users, nil
}

func hashInvitation(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}
