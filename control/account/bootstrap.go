package account

import (
	"context"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/token"
)

// BootstrapAdmin creates the platform admin if no admin with that email exists yet. An
// existing admin's password is left alone: the config only seeds it.
func (m *Manager) BootstrapAdmin(ctx context.Context, email, password string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := CheckPassword(password); err != nil {
		return err
	}
	if _, err := m.Store.UserByEmail(ctx, store.SystemTenant, email); err == nil {
		return nil
	} else if err != ErrUserNotFound {
		return err
	}
	hash, err := m.Passwords.Hash(ctx, password)
	if err != nil {
		return err
	}
	now := m.now()
	u := &User{ID: "usr_" + token.RandomID(12), Email: email, PasswordHash: hash, Role: identity.RoleAdmin, CreatedAt: now, UpdatedAt: now}
	if err := m.Store.InsertUser(ctx, store.SystemTenant, u); err != nil && err != ErrEmailTaken {
		return err
	}
	if err := m.Store.AddDirectory(ctx, email, store.SystemTenant); err != nil {
		return err
	}
	m.Audit.Record(ctx, store.SystemTenant, identity.Actor{UserID: u.ID, Role: identity.RoleAdmin, TenantID: store.SystemTenant},
		audit.ActionAdminBootstrap, u.ID, audit.OutcomeSuccess, map[string]any{"email": email})
	return nil
}
