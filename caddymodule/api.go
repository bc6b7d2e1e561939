package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/api"
)

func init() {
	caddy.RegisterModule(new(APIHandler))
}

// APIHandler serves the control-plane API (signup, login, tenants, ...) of the `saas` app.
// It is terminal: every request it receives is answered by the API. Every answer carries
// X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and Cache-Control: no-store.
type APIHandler struct {
	// CORSOrigins are the browser origins (`https://app.example.com`, exactly as a browser
	// sends Origin: scheme, host, optional port, nothing else) allowed to call this API from
	// a page. Default: none, so no CORS header is ever sent. A wildcard is refused.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	app  *App
	cors *cors
}

// CaddyModule returns the Caddy module information.
func (*APIHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.saas_api",
		New: func() caddy.Module { return new(APIHandler) },
	}
}

// Provision finds the `saas` app.
func (h *APIHandler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("saas")
	if err != nil {
		return fmt.Errorf("saas_api: loading the saas app: %w", err)
	}
	h.app = app.(*App)
	h.cors = newCORS(h.CORSOrigins)
	return nil
}

// Validate checks the CORS origins.
func (h *APIHandler) Validate() error {
	seen := make(map[string]bool, len(h.CORSOrigins))
	for _, o := range h.CORSOrigins {
		if err := validOrigin(o); err != nil {
			return fmt.Errorf("saas_api: %w", err)
		}
		if seen[o] {
			return fmt.Errorf("saas_api: cors origin %q is listed twice", o)
		}
		seen[o] = true
	}
	return nil
}

// ServeHTTP answers from the control-plane API.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	setSecurityHeaders(w.Header())
	if h.cors.handle(w, r) {
		return nil
	}
	svc := h.app.awaitService(r)
	if svc == nil {
		api.WriteError(w, control.ErrAPIStarting)
		return nil
	}
	svc.ServeAPI(w, r.WithContext(api.WithRequestInfo(r.Context(), requestInfo(r))))
	return nil
}

// requestInfo reads the client IP Caddy resolved (honouring trusted_proxies) and the
// request's uuid, the id Caddy's access log shows.
func requestInfo(r *http.Request) api.RequestInfo {
	var info api.RequestInfo
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		info.IP = ip
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		info.RequestID, _ = repl.GetString("http.request.uuid")
	}
	return info
}

var (
	_ caddy.Provisioner           = (*APIHandler)(nil)
	_ caddy.Validator             = (*APIHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIHandler)(nil)
)
