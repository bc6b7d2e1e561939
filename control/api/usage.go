package api

import (
	"net/http"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
)

// callerTenant is the tenant a call is about: the token's, or for a platform admin (whose
// token names no tenant) the subdomain or X-Tenant-ID.
func (a *API) callerTenant(r *http.Request, c *call) (string, error) {
	if c.principal.Role != identity.RoleAdmin {
		return c.principal.TenantID, nil
	}
	if hint := a.tenantHint(r); hint != "" {
		return hint, nil
	}
	return "", errs.E(errs.KindBadRequest, "tenant_required", "Name the tenant with its subdomain or X-Tenant-ID.")
}

func (a *API) rateLimit(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := a.callerTenant(r, c)
	if err != nil {
		return err
	}
	st, err := a.Usage.RateLimitStatus(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}
