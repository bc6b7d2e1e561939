package control

import (
	"time"

	"github.com/saasgate/saasgate/control/errs"
)

// The gateway's refusals, besides those its parts own (tenant.ErrNotFound,
// errs.ErrInvalidToken, the limiter's in limit.Outcome.Refusal). api.WriteError answers them.
var (
	ErrTenantMissing = errs.E(errs.KindBadRequest, "tenant_missing",
		"No tenant: use the tenant's subdomain or the X-Tenant-ID header.")
	ErrTenantConflict = errs.E(errs.KindBadRequest, "tenant_conflict",
		"The subdomain and X-Tenant-ID name different tenants.")
	ErrTenantLookupFailed = errs.E(errs.KindUnavailable, "tenant_lookup_failed",
		"The tenant could not be looked up; try again.")
	// ErrTenantSuspended is what anyone learns of a suspended tenant; only its members and
	// platform admins learn why (ErrTenantUnpaid).
	ErrTenantSuspended = errs.E(errs.KindPaymentRequired, "tenant_suspended", "This tenant is suspended.")
	ErrTenantUnpaid    = errs.E(errs.KindPaymentRequired, "tenant_suspended",
		"This tenant is suspended for non-payment: its owner can pay through the billing routes of the API.")
	ErrTenantMismatch = errs.E(errs.KindForbidden, "tenant_mismatch", "The token belongs to another tenant.")
	ErrRoleTooLow     = errs.E(errs.KindForbidden, "forbidden", "Your role does not allow this request.")
	// ErrMisconfigured answers a route whose handlers are out of order in a way the load-time
	// check could not see; the adapter logs which.
	ErrMisconfigured = errs.E(errs.KindInternal, "misconfigured", "The gateway is misconfigured.")

	// A request that arrives while the service is still starting waits a little, then gets one
	// of these.
	ErrGatewayStarting = &errs.Error{Kind: errs.KindUnavailable, Code: "not_ready",
		Message: "The gateway is starting.", RetryAfter: time.Second}
	ErrAPIStarting = &errs.Error{Kind: errs.KindUnavailable, Code: "not_ready",
		Message: "The control plane is starting.", RetryAfter: time.Second}
)
