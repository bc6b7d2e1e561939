package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
)

func init() {
	caddy.RegisterModule(new(Tenant))
}

// Tenant resolves the request's tenant from the subdomain under the `saas` app's base_domain
// and/or the X-Tenant-ID header, refuses unknown and suspended tenants, and hands the tenant
// to the handlers after it (saas_auth, saas_rate_limit) and to the upstream (X-Tenant-ID,
// X-Tenant-Plan). Lookups are answered from the in-memory tenant cache.
type Tenant struct {
	// Where the tenant may come from: "subdomain" (the left-most label under base_domain)
	// and/or "header" (X-Tenant-ID). When both are allowed and both are present they must
	// agree. Default: both.
	Sources []string `json:"sources,omitempty"`

	app        *App
	subdomain  bool
	header     bool
	baseDomain string
	logger     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*Tenant) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.saas_tenant",
		New: func() caddy.Module { return new(Tenant) },
	}
}

// Provision finds the saas app.
func (h *Tenant) Provision(ctx caddy.Context) error {
	app, err := ctx.App("saas")
	if err != nil {
		return fmt.Errorf("saas_tenant: %w", err)
	}
	h.app = app.(*App)
	h.baseDomain = h.app.BaseDomain
	h.logger = ctx.Logger()
	if len(h.Sources) == 0 {
		h.subdomain, h.header = true, true
	}
	for _, s := range h.Sources {
		switch s {
		case "subdomain":
			h.subdomain = true
		case "header":
			h.header = true
		}
	}
	return nil
}

// Validate checks the sources. The Caddyfile parser calls it too, so the rule is written once.
func (h *Tenant) Validate() error {
	seen := map[string]bool{}
	for _, s := range h.Sources {
		if s != "subdomain" && s != "header" {
			return fmt.Errorf("saas_tenant: unknown source %q (want subdomain or header)", s)
		}
		if seen[s] {
			return fmt.Errorf("saas_tenant: source %q given twice", s)
		}
		seen[s] = true
	}
	return nil
}

// ServeHTTP resolves the tenant.
func (h *Tenant) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	svc := h.app.awaitService(r)
	if svc == nil {
		return serviceUnavailable(w, r)
	}
	var fromHost, fromHeader string
	if h.subdomain {
		if label, ok := tenant.FromHost(r.Host, h.baseDomain); ok && !tenant.Reserved(label) {
			fromHost = label
		}
	}
	if h.header {
		fromHeader = r.Header.Get(headerTenantID)
		if fromHeader != "" {
			fromHeader = strings.ToLower(strings.TrimSpace(fromHeader))
		}
	}
	id := fromHost
	switch {
	case fromHost != "" && fromHeader != "" && fromHost != fromHeader:
		return reject(w, r, control.ErrTenantConflict)
	case id == "":
		id = fromHeader
	}
	if id == "" {
		return reject(w, r, control.ErrTenantMissing)
	}
	view, err := svc.LookupView(r.Context(), id)
	if err == tenant.ErrNotFound {
		return reject(w, r, tenant.ErrNotFound)
	}
	if err != nil {
		if r.Context().Err() != nil {
			return err
		}
		h.logger.Error("tenant lookup failed", zap.String("tenant", id), zap.Error(err))
		return reject(w, r, control.ErrTenantLookupFailed)
	}
	t := view.(*tenantView) // every runtime the app opens builds its entries with newTenantView
	if t.snap.Status == tenant.StatusSuspended {
		return refuseSuspended(w, r, h.app, t)
	}

	hdr := r.Header
	stripIdentityHeaders(hdr)
	hdr[headerTenantID] = t.headerID()
	hdr[headerTenantPlan] = t.headerPlan()

	caddyhttp.SetVar(r.Context(), varTenant, t)
	attachRequest(r)
	return next.ServeHTTP(w, r)
}

// refuseSuspended answers 402 for a suspended tenant. Why it is suspended is the tenant's own
// business: only a member of the tenant or a platform admin learns it (and the billing state).
// saas_auth has not run yet, so the bearer token, if any, is checked here.
func refuseSuspended(w http.ResponseWriter, r *http.Request, app *App, t *tenantView) error {
	if bh := t.billingHeader(); bh != nil && callerIsMemberOrAdmin(app, r, t.snap.ID) {
		w.Header()[headerBillingStatus] = bh
		if t.snap.BillingSuspended {
			return reject(w, r, control.ErrTenantUnpaid)
		}
	}
	return reject(w, r, control.ErrTenantSuspended)
}

func callerIsMemberOrAdmin(app *App, r *http.Request, tenantID string) bool {
	raw, ok := token.Bearer(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	caller, err := app.tokens.Verify(raw)
	return err == nil && memberOrAdmin(caller.Principal, tenantID)
}

var (
	_ caddy.Provisioner           = (*Tenant)(nil)
	_ caddy.Validator             = (*Tenant)(nil)
	_ caddyhttp.MiddlewareHandler = (*Tenant)(nil)
)
