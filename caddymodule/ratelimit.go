package caddymodule

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/limit"
)

func init() {
	caddy.RegisterModule(new(RateLimit))
}

// RateLimit enforces the tenant's plan: its rate (with burst) and its monthly quota, as
// decided by the saas app's limiter (Redis when configured, else in process). It needs
// saas_tenant before it. Every response carries RateLimit-Policy and RateLimit (IETF httpapi
// draft) and X-RateLimit-Limit/-Remaining/-Reset; a refusal is 429 rate_limited or
// quota_exceeded with Retry-After.
type RateLimit struct {
	app     *App
	logger  *zap.Logger
	headers atomic.Pointer[serviceHeaders]
}

// CaddyModule returns the Caddy module information.
func (*RateLimit) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.saas_rate_limit",
		New: func() caddy.Module { return new(RateLimit) },
	}
}

// Provision finds the saas app.
func (h *RateLimit) Provision(ctx caddy.Context) error {
	app, err := ctx.App("saas")
	if err != nil {
		return fmt.Errorf("saas_rate_limit: %w", err)
	}
	h.app = app.(*App)
	h.logger = ctx.Logger()
	return nil
}

// ServeHTTP admits or refuses the request.
func (h *RateLimit) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	svc := h.app.awaitService(r)
	if svc == nil {
		return serviceUnavailable(w, r)
	}
	t, _ := caddyhttp.GetVar(r.Context(), varTenant).(*tenantView)
	if t == nil {
		h.logger.Error("saas_rate_limit needs saas_tenant before it in the route")
		return reject(w, r, control.ErrMisconfigured)
	}
	p, out := svc.Admit(r.Context(), &t.snap, &t.quota)
	if out.Denied {
		return reject(w, r, limit.ErrUnavailable)
	}
	ph := h.policyHeaders(svc, p)
	hdr := w.Header()
	hdr["Ratelimit-Policy"] = ph.policy
	hdr["X-Ratelimit-Limit"] = ph.limit
	var remaining *string // for the placeholder: a pointer, which boxing does not allocate
	if out.Unlimited {
		// Redis is down and on_limiter_error is allow: no figures worth showing.
		hdr["Ratelimit"] = ph.unknown
		remaining = &intList(out.Remaining)[0]
	} else {
		reset := ceilSeconds(out.ResetAfter)
		lists := rateLimitLists(ph.prefix, out.Remaining, reset)
		hdr["Ratelimit"] = lists[0:1:1]
		hdr["X-Ratelimit-Remaining"] = lists[1:2:2]
		hdr["X-Ratelimit-Reset"] = intList(reset)
		remaining = &lists[1]
	}
	if vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any); vars != nil {
		vars[varRemaining] = remaining
		vars[varLimiter] = boxedResults[out.Result()]
	}
	if out.Allowed {
		return next.ServeHTTP(w, r)
	}
	return reject(w, r, out.Refusal(limit.PerTenant))
}

// boxedResults holds the limiter's results as `any` values, made once, so that recording one
// in the request's vars allocates nothing.
var boxedResults = func() map[string]any {
	m := make(map[string]any)
	for _, r := range []string{limit.ResultAllowed, limit.ResultRateLimited, limit.ResultQuotaExceeded,
		limit.ResultErrorAllowed, limit.ResultErrorDenied} {
		m[r] = r
	}
	return m
}()

// planHeaders are a plan's constant header values, built once per config.
type planHeaders struct {
	policy, limit, unknown []string
	prefix                 string // `"<plan>";r=`
}

type serviceHeaders struct {
	svc   *control.Service
	plans map[string]*planHeaders
}

// policyHeaders returns p's header values, rebuilding the table when the config changed.
func (h *RateLimit) policyHeaders(svc *control.Service, p limit.Policy) *planHeaders {
	sh := h.headers.Load()
	if sh == nil || sh.svc != svc {
		sh = &serviceHeaders{svc: svc, plans: make(map[string]*planHeaders)}
		for _, pl := range svc.Plans().All() {
			name := strconv.Quote(pl.ID)
			window := max(int64((pl.Rate.Period+time.Second-1)/time.Second), 1)
			sh.plans[pl.ID] = &planHeaders{
				policy:  []string{name + ";q=" + strconv.FormatInt(pl.Rate.Count, 10) + ";w=" + strconv.FormatInt(window, 10)},
				limit:   []string{strconv.FormatInt(pl.Burst, 10)},
				unknown: []string{name},
				prefix:  name + ";r=",
			}
		}
		h.headers.Store(sh)
	}
	if ph := sh.plans[p.Name]; ph != nil {
		return ph
	}
	return sh.plans[svc.Plans().Default().ID]
}

// rateLimitLists returns the values of RateLimit (`"<plan>";r=<remaining>;t=<reset>`) and
// X-RateLimit-Remaining in two allocations whatever the figures: one string, the second value
// a substring of the first, and one array behind both header lists.
func rateLimitLists(prefix string, remaining, reset int64) []string {
	var buf [96]byte
	b := append(buf[:0], prefix...)
	start := len(b)
	b = strconv.AppendInt(b, remaining, 10)
	end := len(b)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, reset, 10)
	v := string(b)
	return []string{v, v[start:end]}
}

func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// The decimal forms of 0..1023, the common header values, made once as single-value header
// lists (shared: never appended to).
var smallIntLists [1024][]string

func init() {
	for i := range smallIntLists {
		smallIntLists[i] = []string{strconv.Itoa(i)}
	}
}

func intList(n int64) []string {
	if n >= 0 && n < int64(len(smallIntLists)) {
		return smallIntLists[n]
	}
	return []string{strconv.FormatInt(n, 10)}
}

var (
	_ caddy.Provisioner           = (*RateLimit)(nil)
	_ caddyhttp.MiddlewareHandler = (*RateLimit)(nil)
)
