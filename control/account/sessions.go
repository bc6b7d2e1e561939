package account

import (
	"context"
	"time"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/token"
)

// issue makes an access token and a refresh token in family (new when "").
func (m *Manager) issue(ctx context.Context, tenantID string, u *User, family string) (*TokenPair, error) {
	access, err := m.Keys.Issue(identity.Principal{UserID: u.ID, TenantID: tenantID, Role: u.Role})
	if err != nil {
		return nil, errs.Internal(err, "Could not sign the token.")
	}
	refresh, err := m.Refresh.Issue(ctx, tenantID, u.ID, family)
	if err != nil {
		return nil, err
	}
	return &TokenPair{AccessToken: access, TokenType: "bearer", ExpiresIn: int64(m.Keys.TTL / time.Second), RefreshToken: refresh}, nil
}

// RefreshTokens rotates a refresh token: the old one is spent, a new pair is returned in the same
// family with the user's current role. A spent token presented again revokes the family.
func (m *Manager) RefreshTokens(ctx context.Context, actor identity.Actor, raw string) (*TokenPair, error) {
	rec, err := m.Refresh.Spend(ctx, raw)
	if err == token.ErrRefreshReused {
		actor.UserID, actor.TenantID = rec.UserID, rec.TenantID
		m.Audit.Record(ctx, rec.TenantID, actor, audit.ActionRefreshReuse, rec.UserID, audit.OutcomeDenied,
			map[string]any{"family": rec.Family})
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	user, err := m.Store.UserByID(ctx, rec.TenantID, rec.UserID)
	if err == ErrUserNotFound {
		return nil, token.ErrRefreshInvalid
	}
	if err != nil {
		return nil, errs.Internal(err, "Could not read the account.")
	}
	return m.issue(ctx, rec.TenantID, user, rec.Family)
}

// Logout revokes the family of the given refresh token, or every session of the caller when
// none is given.
func (m *Manager) Logout(ctx context.Context, p identity.Principal, actor identity.Actor, raw string) error {
	if raw == "" {
		if err := m.Refresh.RevokeUser(ctx, p.TenantID, p.UserID); err != nil {
			return err
		}
	} else {
		rec, err := m.Refresh.Lookup(ctx, raw)
		if err != nil {
			return err
		}
		if rec.TenantID != p.TenantID || rec.UserID != p.UserID {
			return errs.E(errs.KindForbidden, "forbidden", "That refresh token belongs to someone else.")
		}
		if err := m.Refresh.RevokeFamily(ctx, rec.Family); err != nil {
			return err
		}
	}
	m.Audit.Record(ctx, p.TenantID, actor, audit.ActionLogout, p.UserID, audit.OutcomeSuccess, nil)
	return nil
}

// Me returns the caller's account.
func (m *Manager) Me(ctx context.Context, p identity.Principal) (*User, error) {
	u, err := m.Store.UserByID(ctx, p.TenantID, p.UserID)
	if err == ErrUserNotFound {
		// A well-signed token of a deleted account authenticates no one.
		return nil, errs.ErrInvalidToken
	}
	if err != nil {
		return nil, storeErr(err, "Could not read the account.")
	}
	return u, nil
}
