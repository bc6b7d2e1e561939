// Package api is the HTTP face of the control plane: decode, call a manager, encode. Rules
// live in the domain packages; this package only knows routes, bodies and status codes.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
)

// API serves the control-plane routes.
type API struct {
	Accounts *account.Manager
	Tenants  *tenant.Manager
	Audit    *audit.Log
	Billing  Billing
	Plans    *plan.Catalog
	Keys     *token.Keys
	Usage    Usage
	// Webhooks serves the webhook endpoint and delivery routes; without it they answer 404.
	Webhooks   Webhooks
	AuthLimit  AuthLimit
	BaseDomain string
	// Ready reports whether the dependencies (MongoDB, Redis) answer, for /readyz.
	Ready  func(ctx context.Context) map[string]error
	Logger *zap.Logger

	mux   *http.ServeMux
	table []Route

	// doc encodes the OpenAPI document once (openapi.go); a panic while building it panics
	// again on every call rather than leaving an empty document behind.
	doc func() ([]byte, error)
}

// Usage reports a tenant's limits without consuming them.
type Usage interface {
	RateLimitStatus(ctx context.Context, tenantID string) (*limit.Status, error)
}

// New builds the API and its routes.
func New(a *API) *API {
	if a.Logger == nil {
		a.Logger = zap.NewNop()
	}
	a.mux = http.NewServeMux()
	a.routes()
	a.doc = sync.OnceValues(func() ([]byte, error) { return json.Marshal(openAPIDoc(a.table)) })
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// RequestInfo is what the transport knows about a request: the client IP (after trusted
// proxies) and the request id. The Caddy adapter fills it in.
type RequestInfo struct {
	IP        string
	RequestID string
}

type infoKey struct{}

// WithRequestInfo attaches transport facts to a request context.
func WithRequestInfo(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

func infoFrom(r *http.Request) RequestInfo {
	if info, ok := r.Context().Value(infoKey{}).(RequestInfo); ok {
		return info
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return RequestInfo{IP: host}
}

// call is what a handler knows about its caller.
type call struct {
	principal identity.Principal
	actor     identity.Actor
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// handle registers pattern; min is the lowest role allowed, "" for anonymous routes.
func (a *API) handle(pattern string, min identity.Role, h handlerFunc) {
	a.table = append(a.table, Route{Pattern: pattern, MinRole: min})
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			// A bug must cost one request a 500, not the connection and a bare stack trace.
			if v := recover(); v != nil {
				a.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		info := infoFrom(r)
		c := &call{actor: identity.Anonymous(info.IP, info.RequestID)}
		if min != "" {
			p, err := a.authenticate(r)
			if err == nil {
				// The token's role may be access_ttl old: owner and admin routes decide on
				// the stored one. Routes other than enrolment's refuse a member of a tenant
				// that requires MFA while they have none.
				p, err = a.Accounts.Admit(r.Context(), p, min != identity.RoleUser, !mfaExempt[pattern])
			}
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			if !p.Role.AtLeast(min) {
				a.writeError(w, r, errForRole(min))
				return
			}
			c.principal = p
			c.actor.UserID, c.actor.Role, c.actor.TenantID = p.UserID, p.Role, p.TenantID
		}
		if err := h(w, r, c); err != nil {
			a.writeError(w, r, err)
		}
	})
}

func (a *API) authenticate(r *http.Request) (identity.Principal, error) {
	raw, ok := token.Bearer(r.Header.Get("Authorization"))
	if !ok {
		return identity.Principal{}, errInvalidToken
	}
	return a.Keys.Verify(raw)
}

// tenantHint is the tenant a request names outside its token: the subdomain under the base
// domain (reserved labels such as "api" are the platform's own hosts), else X-Tenant-ID.
func (a *API) tenantHint(r *http.Request) string {
	if label, ok := tenant.FromHost(r.Host, a.BaseDomain); ok && !tenant.Reserved(label) {
		return label
	}
	return strings.ToLower(strings.TrimSpace(r.Header.Get("X-Tenant-ID")))
}
