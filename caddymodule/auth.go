package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/token"
)

func init() {
	caddy.RegisterModule(new(Auth))
}

// Auth verifies the bearer access token issued by the control plane, checks it belongs to the
// tenant saas_tenant resolved (it must run first: a config without it is refused at load) and
// that its role is high enough, and tells the upstream who is
// calling (X-User-ID, X-User-Role). Verified tokens are remembered until they expire, so a
// token's signature is checked once, not on every request.
type Auth struct {
	// Lowest role admitted: "user", "owner" or "admin". Default: "user".
	RequireRole string `json:"require_role,omitempty"`
	// Let requests without a bearer token through, anonymous (no identity headers); an
	// Authorization header of another scheme is passed on to the upstream untouched. A bearer
	// token that is present but invalid is still refused. Default: false.
	Optional bool `json:"optional,omitempty"`

	app    *App
	role   identity.Role
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*Auth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.saas_auth",
		New: func() caddy.Module { return new(Auth) },
	}
}

// Provision finds the saas app.
func (h *Auth) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := ctx.App("saas")
	if err != nil {
		return fmt.Errorf("saas_auth: %w", err)
	}
	h.app = app.(*App)
	h.role = identity.RoleUser
	if h.RequireRole != "" {
		h.role = identity.Role(h.RequireRole)
	}
	return nil
}

// Validate checks the role. The Caddyfile parser calls it too, so the rule is written once.
func (h *Auth) Validate() error {
	if h.RequireRole != "" && !identity.Role(h.RequireRole).Valid() {
		return fmt.Errorf("saas_auth: require_role %q: want user, owner or admin", h.RequireRole)
	}
	return nil
}

// ServeHTTP authenticates the request.
func (h *Auth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	svc := h.app.awaitService(r)
	if svc == nil {
		return serviceUnavailable(w, r)
	}
	t, _ := caddyhttp.GetVar(r.Context(), varTenant).(*tenantView)
	if t == nil {
		// The load-time check (checkHandlerOrder) cannot see routes reached by other means,
		// such as invoke: without a tenant, the token alone must not decide.
		h.logger.Error("saas_auth needs saas_tenant before it in the route")
		return reject(w, r, control.ErrMisconfigured)
	}
	hdr := r.Header
	authz := hdr.Get("Authorization")
	raw, ok := token.Bearer(authz)
	if !ok {
		// Under optional, a request without a bearer token (none, or another scheme meant for
		// the upstream) goes through anonymous; a malformed bearer header does not.
		if h.Optional && !hasBearerScheme(authz) {
			return next.ServeHTTP(w, r)
		}
		return reject(w, r, errs.ErrInvalidToken)
	}
	caller, err := h.app.tokens.Verify(raw)
	if err != nil {
		return reject(w, r, errs.ErrInvalidToken)
	}
	p := caller.Principal
	if !memberOrAdmin(p, t.snap.ID) {
		return reject(w, r, control.ErrTenantMismatch)
	}
	if bh := t.billingHeader(); bh != nil {
		// Only now is the caller known to be one the tenant's billing state may be told to.
		w.Header()[headerBillingStatus] = bh
	}
	if !p.Role.AtLeast(h.role) {
		return reject(w, r, control.ErrRoleTooLow)
	}

	hdr[headerUserID] = caller.userIDList()
	hdr[headerUserRole] = roleHeader[p.Role]
	caddyhttp.SetVar(r.Context(), varPrincipal, caller)
	return next.ServeHTTP(w, r)
}

// memberOrAdmin reports whether p may act in the tenant, and so be told its billing state
// (Billing-Status): a member of it or a platform admin.
func memberOrAdmin(p identity.Principal, tenantID string) bool {
	return p.TenantID == tenantID || p.Role == identity.RoleAdmin
}

// roleHeader holds the header value of each role, so no request allocates one.
var roleHeader = map[identity.Role][]string{
	identity.RoleUser: {string(identity.RoleUser)}, identity.RoleOwner: {string(identity.RoleOwner)},
	identity.RoleAdmin: {string(identity.RoleAdmin)},
}

func hasBearerScheme(authz string) bool {
	return len(authz) >= 6 && strings.EqualFold(authz[:6], "bearer")
}

var (
	_ caddy.Provisioner           = (*Auth)(nil)
	_ caddy.Validator             = (*Auth)(nil)
	_ caddyhttp.MiddlewareHandler = (*Auth)(nil)
)
