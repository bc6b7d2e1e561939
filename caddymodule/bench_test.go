package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/internal/testenv"
)

// benchApp starts the saas app (in an in-process Caddy) with one tenant on a plan that
// refuses nothing, and returns it with a token of that tenant.
func benchApp(b *testing.B, redis bool) (*App, string) {
	b.Helper()
	testenv.StartSaas(b, testenv.SaasOptions{
		Redis:   redis,
		Options: "default_plan bench\nplan bench {\n\trate 1000000/1s\n\tburst 1000\n}",
	})
	a, err := caddy.ActiveContext().App("saas")
	if err != nil {
		b.Fatal(err)
	}
	app := a.(*App)
	svc := app.awaitService(httptest.NewRequest("GET", "/", nil))
	if svc == nil {
		b.Fatal("the saas app did not start")
	}
	t, err := svc.Tenants.Create(context.Background(), identity.Actor{}, "Bench Corp")
	if err != nil {
		b.Fatal(err)
	}
	tok, err := svc.Keys.Issue(identity.Principal{UserID: "usr_bench", TenantID: t.ID, Role: identity.RoleUser})
	if err != nil {
		b.Fatal(err)
	}
	return app, tok
}

// caddyRequest builds a request the way Caddy's server prepares one for its handlers.
func caddyRequest(token string) (*http.Request, http.ResponseWriter) {
	r := httptest.NewRequest("GET", "http://bench-corp.localhost/x", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	// Caddy's server starts every request's vars with these two.
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{
		caddyhttp.TrustedProxyVarKey: false,
		caddyhttp.ClientIPVarKey:     "127.0.0.1",
	})
	ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
	r = r.WithContext(ctx)
	caddyhttp.NewTestReplacer(r) // the replacer with the HTTP placeholders, as the server makes it
	return r, httptest.NewRecorder()
}

var noop = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// BenchmarkModules measures one request through each module and through the three in a row
// (with a no-op next handler). "baseline" is the request set-up alone: subtract its
// allocations from the others to get the modules' own.
func BenchmarkModules(b *testing.B) {
	for _, redis := range []bool{false, true} {
		store := "local"
		if redis {
			store = "redis"
		}
		b.Run(store, func(b *testing.B) { benchModules(b, redis) })
	}
}

func benchModules(b *testing.B, redis bool) {
	{
		app, tok := benchApp(b, redis)
		tenantH := &Tenant{app: app, subdomain: true, header: true, baseDomain: "localhost", logger: app.logger}
		authH := &Auth{app: app, role: identity.RoleUser}
		limitH := &RateLimit{app: app, logger: app.logger}
		chain := func(hs ...caddyhttp.MiddlewareHandler) caddyhttp.Handler {
			next := caddyhttp.Handler(noop)
			for i := len(hs) - 1; i >= 0; i-- {
				h, n := hs[i], next
				next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return h.ServeHTTP(w, r, n) })
			}
			return next
		}
		for _, c := range []struct {
			name string
			h    caddyhttp.Handler
		}{
			{"baseline", noop},
			{"tenant", chain(tenantH)},
			{"tenant+auth", chain(tenantH, authH)},
			{"tenant+auth+rate_limit", chain(tenantH, authH, limitH)},
		} {
			b.Run(c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r, w := caddyRequest(tok)
					if err := c.h.ServeHTTP(w, r); err != nil {
						b.Fatal(err)
					}
					if rec := w.(*httptest.ResponseRecorder); rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
