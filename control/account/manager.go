package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
)

// Login back-off: after LockAfter consecutive failures the account is locked for
// LockBase·2^(failures−LockAfter), at most LockMax. A success resets the count.
const (
	LockAfter = 5
	LockBase  = 5 * time.Second
	LockMax   = 15 * time.Minute
)

// InvitationTTL is how long an invitation can be used.
const InvitationTTL = 7 * 24 * time.Hour

// maxDirectoryTenants bounds the directory lookup of one email.
const maxDirectoryTenants = 20

// Manager holds the account rules and the auth flows.
type Manager struct {
	Store     Store
	Tenants   *tenant.Manager
	Keys      *token.Keys
	Refresh   *token.Refresher
	Passwords *Hasher
	Audit     *audit.Log
	Now       func() time.Time
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

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

	existing, err := m.Tenants.Lookup(ctx, tenantID)
	if err != nil && err != tenant.ErrNotFound {
		return nil, err
	}
	if existing != nil && req.InviteToken == "" {
		return nil, ErrInvitationRequired // before hashing: refusing costs nothing
	}
	hash, err := m.Passwords.Hash(ctx, req.Password)
	if err != nil {
		return nil, hashErr(err)
	}
	now := m.now()
	user := &User{ID: "usr_" + token.RandomID(12), Email: email, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	actor.UserID, actor.TenantID = user.ID, tenantID

	if existing == nil {
		user.Role = identity.RoleOwner
		_, err := m.Tenants.Create(ctx, actor, req.Tenant)
		switch {
		case err == tenant.ErrExists:
			existing = &tenant.Tenant{ID: tenantID} // lost a race with another signup: join instead
		case err != nil:
			return nil, err
		default:
			if err := m.Store.InsertUser(ctx, tenantID, user); err != nil {
				_ = m.Tenants.Remove(context.WithoutCancel(ctx), tenantID)
				return nil, storeErr(err, "Could not create the account.")
			}
		}
	}
	if existing != nil {
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
	return &SignupResult{UserID: user.ID, TenantID: tenantID, Role: user.Role}, nil
}

// join adds user to an existing tenant through an invitation.
func (m *Manager) join(ctx context.Context, tenantID string, user *User, inviteToken string) error {
	if inviteToken == "" {
		return ErrInvitationRequired
	}
	if len(inviteToken) > 128 {
		return ErrInvalidInvitation
	}
	if _, err := m.Store.UserByEmail(ctx, tenantID, user.Email); err == nil {
		return ErrEmailTaken
	} else if err != ErrUserNotFound {
		return errs.Internal(err, "Could not read the account.")
	}
	inv, err := m.Store.ClaimInvitation(ctx, tenantID, hashInvitation(inviteToken), user.Email, m.now())
	if err != nil {
		return storeErr(err, "Could not read the invitation.")
	}
	user.Role = inv.Role
	return storeErr(m.Store.InsertUser(ctx, tenantID, user), "Could not create the account.")
}

// LoginRequest is the body of POST /auth/login; Tenant is the body's tenant, else the
// request's subdomain or X-Tenant-ID (the API fills it in).
type LoginRequest struct {
	Email    string
	Password string
	Tenant   string
}

// Login checks a password and returns tokens. Unknown tenant, unknown email and wrong
// password get the same answer, after the same work.
func (m *Manager) Login(ctx context.Context, actor identity.Actor, req LoginRequest) (*TokenPair, error) {
	email, err := NormalizeEmail(req.Email)
	if err != nil || len(req.Password) > 4*MaxPasswordLen {
		return nil, ErrInvalidCredentials
	}
	tenantID, err := m.loginTenant(ctx, email, req.Tenant)
	if err != nil {
		return nil, err
	}
	key := loginKey(tenantID, email)
	now := m.now()
	failures, err := m.Store.LoginFailures(ctx, key)
	if err != nil {
		return nil, errs.Internal(err, "Could not read the login state.")
	}
	if until := lockedUntil(failures); until.After(now) {
		return nil, lockedErr(until.Sub(now))
	}

	var user *User
	if tenantID != "" {
		user, err = m.Store.UserByEmail(ctx, tenantID, email)
		if err != nil && err != ErrUserNotFound {
			return nil, errs.Internal(err, "Could not read the account.")
		}
	}
	encoded := ""
	if user != nil {
		encoded = user.PasswordHash
	}
	ok, err := m.Passwords.Verify(ctx, req.Password, encoded)
	if err != nil {
		return nil, hashErr(err)
	}
	actor.TenantID = tenantID
	if !ok {
		return nil, m.loginFailed(ctx, actor, tenantID, email, key, user)
	}
	if failures.Count > 0 {
		_ = m.Store.ResetLogin(ctx, key)
	}
	actor.UserID, actor.Role = user.ID, user.Role
	pair, err := m.issue(ctx, tenantID, user, "")
	if err != nil {
		return nil, err
	}
	m.Audit.Record(ctx, tenantID, actor, audit.ActionLogin, user.ID, audit.OutcomeSuccess, nil)
	return pair, nil
}

// loginTenant picks the tenant of a login: the hint when given, else the only tenant the
// directory knows for the email. "" means no account anywhere.
func (m *Manager) loginTenant(ctx context.Context, email, hint string) (string, error) {
	if hint != "" {
		if hint == store.SystemTenant {
			return hint, nil
		}
		if tenant.ValidateID(hint) != nil {
			return "", nil
		}
		if _, err := m.Tenants.Lookup(ctx, hint); err == tenant.ErrNotFound {
			return "", nil
		} else if err != nil {
			return "", err
		}
		return hint, nil
	}
	ids, err := m.Store.TenantsOf(ctx, email, maxDirectoryTenants)
	if err != nil {
		return "", errs.Internal(err, "Could not read the directory.")
	}
	switch len(ids) {
	case 0:
		return "", nil
	case 1:
		return ids[0], nil
	}
	return "", ErrTenantRequired
}

func (m *Manager) loginFailed(ctx context.Context, actor identity.Actor, tenantID, email, key string, user *User) error {
	now := m.now()
	failures, err := m.Store.RecordLoginFailure(ctx, key, now)
	if err != nil {
		return errs.Internal(err, "Could not record the failed login.")
	}
	target := ""
	if user != nil {
		target = user.ID
	}
	auditTenant := tenantID
	if auditTenant == "" {
		auditTenant = store.SystemTenant
	}
	m.Audit.Record(ctx, auditTenant, actor, audit.ActionLogin, target, audit.OutcomeFailure,
		map[string]any{"email": email, "failures": failures.Count})
	if until := lockedUntil(failures); until.After(now) {
		return lockedErr(until.Sub(now))
	}
	return ErrInvalidCredentials
}

// lockedUntil is when the back-off after these failures ends (zero when there is none).
func lockedUntil(f LoginFailures) time.Time {
	if f.Count < LockAfter {
		return time.Time{}
	}
	return f.Last.Add(lockDuration(f.Count))
}

func lockDuration(failures int) time.Duration {
	exp := failures - LockAfter
	if exp > 20 {
		return LockMax
	}
	d := LockBase << exp
	if d > LockMax {
		return LockMax
	}
	return d
}

func lockedErr(d time.Duration) error {
	return &errs.Error{Kind: errs.KindTooMany, Code: "login_locked",
		Message: "Too many failed logins; try again later.", RetryAfter: d}
}

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

// Refresh rotates a refresh token: the old one is spent, a new pair is returned in the same
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
	if err != nil {
		return nil, storeErr(err, "Could not read the account.")
	}
	return u, nil
}

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

// Sweep deletes failed-login records older than a day (longer than any back-off).
func (m *Manager) Sweep(ctx context.Context) (int64, error) {
	return m.Store.DeleteStaleLogins(ctx, m.now().Add(-24*time.Hour))
}

func hashInvitation(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
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
