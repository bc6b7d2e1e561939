package caddymodule

import (
	"errors"
	"fmt"
	"sort"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// checkHandlerOrder refuses a config in which saas_auth or saas_rate_limit can run without
// saas_tenant having run before it on the same request: without it, no tenant is resolved, so
// a suspended tenant's members would reach the upstream and identity headers would come from
// the token alone.
//
// The walk follows each server's routes as Caddy runs them. A saas_tenant counts for the
// routes after it only when its route has no matcher and no group (it always runs); inside a
// subroute (handle, route, handle_path) the walk goes on with what was true on entry. Handlers
// that run routes of their own by other means (invoke, reverse_proxy's handle_response) are
// not entered, so the request-time guard in the handlers stays.
func checkHandlerOrder(app *caddyhttp.App) error {
	names := make([]string, 0, len(app.Servers))
	for name := range app.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		srv := app.Servers[name]
		if _, err := tenantAfter(srv.Routes, false); err != nil {
			return fmt.Errorf("server %s: %w", name, err)
		}
		if srv.Errors != nil {
			if _, err := tenantAfter(srv.Errors.Routes, false); err != nil {
				return fmt.Errorf("server %s, handle_errors: %w", name, err)
			}
		}
	}
	return nil
}

// tenantAfter walks routes entered with or without a tenant resolved and reports whether one
// surely is after them, or the first handler that needs one where none may be.
func tenantAfter(routes caddyhttp.RouteList, resolved bool) (bool, error) {
	for _, rt := range routes {
		inRoute := resolved
		for _, h := range rt.Handlers {
			switch h := h.(type) {
			case *Tenant:
				inRoute = true
			case *Auth:
				if !inRoute {
					return false, fmt.Errorf("saas_auth needs saas_tenant before it in the route")
				}
			case *RateLimit:
				if !inRoute {
					return false, fmt.Errorf("saas_rate_limit needs saas_tenant before it in the route")
				}
			case *caddyhttp.Subroute:
				after, err := tenantAfter(h.Routes, inRoute)
				if err != nil {
					return false, err
				}
				inRoute = after
			}
		}
		if len(rt.MatcherSets) == 0 && rt.Group == "" {
			resolved = inRoute
		}
	}
	return resolved, nil
}

// checkConfigOrder runs checkHandlerOrder on the http app of the config ctx belongs to. At
// Start every app of the config is provisioned, so this finds the http app as it will serve.
func checkConfigOrder(ctx caddy.Context) error {
	v, err := ctx.AppIfConfigured("http")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil
	}
	if err != nil {
		return err
	}
	app, ok := v.(*caddyhttp.App)
	if !ok {
		return fmt.Errorf("the http app is a %T", v)
	}
	return checkHandlerOrder(app)
}
