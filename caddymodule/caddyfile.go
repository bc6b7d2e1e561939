package caddymodule

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("saas", parseGlobalOption)

	// Each directive is ordered right before reverse_proxy, after those registered above it,
	// so the registration order here is the order in which the handlers run.
	httpcaddyfile.RegisterHandlerDirective("saas_tenant", parseTenantHandler)
	httpcaddyfile.RegisterDirectiveOrder("saas_tenant", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterHandlerDirective("saas_auth", parseAuthHandler)
	httpcaddyfile.RegisterDirectiveOrder("saas_auth", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterHandlerDirective("saas_rate_limit", parseRateLimitHandler)
	httpcaddyfile.RegisterDirectiveOrder("saas_rate_limit", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterHandlerDirective("saas_api", parseAPIHandler)
	httpcaddyfile.RegisterDirectiveOrder("saas_api", httpcaddyfile.Before, "reverse_proxy")
}

// The `saas_api` directive.

func parseAPIHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(APIHandler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	saas_api [<matcher>] {
//		cors_origins <origin>...
//	}
//
// It takes no arguments and the block is optional: everything else comes from the `saas` app.
// cors_origins may be given more than once; APIHandler.Validate checks the origins, for JSON
// and Caddyfile alike.
func (h *APIHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("saas_api takes no arguments, got %q", d.Val())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "cors_origins":
			origins := d.RemainingArgs()
			if len(origins) == 0 {
				return d.Errf("saas_api: cors_origins needs at least one origin")
			}
			h.CORSOrigins = append(h.CORSOrigins, origins...)
			if err := h.Validate(); err != nil {
				return d.WrapErr(err)
			}
		default:
			return d.Errf("saas_api: unknown option %q (want cors_origins)", d.Val())
		}
	}
	return nil
}

// The `saas_tenant` directive.

func parseTenantHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Tenant)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	saas_tenant [<matcher>] [subdomain] [header]
//
// The arguments choose where the tenant may come from; none means both (they must then agree
// when both are present). Tenant.Validate checks them, for JSON and Caddyfile alike.
func (h *Tenant) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	h.Sources = append(h.Sources, d.RemainingArgs()...)
	if err := h.Validate(); err != nil {
		return d.WrapErr(err)
	}
	if err := noBlock(d); err != nil {
		return d.WrapErr(fmt.Errorf("saas_tenant %w", err))
	}
	return nil
}

// The `saas_auth` directive.

func parseAuthHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Auth)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	saas_auth [<matcher>] {
//		require_role user|owner|admin
//		optional
//	}
//
// The block is optional: without it any valid token of the tenant is admitted. The role is
// checked by Auth.Validate, for JSON and Caddyfile alike.
func (h *Auth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("saas_auth takes no arguments, got %q (options go in its block)", d.Val())
	}
	seen := make(map[string]caddyfile.Token)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := noRepeat(d, seen); err != nil {
			return d.WrapErr(fmt.Errorf("saas_auth: %w", err))
		}
		switch d.Val() {
		case "require_role":
			v, err := oneArg(d)
			if err != nil {
				return d.WrapErr(fmt.Errorf("saas_auth: %w", err))
			}
			h.RequireRole = v
			if err := h.Validate(); err != nil {
				return d.WrapErr(err)
			}
		case "optional":
			if err := parseFlag(d, &h.Optional); err != nil {
				return d.WrapErr(fmt.Errorf("saas_auth: %w", err))
			}
		default:
			return d.Errf("saas_auth: unknown option %q (want require_role or optional)", d.Val())
		}
	}
	return nil
}

// The `saas_rate_limit` directive.

func parseRateLimitHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(RateLimit)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	saas_rate_limit [<matcher>]
//
// It takes no arguments and no block: limits come from the tenant's plan in the `saas` app.
func (h *RateLimit) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("saas_rate_limit takes no arguments, got %q (limits come from the plans of the saas option)", d.Val())
	}
	if err := noBlock(d); err != nil {
		return d.WrapErr(fmt.Errorf("saas_rate_limit %w", err))
	}
	return nil
}

// Helpers for sub-directives. They return errors without a Caddyfile position: their caller
// adds its context (stripe, plan "pro") and wraps the error once with d.WrapErr.

// parseFlag reads a sub-directive that takes no value.
func parseFlag(d *caddyfile.Dispenser, dst *bool) error {
	name := d.Val()
	if d.NextArg() {
		return fmt.Errorf("%s takes no value, got %q", name, d.Val())
	}
	if err := noBlock(d); err != nil {
		return fmt.Errorf("%s %w", name, err)
	}
	*dst = true
	return nil
}

// oneArg returns the single value of the current sub-directive. An extra value is not quoted
// back: it may be part of a secret.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	if !d.NextArg() {
		return "", fmt.Errorf("%s: missing value (an unset {$ENV} placeholder expands to nothing)", name)
	}
	v := d.Val()
	if d.NextArg() {
		return "", fmt.Errorf("%s: takes exactly one value (quote a value that contains spaces)", name)
	}
	if err := noBlock(d); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// noBlock fails if a block opens after the current token. The dispenser is then left on the
// opening brace, so that the error points at the line that opens the block.
func noBlock(d *caddyfile.Dispenser) error {
	if d.NextBlock(d.Nesting()) {
		d.Prev()
		return errors.New("takes no block")
	}
	return nil
}

// noRepeat fails if the current sub-directive was already given in this block.
func noRepeat(d *caddyfile.Dispenser, seen map[string]caddyfile.Token) error {
	name := d.Val()
	if prev, ok := seen[name]; ok {
		return fmt.Errorf("%s is given twice (first on line %d)", name, prev.Line)
	}
	seen[name] = d.Token()
	return nil
}

// errAt is d.WrapErr for a token the dispenser has moved past.
func errAt(tok caddyfile.Token, err error) error {
	d := caddyfile.NewDispenser([]caddyfile.Token{tok})
	d.Next()
	return d.WrapErr(err)
}

var (
	_ caddyfile.Unmarshaler = (*APIHandler)(nil)
	_ caddyfile.Unmarshaler = (*Tenant)(nil)
	_ caddyfile.Unmarshaler = (*Auth)(nil)
	_ caddyfile.Unmarshaler = (*RateLimit)(nil)
)
