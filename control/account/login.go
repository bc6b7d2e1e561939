package account

import (
	"context"
	"time"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
)

// Login back-off: after LockAfter consecutive failures the account is locked for
// LockBase·2^(failures−LockAfter), at most LockMax. A success resets the count.
const (
	LockAfter = 5
	LockBase  = 5 * time.Second
	LockMax   = 15 * time.Minute
)

// maxDirectoryTenants bounds the accounts a login without a tenant checks: each costs one
// argon2 hash.
const maxDirectoryTenants = 10

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
		if !c.user.MFAEnabled() { // with MFA on, only the second factor resets (challengeMFA)
			_ = m.Store.ResetLogin(ctx, c.key) // the password was right: no back-off for it
		}
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
	if c.user.MFAEnabled() {
		return nil, m.challengeMFA(ctx, actor, c)
	}
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

// Sweep deletes failed-login records older than a day (longer than any back-off).
func (m *Manager) Sweep(ctx context.Context) (int64, error) {
	return m.Store.DeleteStaleLogins(ctx, m.now().Add(-24*time.Hour))
}
