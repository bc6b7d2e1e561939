package account

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
)

// ErrTenantSuspended refuses the members of a tenant that an admin suspended, with the code and
// status the gateway gives a suspended tenant.
var ErrTenantSuspended = errs.E(errs.KindPaymentRequired, "tenant_suspended", "This tenant is suspended by the platform's administrators.")

// errRolesBusy answers a role change that kept losing the tenant's roles revision to others.
var errRolesBusy = &errs.Error{Kind: errs.KindUnavailable, Code: "roles_busy",
	Message: "The tenant's roles are being changed by another request; try again.", RetryAfter: time.Second}

// Role changes: how often one re-reads after losing a revision, how long a claimed revision
// stays blocked when its writer dies before writing (until the claim is swept), and how long
// a claim and its write may take, well within that.
const (
	roleChangeAttempts = 20
	roleClaimTTL       = time.Minute
	roleWriteTimeout   = 10 * time.Second
)

// CurrentPrincipal is the caller behind a verified access token as the store knows them now:
// the token's role claim may be access_ttl old, so every owner or admin decision starts here.
// A caller who no longer exists (or whose tenant does not) holds an invalid token; the members
// of a tenant suspended by an admin are refused (suspended by billing, they are not: the owner
// must still reach the billing routes to pay).
func (m *Manager) CurrentPrincipal(ctx context.Context, p identity.Principal) (identity.Principal, error) {
	return m.Admit(ctx, p, true, false)
}

// Admit is the account side of letting a caller in. With fresh (owner and admin routes) it
// is CurrentPrincipal: the stored role, refusing a deleted caller or an admin-suspended
// tenant. With checkMFA it refuses a member of a tenant that requires MFA while they have
// none (mfa_enrollment_required). The tenant and the user are each read at most once, and a
// store failure refuses: a require_mfa tenant is never let through because it could not be
// read.
func (m *Manager) Admit(ctx context.Context, p identity.Principal, fresh, checkMFA bool) (identity.Principal, error) {
	if !fresh && !checkMFA {
		return p, nil
	}
	var t *tenant.Tenant
	if p.TenantID != store.SystemTenant {
		var err error
		t, err = m.Tenants.Lookup(ctx, p.TenantID)
		switch {
		case err == tenant.ErrNotFound && fresh:
			return identity.Principal{}, errs.ErrInvalidToken
		case err == tenant.ErrNotFound:
			t = nil // the route refuses an unknown tenant itself
		case err != nil:
			return identity.Principal{}, err
		}
	}
	needMFA := checkMFA && t != nil && t.RequireMFA
	if !fresh && !needMFA {
		return p, nil
	}
	u, err := m.Store.UserByID(ctx, p.TenantID, p.UserID)
	if err == ErrUserNotFound {
		return identity.Principal{}, errs.ErrInvalidToken
	}
	if err != nil {
		return identity.Principal{}, errs.Internal(err, "Could not read the account.")
	}
	if fresh {
		if t != nil && t.SuspendedByAdmin() {
			return identity.Principal{}, ErrTenantSuspended
		}
		p.Role = u.Role
	}
	if needMFA && !u.MFAEnabled() {
		return identity.Principal{}, ErrMFAEnrollmentRequired
	}
	return p, nil
}

// ChangeRole sets a user's role within a tenant (user or owner); the last owner stays. The
// checks (the caller is still an owner, the target is not the last one) and the change are one
// step: each change claims the tenant's next roles revision before writing, so of two owners
// demoting each other at once, one wins and the other reads the result again and is refused.
func (m *Manager) ChangeRole(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, userID string, role identity.Role) (*User, error) {
	if !p.CanAccessTenant(tenantID, identity.RoleOwner) {
		return nil, errs.ErrForbidden
	}
	if role != identity.RoleUser && role != identity.RoleOwner {
		return nil, errs.E(errs.KindInvalid, "invalid_role", "Role must be \"user\" or \"owner\".")
	}
	if _, err := m.Tenants.Lookup(ctx, tenantID); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < roleChangeAttempts; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(1+rand.IntN(10)) * time.Millisecond)
		}
		// The revision is read before the state it guards: a change these reads miss has
		// claimed rev+1 already, and this attempt's claim fails.
		rev, err := m.Store.RolesRevision(ctx, tenantID)
		if err != nil {
			return nil, errs.Internal(err, "Could not read the tenant's roles.")
		}
		if p.Role != identity.RoleAdmin {
			caller, err := m.Store.UserByID(ctx, tenantID, p.UserID)
			if err == ErrUserNotFound || err == nil && caller.Role != identity.RoleOwner {
				return nil, errs.ErrForbidden
			}
			if err != nil {
				return nil, errs.Internal(err, "Could not read the account.")
			}
		}
		current, err := m.Store.UserByID(ctx, tenantID, userID)
		if err != nil {
			return nil, storeErr(err, "Could not read the account.")
		}
		if current.Role == role {
			return current, nil // nothing changes, so no revision is spent
		}
		if current.Role == identity.RoleOwner {
			owners, err := m.Store.CountRole(ctx, tenantID, identity.RoleOwner)
			if err != nil {
				return nil, errs.Internal(err, "Could not count owners.")
			}
			if owners <= 1 {
				return nil, ErrLastOwner
			}
		}
		u, won, err := m.claimAndSetRole(ctx, tenantID, userID, role, rev+1)
		if err != nil {
			return nil, err
		}
		if !won {
			continue
		}
		m.Audit.Record(ctx, tenantID, actor, audit.ActionRoleChange, userID, audit.OutcomeSuccess,
			map[string]any{"from": string(current.Role), "to": string(role)})
		m.publishMember(ctx, notify.EventMemberRoleChanged, tenantID, map[string]any{"tenant_id": tenantID, "user_id": userID,
			"email": u.Email, "role": string(role), "previous_role": string(current.Role)}, userID, revision(rev+1))
		return u, nil
	}
	return nil, errRolesBusy
}

// claimAndSetRole writes the role as revision rev if this caller is the one to claim it. The
// claim and the write outlive the caller's context: a claim stored but reported as failed, or
// a write abandoned after its claim, would block the revision until the claim is swept.
func (m *Manager) claimAndSetRole(ctx context.Context, tenantID, userID string, role identity.Role, rev int64) (*User, bool, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), roleWriteTimeout)
	defer cancel()
	won, err := m.Store.ClaimRolesRevision(wctx, tenantID, rev, m.now().Add(roleClaimTTL))
	if err != nil {
		return nil, false, errs.Internal(err, "Could not claim the tenant's roles.")
	}
	if !won {
		return nil, false, nil
	}
	u, err := m.Store.SetRole(wctx, tenantID, userID, role, rev, m.now())
	if err != nil {
		return nil, false, storeErr(err, "Could not change the role.")
	}
	return u, true, nil
}
