package caddymodule

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
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

// The `saas` global option.

// parseGlobalOption sets up the `saas` app from its global option, given once. Syntax:
//
//	saas {
//		mongo_uri        <mongodb://... | mongodb+srv://...>
//		database         <name>
//		data_dir         <path>
//		redis_url        <redis://... | rediss://... | unix://...>
//		redis_prefix     <prefix>
//		redis_timeout    <duration>
//		jwt_secret       <secret of at least 32 bytes>
//		jwt_issuer       <iss>
//		access_ttl       <duration>
//		base_domain      <domain>
//		admin_email      <email>
//		admin_password   <password>
//		default_plan     <plan id>
//		grace_period     <duration>
//		on_limiter_error allow|deny|local
//		auth_rate        signup|login|refresh|mfa <n>/<duration> [burst <n>]
//		stripe {
//			secret_key     <sk_... | rk_...>
//			webhook_secret <whsec_...>
//			api_base       <http(s) URL>
//			success_url    <http(s) URL>
//			cancel_url     <http(s) URL>
//			return_url     <http(s) URL>
//			retry_schedule <duration>...
//		}
//		plan <id> {
//			name         <display name>
//			rate         <n>/<duration>
//			burst        <n>
//			quota        <n>/month
//			stripe_price <price id>
//			exact
//		}
//	}
//
// Every option is optional and given at most once, except plan, given once per plan, and
// auth_rate, given once per route. Each
// value is checked here, as App.Validate does for JSON, unless it holds a runtime placeholder
// ({env.X}, resolved at provisioning); plan ids, durations and burst must be literal.
// admin_email and admin_password go together, and default_plan must name a defined plan
// ("free" when no plan is defined).
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		d.Next()
		return nil, d.Err("saas is given twice; put all its options in one block")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "saas", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the `saas` global option; parseGlobalOption shows
// its syntax.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	start := d.Token()
	if d.NextArg() {
		return d.Err("saas takes no arguments, only a block")
	}

	options := a.stringOptions()
	durations := a.durationOptions()
	seen := make(map[string]caddyfile.Token)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name == "plan" {
			p, err := parsePlan(d, a.Plans)
			if err != nil {
				return err
			}
			a.Plans = append(a.Plans, p)
			continue
		}
		if name == "auth_rate" {
			ar, err := parseAuthRate(d)
			if err == nil {
				err = checkAuthRate(ar, a.AuthRates)
			}
			if err != nil {
				return d.WrapErr(err)
			}
			a.AuthRates = append(a.AuthRates, ar)
			continue
		}
		if err := noRepeat(d, seen); err != nil {
			return d.WrapErr(err)
		}
		if name == "stripe" {
			s, err := parseStripe(d)
			if err != nil {
				return err
			}
			a.Stripe = s
			continue
		}
		var err error
		if o := findString(options, name); o != nil {
			err = parseStringOption(d, o)
		} else if o := findDuration(durations, name); o != nil {
			err = parseDurationOption(d, o)
		} else {
			err = fmt.Errorf("unknown saas option %q", name)
		}
		if err != nil {
			return d.WrapErr(err)
		}
	}

	if err := checkAdminPair(a.AdminEmail, a.AdminPassword); err != nil {
		tok := seen["admin_email"]
		if a.AdminEmail == "" {
			tok = seen["admin_password"]
		}
		return errAt(tok, err)
	}
	if err := checkDefaultPlan(a.DefaultPlan, a.Plans); err != nil {
		tok, ok := seen["default_plan"]
		if !ok {
			tok = start
		}
		return errAt(tok, err)
	}
	if a.Stripe != nil {
		if err := checkStripe(a.Stripe, time.Duration(a.GracePeriod)); err != nil {
			return errAt(seen["stripe"], fmt.Errorf("stripe: %w", err))
		}
	}
	// Everything was checked above, line by line; this keeps the Caddyfile from accepting what
	// Validate rejects, should the two ever drift apart.
	if err := validateConfig(a); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// parseAuthRate reads `auth_rate <route> <n>/<duration> [burst <n>]`.
func parseAuthRate(d *caddyfile.Dispenser) (AuthRateConfig, error) {
	args := d.RemainingArgs()
	if len(args) != 2 && len(args) != 4 {
		return AuthRateConfig{}, errors.New("auth_rate: want <route> <n>/<duration> [burst <n>]")
	}
	ar := AuthRateConfig{Route: args[0], Rate: args[1]}
	if len(args) == 4 {
		n, err := strconv.ParseInt(args[3], 10, 64)
		if args[2] != "burst" || err != nil {
			return AuthRateConfig{}, fmt.Errorf("auth_rate %s: want burst <n> after the rate, got %q %q", ar.Route, args[2], args[3])
		}
		if err := checkBurst(n); err != nil {
			return AuthRateConfig{}, fmt.Errorf("auth_rate %s: %w", ar.Route, err)
		}
		ar.Burst = n
	}
	return ar, nil
}

