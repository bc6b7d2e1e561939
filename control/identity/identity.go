// Package identity names who is calling: roles, the authenticated principal and the actor
// recorded in audit entries. It is the bottom of the domain's import graph.
package identity

// Role is a caller's role. Roles are ordered: user < owner < admin.
type Role string

const (
	RoleUser  Role = "user"  // a member of a tenant
	RoleOwner Role = "owner" // manages a tenant: members, billing
	RoleAdmin Role = "admin" // operates the platform: every tenant
)

func (r Role) rank() int {
	switch r {
	case RoleUser:
		return 1
	case RoleOwner:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r is min or above.
func (r Role) AtLeast(min Role) bool { return r.rank() >= min.rank() && r.Valid() }

// Principal is an authenticated caller, as proven by an access token.
type Principal struct {
	UserID   string
	TenantID string // "system" for platform admins
	Role     Role
}

// CanAccessTenant reports whether p may act on tenant id at role min: admins act on every
// tenant; everybody else only on their own.
func (p Principal) CanAccessTenant(id string, min Role) bool {
	if p.Role == RoleAdmin {
		return true
	}
	return p.TenantID == id && p.Role.AtLeast(min)
}

// Actor is who did something, for the audit log: the principal (empty when anonymous) and
// where the request came from.
type Actor struct {
	UserID    string
	Role      Role
	TenantID  string
	IP        string
	RequestID string
}

// Anonymous returns an actor with no principal, for signup and login.
func Anonymous(ip, requestID string) Actor { return Actor{IP: ip, RequestID: requestID} }
