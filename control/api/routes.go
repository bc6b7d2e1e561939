package api

import (
	"net/http"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
)

const anyone identity.Role = ""

// routes is the one place where every route and the lowest role it admits are listed.
// Finer rules (an owner acts only on their own tenant) live in the managers.
func (a *API) routes() {
	a.handle("POST /auth/signup", anyone, a.authLimited("signup", a.signup))
	a.handle("POST /auth/login", anyone, a.authLimited("login", a.login))
	a.handle("POST /auth/refresh", anyone, a.authLimited("refresh", a.refresh))
	a.handle("POST /auth/logout", identity.RoleUser, a.logout)
	a.handle("GET /me", identity.RoleUser, a.me)
	a.handle("POST /auth/mfa/enroll", identity.RoleUser, a.mfaEnroll)
	a.handle("POST /auth/mfa/confirm", identity.RoleUser, a.mfaConfirm)
	a.handle("POST /auth/mfa/disable", identity.RoleUser, a.mfaDisable)
	a.handle("POST /auth/mfa/recovery-codes", identity.RoleUser, a.mfaRecoveryCodes)
	a.handle("POST /auth/mfa/verify", anyone, a.authLimited("mfa", a.mfaVerify))

	a.handle("POST /tenants", identity.RoleAdmin, a.createTenant)
	a.handle("GET /tenants", identity.RoleOwner, a.listTenants)
	a.handle("GET /tenants/{id}", identity.RoleOwner, a.getTenant)
	a.handle("PATCH /tenants/{id}", identity.RoleOwner, a.patchTenant)
	a.handle("POST /tenants/{id}/invitations", identity.RoleOwner, a.invite)
	a.handle("GET /tenants/{id}/users", identity.RoleOwner, a.listUsers)
	a.handle("PATCH /tenants/{id}/users/{uid}", identity.RoleOwner, a.patchUser)
	a.handle("GET /tenants/{id}/audit-logs", identity.RoleUser, a.listAuditLogs)
	a.handle("GET /tenants/{id}/audit-logs/export", identity.RoleUser, a.exportAuditLogs)
	a.handle("GET /tenants/{id}/audit-logs/verify", identity.RoleOwner, a.verifyAuditLog)

	a.handle("POST /subscriptions", identity.RoleOwner, a.billingRoute(a.subscribe))
	a.handle("GET /subscriptions/current", identity.RoleOwner, a.billingRoute(a.currentSubscription))
	a.handle("POST /subscriptions/portal", identity.RoleOwner, a.billingRoute(a.portal))
	a.handle("POST /webhooks/stripe", anyone, a.billingRoute(a.stripeWebhook))

	a.handle("GET /rate-limit", identity.RoleUser, a.rateLimit)

	a.handle("POST /tenants/{id}/webhook-endpoints", identity.RoleOwner, a.webhooksRoute(a.createEndpoint))
	a.handle("GET /tenants/{id}/webhook-endpoints", identity.RoleOwner, a.webhooksRoute(a.listEndpoints))
	a.handle("PATCH /tenants/{id}/webhook-endpoints/{eid}", identity.RoleOwner, a.webhooksRoute(a.patchEndpoint))
	a.handle("DELETE /tenants/{id}/webhook-endpoints/{eid}", identity.RoleOwner, a.webhooksRoute(a.deleteEndpoint))
	a.handle("POST /tenants/{id}/webhook-endpoints/{eid}/rotate-secret", identity.RoleOwner, a.webhooksRoute(a.rotateSecret))
	a.handle("POST /tenants/{id}/webhook-endpoints/{eid}/recover", identity.RoleOwner, a.webhooksRoute(a.recoverEndpoint))
	a.handle("GET /tenants/{id}/webhook-deliveries", identity.RoleOwner, a.webhooksRoute(a.listDeliveries))
	a.handle("POST /tenants/{id}/webhook-deliveries/{did}/resend", identity.RoleOwner, a.webhooksRoute(a.resendDelivery))

	a.handle("GET /plans", anyone, a.listPlans)
	a.handle("GET /healthz", anyone, a.healthz)
	a.handle("GET /readyz", anyone, a.readyz)
	a.handle("GET /openapi.json", anyone, a.openAPI)
	a.handle("GET /docs", anyone, a.docs)

	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, errs.E(errs.KindNotFound, "not_found", "No such route: "+r.Method+" "+r.URL.Path))
	})
}

var errInvalidToken = errs.ErrInvalidToken

func errForRole(min identity.Role) error {
	return errs.Ef(errs.KindForbidden, "forbidden", "This route needs the %s role.", min)
}
