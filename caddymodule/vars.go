package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/saasgate/saasgate/control/identity"
)

// Vars the handlers share through the request context (caddyhttp.SetVar).
const (
	varTenant    = "saas.tenant"    // *tenantView, set by saas_tenant
	varPrincipal = "saas.principal" // *callerView, set by saas_auth
	varLimiter   = "saas.limiter"   // the limiter's result, set by saas_rate_limit
	varRemaining = "saas.remaining" // *string: requests remaining, set by saas_rate_limit
)

// logVars writes the request's saas facts (tenant, limiter decision) into Caddy's access
// log entry, reading them from the request's vars when the entry is written. One field serves
// every module: each ExtraLogFields.Add allocates.
type logVars map[string]any

func (v logVars) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	if t, ok := v[varTenant].(*tenantView); ok {
		enc.AddString("tenant", t.snap.ID)
	}
	if result, ok := v[varLimiter].(string); ok {
		enc.AddString("limiter", result)
	}
	return nil
}

// placeholders answers the saas placeholders from the request's vars, when one is used. One
// provider per request replaces six Replacer.Set calls, each a locked map insert that request
// after request grew the replacer's map.
type placeholders map[string]any

func (v placeholders) get(key string) (any, bool) {
	if len(key) < len("http.saas.") || key[:5] != "http." {
		return nil, false
	}
	switch key {
	case "http.saas.tenant.id", "http.saas.tenant.plan", "http.saas.tenant.status":
		t, ok := v[varTenant].(*tenantView)
		if !ok {
			return nil, false
		}
		switch key {
		case "http.saas.tenant.id":
			return t.snap.ID, true // boxed when asked for: kept boxed, each cached tenant would be one more object for the collector
		case "http.saas.tenant.plan":
			return boxes.Get(t.snap.Plan), true
		}
		return boxes.Get(string(t.snap.Status)), true
	case "http.auth.user.id", "http.saas.user.role":
		caller, ok := v[varPrincipal].(*callerView)
		if !ok {
			return nil, false
		}
		if key == "http.auth.user.id" {
			return caller.UserID, true
		}
		if role, ok := boxedRoles[caller.Role]; ok {
			return role, true
		}
		return string(caller.Role), true
	case "http.saas.ratelimit.remaining":
		if n, ok := v[varRemaining].(*string); ok {
			return *n, true
		}
	}
	return nil, false
}

// boxedRoles holds each role as an `any` value, made once.
var boxedRoles = map[identity.Role]any{
	identity.RoleUser: string(identity.RoleUser), identity.RoleOwner: string(identity.RoleOwner),
	identity.RoleAdmin: string(identity.RoleAdmin),
}

// attachRequest makes the request's saas facts visible outside the modules: as placeholders,
// and in the access log entry when the server keeps one (that field costs three allocations).
// The first saas handler of a request calls it once.
func attachRequest(r *http.Request) {
	vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
	if vars == nil {
		return
	}
	if repl := replacer(r); repl != nil {
		repl.Map(placeholders(vars).get)
	}
	if srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); srv == nil || srv.Logs == nil {
		return
	}
	if extra, _ := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); extra != nil {
		extra.Add(zap.Inline(logVars(vars)))
	}
}

// Identity headers the upstream receives. Copies sent by the client are removed first.
const (
	headerTenantID   = "X-Tenant-Id"
	headerTenantPlan = "X-Tenant-Plan"
	headerUserID     = "X-User-Id"
	headerUserRole   = "X-User-Role"
)

// stripIdentityHeaders removes the client's copies of the identity headers in every spelling
// an upstream may read as one of them: any case, and `_` or `.` for `-` (CGI-style upstreams
// such as PHP-FPM and WSGI turn X-User-Id, X_User_Id and, in PHP, X.User.Id alike into
// HTTP_X_USER_ID; Caddy drops such names unless the server's expected_underscore_headers or
// expected_dot_headers let them through). One pass over the header map, allocating nothing.
func stripIdentityHeaders(hdr http.Header) {
	for name := range hdr {
		if isIdentityHeader(name) {
			delete(hdr, name)
		}
	}
}

var identityHeaders = [...]string{headerTenantID, headerTenantPlan, headerUserID, headerUserRole}

func isIdentityHeader(name string) bool {
	for _, h := range identityHeaders {
		if sameHeaderName(name, h) {
			return true
		}
	}
	return false
}

// sameHeaderName compares name with the canonical header name h, ignoring case and reading
// `_` and `.` as `-`.
func sameHeaderName(name, h string) bool {
	if len(name) != len(h) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '.':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		d := h[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// replacer returns the request's placeholder replacer.
func replacer(r *http.Request) *caddy.Replacer {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	return repl
}
