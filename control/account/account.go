// Package account manages the people behind tokens: users of each tenant (kept in the
// tenant's own t_<tenant>_users collection, or in the shared users collection by tenant_id,
// as store.Layout says), the email → tenant directory used at login,
// invitations, failed-login back-off, and the auth flows (signup, login, refresh, logout).
package account

import (
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
)

// User is a member of one tenant. The same email may be a user of several tenants; each is a
// separate account with its own password.
type User struct {
	ID           string        `bson:"_id" json:"user_id"`
	Email        string        `bson:"email" json:"email"`
	PasswordHash string        `bson:"password_hash" json:"-"`
	Role         identity.Role `bson:"role" json:"role"`
	CreatedAt    time.Time     `bson:"created_at" json:"created_at"`
	UpdatedAt    time.Time     `bson:"updated_at" json:"updated_at"`
	// RoleRev is the tenant's roles revision in which this user's role last changed (see
	// Manager.ChangeRole); the highest over a tenant's users is the tenant's current one.
	RoleRev int64 `bson:"role_rev,omitempty" json:"-"`
	// MFA is the user's TOTP second factor; nil until they enrol.
	MFA *MFA `bson:"mfa,omitempty" json:"-"`
}

// MFAEnabled reports whether a login of u needs a second factor.
func (u *User) MFAEnabled() bool { return u.MFA != nil && u.MFA.Enabled }

// Invitation lets one email join a tenant with a role. Only the token's hash is stored.
type Invitation struct {
	Hash      string        `bson:"_id" json:"-"`
	Email     string        `bson:"email" json:"email"`
	Role      identity.Role `bson:"role" json:"role"`
	InvitedBy string        `bson:"invited_by,omitempty" json:"-"`
	CreatedAt time.Time     `bson:"created_at" json:"created_at"`
	ExpiresAt time.Time     `bson:"expires_at" json:"expires_at"`
	UsedAt    *time.Time    `bson:"used_at" json:"-"`
}

// IssuedInvitation is what the inviter gets back: the only time the token is visible.
type IssuedInvitation struct {
	Token     string        `json:"token"`
	TenantID  string        `json:"tenant_id"`
	Email     string        `json:"email"`
	Role      identity.Role `json:"role"`
	ExpiresAt time.Time     `json:"expires_at"`
}

// TokenPair is the answer of login, MFA verification and refresh.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// Password length bounds, in characters. The upper bound keeps hashing cost bounded.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

var (
	ErrInvalidCredentials = errs.E(errs.KindUnauthorized, "invalid_credentials", "Email or password is incorrect.")
	ErrEmailTaken         = errs.E(errs.KindConflict, "email_taken", "This email already has an account in this tenant.")
	ErrInvitationRequired = errs.E(errs.KindForbidden, "invitation_required", "This tenant exists; joining it needs an invitation.")
	ErrInvalidInvitation  = errs.E(errs.KindForbidden, "invalid_invitation", "The invitation is unknown, used, expired or for another email.")
	ErrTenantRequired     = errs.E(errs.KindBadRequest, "tenant_required", "This email has accounts in several tenants; say which one.")
	ErrUserNotFound       = errs.E(errs.KindNotFound, "user_not_found", "No such user in this tenant.")
	ErrLastOwner          = errs.E(errs.KindConflict, "last_owner", "A tenant must keep at least one owner.")
)

// NormalizeEmail trims and lower-cases an address and checks it is a bare address.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 3 || len(s) > 254 {
		return "", errs.E(errs.KindInvalid, "invalid_email", "Email must be a valid address of at most 254 characters.")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") && !strings.HasSuffix(s, "@localhost") {
		return "", errs.E(errs.KindInvalid, "invalid_email", "Email must be a valid address such as name@example.com.")
	}
	return s, nil
}

// CheckPassword enforces the length policy.
func CheckPassword(p string) error {
	n := utf8.RuneCountInString(p)
	if n < MinPasswordLen || n > MaxPasswordLen || len(p) > 4*MaxPasswordLen {
		return errs.Ef(errs.KindInvalid, "weak_password", "Password must be %d to %d characters.", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}
