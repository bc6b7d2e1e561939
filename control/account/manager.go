package account

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
)

// Manager holds the account rules and the auth flows.
type Manager struct {
	Store     Store
	Tenants   *tenant.Manager
	Keys      *token.Keys
	Refresh   *token.Refresher
	Passwords PasswordHasher
	Audit     *audit.Log
	// Notify records member.joined and member.role_changed (nil: none are made).
	Notify notify.Publisher
	Now    func() time.Time
	Logger *zap.Logger // nil: no logging
}

// PasswordHasher hashes and checks passwords; *Hasher is the one in use.
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (bool, error)
}

func (m *Manager) logger() *zap.Logger {
	if m.Logger == nil {
		return zap.NewNop()
	}
	return m.Logger
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

// storeErr passes domain errors through and wraps the rest as internal.
func storeErr(err error, msg string) error {
	if err == nil {
		return nil
	}
	if _, ok := errs.As(err); ok {
		return err
	}
	return errs.Internal(err, msg)
}

func hashErr(err error) error {
	if err == ErrBusy {
		return err
	}
	return errs.Internal(err, "Could not check the password.")
}