// parseStripe reads a `stripe` block.
func parseStripe(d *caddyfile.Dispenser) (*StripeConfig, error) {
	if d.NextArg() {
		return nil, d.Err("stripe takes no arguments, only a block")
	}
	s := new(StripeConfig)
	options := s.stringOptions()
	seen := make(map[string]caddyfile.Token)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		err := noRepeat(d, seen)
		if err == nil {
			if o := findString(options, d.Val()); o != nil {
				err = parseStringOption(d, o)
			} else if d.Val() == "retry_schedule" {
				s.RetrySchedule, err = parseDurations(d)
			} else {
				err = fmt.Errorf("unknown option %q", d.Val())
			}
		}
		if err != nil {
			return nil, d.WrapErr(fmt.Errorf("stripe: %w", err))
		}
	}
	return s, nil
}

// parseDurations reads the arguments of an option that takes one or more durations.
func parseDurations(d *caddyfile.Dispenser) ([]caddy.Duration, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, fmt.Errorf("%s needs at least one duration", name)
	}
	out := make([]caddy.Duration, 0, len(args))
	for _, a := range args {
		v, err := caddy.ParseDuration(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a duration", name, a)
		}
		out = append(out, caddy.Duration(v))
	}
	return out, nil
}

// parsePlan reads a `plan <id>` block; before are the plans defined above it.
func parsePlan(d *caddyfile.Dispenser, before []PlanConfig) (PlanConfig, error) {
	start := d.Token()
	if !d.NextArg() {
		return PlanConfig{}, d.Err("plan: missing plan id (plan <id> { ... })")
	}
	p := PlanConfig{ID: d.Val()}
	if err := checkNewPlanID(p.ID, before); err != nil {
		return PlanConfig{}, d.WrapErr(err)
	}
	if d.NextArg() {
		return PlanConfig{}, d.Errf("plan %q: takes one argument, the plan id, then a block", p.ID)
	}

	options := p.stringOptions()
	seen := make(map[string]caddyfile.Token)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		err := noRepeat(d, seen)
		if err == nil {
			if d.Val() == "burst" {
				err = parseBurst(d, &p.Burst)
			} else if d.Val() == "exact" {
				err = parseFlag(d, &p.Exact)
			} else if o := findString(options, d.Val()); o != nil {
				err = parseStringOption(d, o)
			} else {
				err = fmt.Errorf("unknown option %q", d.Val())
			}
		}
		if err != nil {
			return PlanConfig{}, d.WrapErr(fmt.Errorf("plan %q: %w", p.ID, err))
		}
	}
	if err := checkPlan(&p); err != nil {
		return PlanConfig{}, errAt(start, err)
	}
	return p, nil
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
//	saas_api [<matcher>]
//
// It takes no arguments and no block: everything comes from the `saas` app.
func (h *APIHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("saas_api takes no arguments, got %q", d.Val())
	}
	if err := noBlock(d); err != nil {
		return d.WrapErr(fmt.Errorf("saas_api %w", err))
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

// parseStringOption reads the one value of o and checks it.
func parseStringOption(d *caddyfile.Dispenser, o *stringOption) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	if err := o.validate(v); err != nil {
		return err
	}
	*o.value = v
	return nil
}

// parseDurationOption reads the one value of o, a positive duration.
func parseDurationOption(d *caddyfile.Dispenser, o *durationOption) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%s: %q is not a duration (e.g. 30m, 1h, 7d)", o.name, v)
	}
	if err := checkPositiveDuration(o.name, dur); err != nil {
		return err
	}
	*o.value = caddy.Duration(dur)
	return nil
}

// parseBurst reads the one value of burst, a positive integer.
func parseBurst(d *caddyfile.Dispenser, dst *int64) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("burst: %q is not a positive integer", v)
	}
	if err := checkBurst(n); err != nil {
		return err
	}
	*dst = n
	return nil
}

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

func findString(options []stringOption, name string) *stringOption {
	for i := range options {
		if options[i].name == name {
			return &options[i]
		}
	}
	return nil
}

func findDuration(options []durationOption, name string) *durationOption {
	for i := range options {
		if options[i].name == name {
			return &options[i]
		}
	}
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
