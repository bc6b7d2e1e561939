package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(new(APIHandler))
}

// APIHandler serves the control-plane API (signup, login, tenants, ...) of the `saas` app.
// It is terminal: every request it receives is answered by the API.
type APIHandler struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (*APIHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.saas_api",
		New: func() caddy.Module { return new(APIHandler) },
	}
}

// ServeHTTP answers from the control-plane API.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	w.WriteHeader(http.StatusNotImplemented)
	return nil
}

var _ caddyhttp.MiddlewareHandler = (*APIHandler)(nil)
