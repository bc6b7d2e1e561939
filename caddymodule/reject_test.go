package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/tenant"
)

// The gateway's refusals keep the statuses, codes, details and headers they had as literals.
func TestReject_GatewayRefusals(t *testing.T) {
	for _, tc := range []struct {
		err         *errs.Error
		status      int
		code        string
		detail      string
		header, val string
	}{
		{control.ErrTenantMissing, 400, "tenant_missing", "No tenant: use the tenant's subdomain or the X-Tenant-ID header.", "", ""},
		{control.ErrTenantConflict, 400, "tenant_conflict", "The subdomain and X-Tenant-ID name different tenants.", "", ""},
		{tenant.ErrNotFound, 404, "tenant_not_found", "No such tenant.", "", ""},
		{control.ErrTenantLookupFailed, 503, "tenant_lookup_failed", "The tenant could not be looked up; try again.", "", ""},
		{control.ErrTenantSuspended, 402, "tenant_suspended", "This tenant is suspended.", "", ""},
		{control.ErrTenantUnpaid, 402, "tenant_suspended", "This tenant is suspended for non-payment: its owner can pay through the billing routes of the API.", "", ""},
		{errs.ErrInvalidToken, 401, "invalid_token", "The access token is missing, malformed or expired.", "WWW-Authenticate", `Bearer error="invalid_token"`},
		{control.ErrTenantMismatch, 403, "tenant_mismatch", "The token belongs to another tenant.", "", ""},
		{control.ErrRoleTooLow, 403, "forbidden", "Your role does not allow this request.", "", ""},
		{control.ErrMisconfigured, 500, "misconfigured", "The gateway is misconfigured.", "", ""},
		{control.ErrGatewayStarting, 503, "not_ready", "The gateway is starting.", "Retry-After", "1"},
		{control.ErrAPIStarting, 503, "not_ready", "The control plane is starting.", "Retry-After", "1"},
		{limit.ErrUnavailable, 503, "limiter_unavailable", "The rate limiter is unavailable; try again.", "Retry-After", "1"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := reject(rec, httptest.NewRequest("GET", "/", nil), tc.err); err != nil {
				t.Fatal(err)
			}
			wantProblem(t, rec, tc.status, tc.code, tc.detail)
			if tc.header != "" && rec.Header().Get(tc.header) != tc.val {
				t.Errorf("%s %q, want %q", tc.header, rec.Header().Get(tc.header), tc.val)
			}
		})
	}
}

// One writer answers for both: an invalid token gets the same bytes and headers from the
// gateway's saas_auth and from the control API.
func TestReject_InvalidTokenAnswersAsTheAPIDoes(t *testing.T) {
	gw := httptest.NewRecorder()
	if err := reject(gw, httptest.NewRequest("GET", "/", nil), errs.ErrInvalidToken); err != nil {
		t.Fatal(err)
	}
	cp := httptest.NewRecorder()
	api.New(&api.API{}).ServeHTTP(cp, httptest.NewRequest("GET", "/me", nil))

	if gw.Code != cp.Code || gw.Body.String() != cp.Body.String() {
		t.Errorf("gateway %d %s, API %d %s", gw.Code, gw.Body, cp.Code, cp.Body)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate", "Retry-After"} {
		if g, c := gw.Header().Values(h), cp.Header().Values(h); len(g) != len(c) || len(g) > 0 && g[0] != c[0] {
			t.Errorf("%s: gateway %q, API %q", h, g, c)
		}
	}
	if h := gw.Header().Get("WWW-Authenticate"); h != `Bearer error="invalid_token"` {
		t.Errorf("WWW-Authenticate %q", h)
	}
}

func TestReject_RateLimitedCarriesTheOutcomesRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		out    limit.Outcome
		code   string
		detail string
		retry  string
	}{
		{"Rate", limit.Outcome{Decision: limit.Decision{RetryAfter: 2500 * time.Millisecond}},
			"rate_limited", "Too many requests for this tenant's plan; slow down.", "3"},
		{"RateNoWait", limit.Outcome{}, "rate_limited", "Too many requests for this tenant's plan; slow down.", "1"},
		{"Quota", limit.Outcome{Decision: limit.Decision{Reason: limit.ReasonQuota, RetryAfter: 26 * time.Hour}},
			"quota_exceeded", "The monthly quota of this tenant's plan is used up.", "93600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := reject(rec, httptest.NewRequest("GET", "/", nil), tc.out.Refusal(limit.PerTenant)); err != nil {
				t.Fatal(err)
			}
			wantProblem(t, rec, http.StatusTooManyRequests, tc.code, tc.detail)
			if got := rec.Header().Get("Retry-After"); got != tc.retry {
				t.Errorf("Retry-After %q, want %q", got, tc.retry)
			}
		})
	}
	if err := (limit.Outcome{Decision: limit.Decision{Allowed: true}}).Refusal(limit.PerTenant); err != nil {
		t.Errorf("an allowed outcome is refused: %v", err)
	}
}

// With handle_errors routes, the domain error itself travels in Caddy's HandlerError, with
// its headers already on the response the error routes write.
func TestReject_HandleErrorsGetTheDomainError(t *testing.T) {
	srv := &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}
	vars := map[string]any{}
	ctx := context.WithValue(context.Background(), caddyhttp.ServerCtxKey, srv)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, vars)
	rec := httptest.NewRecorder()
	out := limit.Outcome{Decision: limit.Decision{RetryAfter: 4 * time.Second}}

	for _, tc := range []struct {
		err    *errs.Error
		status int
		header string
		val    string
	}{
		{errs.ErrInvalidToken, 401, "WWW-Authenticate", `Bearer error="invalid_token"`},
		{out.Refusal(limit.PerTenant), 429, "Retry-After", "4"},
	} {
		err := reject(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx), tc.err)
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != tc.status {
			t.Fatalf("%s: returned %v, want a HandlerError with status %d", tc.err.Code, err, tc.status)
		}
		if e, ok := errs.As(err); !ok || e != tc.err {
			t.Errorf("%s: the domain error does not travel: %v", tc.err.Code, err)
		}
		if msg := he.Err.Error(); msg != tc.err.Code+": "+tc.err.Message {
			t.Errorf("{http.error.message} would be %q", msg)
		}
		if vars["saas.error_code"] != tc.err.Code {
			t.Errorf("{http.vars.saas.error_code} is %v, want %s", vars["saas.error_code"], tc.err.Code)
		}
		if got := rec.Header().Get(tc.header); got != tc.val {
			t.Errorf("%s: %s %q, want %q", tc.err.Code, tc.header, got, tc.val)
		}
	}
	if rec.Body.Len() != 0 {
		t.Errorf("reject wrote a body the error routes should write: %s", rec.Body)
	}
}

func wantProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code, detail string) {
	t.Helper()
	quoted, _ := json.Marshal(detail)
	want := `{"type":"urn:saasgate:error:` + code + `","title":"` + http.StatusText(status) + `","status":` +
		strconv.Itoa(status) + `,"detail":` + string(quoted) + `,"code":"` + code + `"}` + "\n"
	if rec.Code != status || rec.Body.String() != want {
		t.Errorf("got %d %s\nwant %d %s", rec.Code, rec.Body, status, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
}
