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

// maxDirectoryTenants bounds the accounts a login without a tenant checks: each costs one
// argon2 hash.
const maxDirectoryTenants = 10

// Manager holds the account rules and the auth flows.
type Manager struct {
	Store     Store
	Tenants   *tenant.Manager
	Keys      *token.Keys
	Refresh   *token.Refresher
	Passwords PasswordHasher
	Audit     *audit.Log
	Now       func() time.Time
}

// PasswordHasher hashes and checks passwords; *Hasher is the one in use.
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (bool, error)
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
	if existing != nil {
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

// LoginRequest is the body of POST /auth/login; Tenant is the body's tenant, else the
// request's subdomain or X-Tenant-ID (the API fills it in).
type LoginRequest struct {
	Email    string
	Password string
	Tenant   string
}

// Login checks a password and returns tokens. Unknown tenant, unknown email and wrong
// password get the same answer, after the same work: one hash per account checked, one when
// there is none. Without a tenant the password is checked against each of the email's
// accounts, so that an account someone else opened with that email in a tenant of their own
// cannot stand in the way: only its owner's password matches it.
func (m *Manager) Login(ctx context.Context, actor identity.Actor, req LoginRequest) (*TokenPair, error) {
	email, err := NormalizeEmail(req.Email)
	if err != nil || len(req.Password) > 4*MaxPasswordLen {
		return nil, ErrInvalidCredentials
	}
	tenants, err := m.loginTenants(ctx, email, req.Tenant)
	if err != nil {
		return nil, err
	}
	if len(tenants) == 0 {
		tenants = []string{""} // no account: a check against the dummy hash, counted like one
	}
	var checks, matches []*loginCheck
	for _, tenantID := range tenants {
		c, err := m.checkLogin(ctx, tenantID, email, req.Password)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
		if c.ok {
			matches = append(matches, c)
		}
	}
	switch len(matches) {
	case 0:
		return nil, m.loginFailed(ctx, actor, email, checks)
	case 1:
		return m.loggedIn(ctx, actor, matches[0])
	}
	for _, c := range matches {
		_ = m.Store.ResetLogin(ctx, c.key) // the password was right: no back-off for it
	}
	return nil, ErrTenantRequired
}

// loginTenants names the tenants whose account of email a login checks: the hint's when given,
// else every tenant the directory knows for the email. None means no account anywhere.
func (m *Manager) loginTenants(ctx context.Context, email, hint string) ([]string, error) {
	if hint != "" {
		if hint == store.SystemTenant {
			return []string{hint}, nil
		}
		if tenant.ValidateID(hint) != nil {
			return nil, nil
		}
		if _, err := m.Tenants.Lookup(ctx, hint); err == tenant.ErrNotFound {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		return []string{hint}, nil
	}
	ids, err := m.Store.TenantsOf(ctx, email, maxDirectoryTenants+1)
	if err != nil {
		return nil, errs.Internal(err, "Could not read the directory.")
	}
	if len(ids) > maxDirectoryTenants {
		return nil, ErrTenantRequired
	}
	return ids, nil
}

// loginCheck is a login's try of the account of an email in one tenant.
type loginCheck struct {
	tenantID string // "" when the email has no account
	key      string
	user     *User // nil when the tenant has no such account
	failures LoginFailures
	locked   time.Duration // the account's back-off had not ended: the password was not checked
	ok       bool
}

// checkLogin counts an attempt on the account's own counter, the one logins naming the tenant
// use too, and only then checks the password: however the attempts arrive and however many
// run at once, an account has at most LockAfter passwords checked before its back-off.
func (m *Manager) checkLogin(ctx context.Context, tenantID, email, password string) (*loginCheck, error) {
	c := &loginCheck{tenantID: tenantID, key: loginKey(tenantID, email)}
	if tenantID != "" {
		user, err := m.Store.UserByEmail(ctx, tenantID, email)
		if err != nil && err != ErrUserNotFound {
			return nil, errs.Internal(err, "Could not read the account.")
		}
		c.user = user
	}
	var err error
	if c.failures, c.locked, err = m.reserveAttempt(ctx, c.key); err != nil || c.locked > 0 {
		return c, err
	}
	encoded := ""
	if c.user != nil {
		encoded = c.user.PasswordHash
	}
	if c.ok, err = m.Passwords.Verify(ctx, password, encoded); err != nil {
		// No password was checked (the hasher was busy): the attempt does not count.
		_ = m.Store.ReleaseLogin(context.WithoutCancel(ctx), c.key, c.failures.Seq)
		return nil, hashErr(err)
	}
	return c, nil
}

// reserveAttempt counts a login attempt on key before its password is checked, so that attempts
// running at once cannot all pass the back-off: each takes the next attempt number and the
// store gives every number to one of them. It returns the failures with this attempt among
// them, or how long the back-off still runs. A number lost to another attempt means that one
// was counted, so the retries end at the back-off.
func (m *Manager) reserveAttempt(ctx context.Context, key string) (LoginFailures, time.Duration, error) {
	for {
		now := m.now()
		f, err := m.Store.LoginFailures(ctx, key)
		if err != nil {
			return f, 0, errs.Internal(err, "Could not read the login state.")
		}
		if until := lockedUntil(f); until.After(now) {
			return f, until.Sub(now), nil
		}
		f = LoginFailures{Count: f.Count + 1, Last: now, Seq: f.Seq + 1}
		won, err := m.Store.ReserveLogin(ctx, key, f.Seq, now)
		if err != nil {
			return f, 0, errs.Internal(err, "Could not record the login attempt.")
		}
		if won {
			return f, 0, nil
		}
	}
}

func (m *Manager) loggedIn(ctx context.Context, actor identity.Actor, c *loginCheck) (*TokenPair, error) {
	_ = m.Store.ResetLogin(ctx, c.key)
	actor.TenantID, actor.UserID, actor.Role = c.tenantID, c.user.ID, c.user.Role
	pair, err := m.issue(ctx, c.tenantID, c.user, "")
	if err != nil {
		return nil, err
	}
	m.Audit.Record(ctx, c.tenantID, actor, audit.ActionLogin, c.user.ID, audit.OutcomeSuccess, nil)
	return pair, nil
}

// loginFailed audits the checked passwords and answers with the back-off when an account is
// locked (the right one may be among them), else with invalid_credentials.
func (m *Manager) loginFailed(ctx context.Context, actor identity.Actor, email string, checks []*loginCheck) error {
	now := m.now()
	var wait time.Duration
	for _, c := range checks {
		locked := c.locked
		if locked == 0 {
			m.auditFailure(ctx, actor, email, c)
			locked = lockedUntil(c.failures).Sub(now)
		}
		wait = max(wait, locked)
	}
	if wait > 0 {
		return lockedErr(wait)
	}
	return ErrInvalidCredentials
}

func (m *Manager) auditFailure(ctx context.Context, actor identity.Actor, email string, c *loginCheck) {
	actor.TenantID = c.tenantID
	target := ""
	if c.user != nil {
		target = c.user.ID
	}
	auditTenant := c.tenantID
	if auditTenant == "" {
		auditTenant = store.SystemTenant
	}
	m.Audit.Record(ctx, auditTenant, actor, audit.ActionLogin, target, audit.OutcomeFailure,
		map[string]any{"email": email, "failures": c.failures.Count})
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
