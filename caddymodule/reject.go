package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/saasgate/saasgate/control/api"
)

// headerBillingStatus tells clients of a tenant whose payment failed that it is past due (with
// the end of its grace period) or suspended.
const headerBillingStatus = "Billing-Status"

// problemError carries a problem's code alongside Caddy's error, for handle_errors routes
// ({http.error.message} holds the detail; {http.vars.saas.error_code} the code).
type problemError struct {
	code   string
	detail string
}

func (e *problemError) Error() string { return e.code + ": " + e.detail }

// reject answers a request the gateway refuses. With `handle_errors` routes on the server it
// returns the error for them to handle, as Caddy handlers do; without, it writes the
// problem+json body itself, since Caddy's default error response has no body.
func reject(w http.ResponseWriter, r *http.Request, status int, code, detail string) error {
	caddyhttp.SetVar(r.Context(), "saas.error_code", code)
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return caddyhttp.Error(status, &problemError{code: code, detail: detail})
	}
	api.WriteProblem(w, status, code, detail)
	return nil
}

// serviceUnavailable answers a request that arrived while the app could not start in time.
func serviceUnavailable(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Retry-After", "1")
	return reject(w, r, http.StatusServiceUnavailable, "not_ready", "The gateway is starting.")
}
