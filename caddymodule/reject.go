package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/control/errs"
)

// headerBillingStatus tells clients of a tenant whose payment failed that it is past due (with
// the end of its grace period) or suspended.
const headerBillingStatus = "Billing-Status"

// reject answers a request the gateway refuses with e, through the control API's writer so
// that both answer alike. With `handle_errors` routes on the server it returns e to them, as
// Caddy handlers do ({http.error.message} is e's text, {http.vars.saas.error_code} its code),
// having set e's headers on the response those routes write; without, it writes the
// problem+json body itself, since Caddy's default error response has no body.
func reject(w http.ResponseWriter, r *http.Request, e *errs.Error) error {
	caddyhttp.SetVar(r.Context(), "saas.error_code", e.Code)
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		api.SetErrorHeaders(w.Header(), e)
		return caddyhttp.Error(api.StatusOf(e), e)
	}
	api.WriteError(w, e)
	return nil
}

// serviceUnavailable answers a request that arrived while the app could not start in time.
func serviceUnavailable(w http.ResponseWriter, r *http.Request) error {
	return reject(w, r, control.ErrGatewayStarting)
}
