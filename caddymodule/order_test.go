package caddymodule

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/saasgate/saasgate/internal/testenv"
)

func TestHandlerOrder_SaasHandlersNeedATenantResolvedBeforeThem(t *testing.T) {
	handlers := func(hs ...caddyhttp.MiddlewareHandler) caddyhttp.Route {
		return caddyhttp.Route{Handlers: hs}
	}
	matched := func(hs ...caddyhttp.MiddlewareHandler) caddyhttp.Route {
		return caddyhttp.Route{MatcherSets: caddyhttp.MatcherSets{nil}, Handlers: hs}
	}
	sub := func(routes ...caddyhttp.Route) *caddyhttp.Subroute {
		return &caddyhttp.Subroute{Routes: routes}
	}
	for _, tc := range []struct {
		name    string
		routes  caddyhttp.RouteList
		errors  caddyhttp.RouteList
		wantErr string
	}{
		{name: "tenant, auth, limit in one route", routes: caddyhttp.RouteList{
			handlers(&Tenant{}, &Auth{}, &RateLimit{})}},
		{name: "site block: each directive a route of a host-matched subroute", routes: caddyhttp.RouteList{
			matched(sub(handlers(&Tenant{}), handlers(&Auth{}), handlers(&RateLimit{})))}},
		{name: "tenant at the site, auth inside handle", routes: caddyhttp.RouteList{
			handlers(&Tenant{}), matched(sub(handlers(&Auth{})))}},
		{name: "tenant inside an unmatched route block counts after it", routes: caddyhttp.RouteList{
			handlers(sub(handlers(&Tenant{}))), handlers(&RateLimit{})}},
		{name: "auth alone", wantErr: "saas_auth needs saas_tenant",
			routes: caddyhttp.RouteList{handlers(&Auth{})}},
		{name: "rate limit alone", wantErr: "saas_rate_limit needs saas_tenant",
			routes: caddyhttp.RouteList{handlers(&RateLimit{})}},
		{name: "auth before tenant", wantErr: "saas_auth needs saas_tenant",
			routes: caddyhttp.RouteList{handlers(&Auth{}, &Tenant{})}},
		{name: "tenant behind a matcher, auth for every request", wantErr: "saas_auth needs saas_tenant",
			routes: caddyhttp.RouteList{matched(&Tenant{}), handlers(&Auth{})}},
		{name: "tenant inside a matched handle, limit after it", wantErr: "saas_rate_limit needs saas_tenant",
			routes: caddyhttp.RouteList{handlers(sub(matched(&Tenant{}))), handlers(&RateLimit{})}},
		{name: "tenant in a route group, auth after it", wantErr: "saas_auth needs saas_tenant",
			routes: caddyhttp.RouteList{{Group: "g", Handlers: []caddyhttp.MiddlewareHandler{&Tenant{}}}, handlers(&Auth{})}},
		{name: "auth in handle_errors", wantErr: "handle_errors: saas_auth needs saas_tenant",
			routes: caddyhttp.RouteList{handlers(&Tenant{})}, errors: caddyhttp.RouteList{handlers(&Auth{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &caddyhttp.Server{Routes: tc.routes}
			if tc.errors != nil {
				srv.Errors = &caddyhttp.HTTPErrorConfig{Routes: tc.errors}
			}
			err := checkHandlerOrder(&caddyhttp.App{Servers: map[string]*caddyhttp.Server{"srv0": srv}})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("accepted, want an error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestHandlerOrder_ConfigWithSaasAuthAloneIsRefusedAtLoad loads a real config: the load fails
// and nothing is left running.
func TestHandlerOrder_ConfigWithSaasAuthAloneIsRefusedAtLoad(t *testing.T) {
	port := testenv.FreePort(t)
	cfg := testenv.AdaptCaddyfile(t, "{\n"+testenv.CaddyGlobal()+
		"\tsaas {\n\t\tdata_dir "+t.TempDir()+"\n\t}\n}\n"+
		fmt.Sprintf("http://127.0.0.1:%d {\n", port)+"\tsaas_auth\n\trespond ok\n}\n")
	err := caddy.Load(cfg, true)
	if err == nil {
		_ = caddy.Stop()
		t.Fatal("a config with saas_auth and no saas_tenant loaded")
	}
	if !strings.Contains(err.Error(), "saas_auth needs saas_tenant before it") {
		t.Fatalf("load error %q does not say why", err)
	}
}
