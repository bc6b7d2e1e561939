package account

import (
	"context"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
)

// SignupRequest is the body of POST /auth/signup.
type SignupRequest struct {
	Email       string
	Password    string
	Tenant      string
	InviteToken string
}

// SignupResult names what signup created.
type SignupResult struct {
	UserID   string
	TenantID string
	Role     identity.Role
}

// Signup creates an account. For a new tenant id the tenant is created with the caller as its
// owner; joining an existing tenant takes an invitation for the caller's email.
func (m *Manager) Signup(ctx context.Context, actor identity.Actor, req SignupRequest) (*SignupResult, error) {
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return nil, err
	}
	if err := CheckPassword(req.Password); err != nil {
		return nil, err
	}
	tenantID := tenant.Slug(req.Tenant)
	if err := tenant.ValidateID(tenantID); err != nil {
		return nil, err
	}

	existing, err := m.Tenants.Exists(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if existing {
		// The invitation first, before the email is looked at or the password hashed: a bad
		// one is refused alike whether or not the email has an account here, and cheaply.
		hash, err := invitationHash(req.InviteToken)
		if err != nil {
			return nil, err
		}
		if _, err := m.Store.UsableInvitation(ctx, tenantID, hash, email, m.now()); err != nil {
			return nil, storeErr(err, "Could not read the invitation.")
		}
	}
	hash, err := m.Passwords.Hash(ctx, req.Password)
	if err != nil {
		return nil, hashErr(err)
	}
	now := m.now()
	user := &User{ID: "usr_" + token.RandomID(12), Email: email, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	actor.UserID, actor.TenantID = user.ID, tenantID

	if !existing {
		user.Role = identity.RoleOwner
		_, err := m.Tenants.Create(ctx, actor, req.Tenant)
		switch {
		case err == tenant.ErrExists:
			existing = true // lost a race with another signup (or a cache behind): join instead
		case err != nil:
			return nil, err
		default:
			if err := m.Store.InsertUser(ctx, tenantID, user); err != nil {
				_ = m.Tenants.Remove(context.WithoutCancel(ctx), tenantID)
				return nil, storeErr(err, "Could not create the account.")
			}
		}
	}
	if existing {
		if err := m.join(ctx, tenantID, user, req.InviteToken); err != nil {
			return nil, err
		}
	}
	if err := m.Store.AddDirectory(ctx, email, tenantID); err != nil {
		return nil, errs.Internal(err, "Could not index the account.")
	}
	actor.Role = user.Role
	m.Audit.Record(ctx, tenantID, actor, audit.ActionSignup, user.ID, audit.OutcomeSuccess,
		map[string]any{"email": email, "role": string(user.Role)})
	m.publishMember(ctx, notify.EventMemberJoined, tenantID,
		map[string]any{"tenant_id": tenantID, "user_id": user.ID, "email": email, "role": string(user.Role)}, user.ID)
	return &SignupResult{UserID: user.ID, TenantID: tenantID, Role: user.Role}, nil
}

// join adds user to an existing tenant through an invitation. An email that already has an
// account there spends its invitation on the conflict: being for that email, it could admit
// no one else.
func (m *Manager) join(ctx context.Context, tenantID string, user *User, inviteToken string) error {
	hash, err := invitationHash(inviteToken)
	if err != nil {
		return err
	}
	inv, err := m.Store.ClaimInvitation(ctx, tenantID, hash, user.Email, m.now())
	if err != nil {
		return storeErr(err, "Could not read the invitation.")
	}
	user.Role = inv.Role
	return storeErr(m.Store.InsertUser(ctx, tenantID, user), "Could not create the account.")
}

// invitationHash refuses a missing or oversized invitation token and hashes the rest for lookup.
func invitationHash(token string) (string, error) {
	if token == "" {
		return "", ErrInvitationRequired
	}
	if len(token) > 128 {
		return "", ErrInvalidInvitation
	}
	return hashInvitation(token), nil
}
