package caddymodule

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/saasgate/saasgate/control"
)

// The `saas` global option: its option tables, its syntax and its parser.

// The option tables. One row per option says its name (the same in the Caddyfile and in
// JSON), where its value lives, its default and its check (the row types are in option.go).
// The Caddyfile parser, Validate and Provision all work from the rows, so adding an option
// takes its field on the config struct (whose doc comment states the default, and which
// App.Start hands to the control plane), its row here with its line in the syntax comment
// below, and its line in the README. TestOptions_DocumentedEverywhere keeps the syntax comment
// and the README in step with the rows.
//
// Options that repeat (plan, auth_rate) or hold a block (stripe, webhooks) are parsed by hand
// below; the options inside stripe, webhooks and plan blocks have tables of their own.

func (a *App) options() []option {
	return []option{
		stringOption{"mongo_uri", &a.MongoURI, "", checkMongoURI},
		countOption{"mongo_pool_size", &a.MongoPoolSize},
		durationOption{"mongo_connect_timeout", &a.MongoConnectTimeout, control.DefaultMongoTimeout},
		durationOption{"mongo_server_selection_timeout", &a.MongoServerSelectionTimeout, control.DefaultMongoTimeout},
		stringOption{"mongo_read_preference", &a.MongoReadPreference, control.DefaultReadPreference, checkReadPreference},
		stringOption{"database", &a.Database, control.DefaultDatabase, checkDatabaseName},
		stringOption{"data_dir", &a.DataDir, control.DefaultDataDir, nil},
		stringOption{"redis_url", &a.RedisURL, "", checkRedisURL},
		stringOption{"redis_prefix", &a.RedisPrefix, control.DefaultKeyPrefix, checkRedisPrefix},
		durationOption{"redis_timeout", &a.RedisTimeout, control.DefaultRedisTimeout},
		stringOption{"jwt_secret", &a.JWTSecret, "", checkJWTSecret},
		stringOption{"jwt_issuer", &a.JWTIssuer, control.DefaultIssuer, nil},
		durationOption{"access_ttl", &a.AccessTTL, control.DefaultAccessTTL},
		stringOption{"base_domain", &a.BaseDomain, control.DefaultBaseDomain, checkBaseDomain},
		stringOption{"admin_email", &a.AdminEmail, "", checkAdminEmail},
		stringOption{"admin_password", &a.AdminPassword, "", checkAdminPassword},
		stringOption{"default_plan", &a.DefaultPlan, control.DefaultPlan, checkPlanID},
		durationOption{"grace_period", &a.GracePeriod, control.DefaultGracePeriod},
		stringOption{"on_limiter_error", &a.OnLimiterError, control.DefaultOnLimiterError, checkOnLimiterError},
		durationOption{"audit_retention", &a.AuditRetention, 0},
		stringOption{"tenant_layout", &a.TenantLayout, control.DefaultTenantLayout, checkTenantLayout},
		intsOption{"usage_alerts", &a.UsageAlerts, control.DefaultUsageAlerts, checkUsageAlerts},
	}
}

// options of the webhooks block. retry_schedule's rule is checkWebhooks'.
func (w *WebhooksConfig) options() []option {
	return []option{
		durationsOption{"retry_schedule", &w.RetrySchedule},
		durationOption{"timeout", &w.Timeout, control.DefaultWebhookTimeout},
		stringsOption{"allow_private", &w.AllowPrivate, checkCIDR},
	}
}

// options of the stripe block. retry_schedule's rule depends on grace_period: checkStripe has it.
func (s *StripeConfig) options() []option {
	return []option{
		stringOption{"secret_key", &s.SecretKey, "", checkStripeSecretKey},
		stringOption{"webhook_secret", &s.WebhookSecret, "", checkStripeWebhookSecret},
		stringOption{"api_base", &s.APIBase, "", checkHTTPURL},
		stringOption{"success_url", &s.SuccessURL, "", checkHTTPURL},
		stringOption{"cancel_url", &s.CancelURL, "", checkHTTPURL},
		stringOption{"return_url", &s.ReturnURL, "", checkHTTPURL},
		durationsOption{"retry_schedule", &s.RetrySchedule},
	}
}

// options of a plan block, without its id (the argument of `plan`). The defaults of burst and
// name depend on other values; the plan package fills them.
func (p *PlanConfig) options() []option {
	return []option{
		stringOption{"name", &p.Name, "", nil},
		stringOption{"rate", &p.Rate, "", checkRate},
		countOption{"burst", &p.Burst},
		stringOption{"quota", &p.Quota, "", checkQuota},
		stringOption{"stripe_price", &p.StripePrice, "", nil},
		flagOption{"exact", &p.Exact},
	}
}

// parseGlobalOption sets up the `saas` app from its global option, given once. Syntax:
//
//	saas {
//		mongo_uri        <mongodb://... | mongodb+srv://...>
//		mongo_pool_size  <n>
//		mongo_connect_timeout          <duration>
//		mongo_server_selection_timeout <duration>
//		mongo_read_preference primary|primaryPreferred|secondary|secondaryPreferred|nearest
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
//		usage_alerts     <percent>...
//		audit_retention  <duration>
//		tenant_layout    collections|shared
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
//		webhooks {
//			retry_schedule <duration>...
//			timeout        <duration>
//			allow_private  <cidr>...
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
// auth_rate, given once per route. usage_alerts are 1 to 10 increasing percentages (1..100);
// the webhooks retry_schedule is 1 to 20 delays, each counted from the attempt before (only
// the first may be 0: at once). Each value is checked here, as App.Validate does for JSON, unless it holds a runtime placeholder
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

	options := a.options()
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
		if name == "webhooks" {
			w, err := parseWebhooks(d)
			if err != nil {
				return err
			}
			a.Webhooks = w
			continue
		}
		o := findOption(options, name)
		if o == nil {
			return d.WrapErr(fmt.Errorf("unknown saas option %q", name))
		}
		if err := o.parse(d); err != nil {
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
		if err := checkCount("burst", n); err != nil {
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
	if err := parseBlock(d, s.options()); err != nil {
		return nil, d.WrapErr(fmt.Errorf("stripe: %w", err))
	}
	return s, nil
}

// parseWebhooks reads a `webhooks` block.
func parseWebhooks(d *caddyfile.Dispenser) (*WebhooksConfig, error) {
	start := d.Token()
	if d.NextArg() {
		return nil, d.Err("webhooks takes no arguments, only a block")
	}
	w := new(WebhooksConfig)
	if err := parseBlock(d, w.options()); err != nil {
		return nil, d.WrapErr(fmt.Errorf("webhooks: %w", err))
	}
	if err := checkWebhooks(w); err != nil {
		return nil, errAt(start, fmt.Errorf("webhooks: %w", err))
	}
	return w, nil
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

	if err := parseBlock(d, p.options()); err != nil {
		return PlanConfig{}, d.WrapErr(fmt.Errorf("plan %q: %w", p.ID, err))
	}
	if err := checkPlan(&p); err != nil {
		return PlanConfig{}, errAt(start, err)
	}
	return p, nil
}

// parseBlock reads the options of a block (stripe, plan) from its table, each at most once.
func parseBlock(d *caddyfile.Dispenser, options []option) error {
	seen := make(map[string]caddyfile.Token)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := noRepeat(d, seen); err != nil {
			return err
		}
		o := findOption(options, d.Val())
		if o == nil {
			return fmt.Errorf("unknown option %q", d.Val())
		}
		if err := o.parse(d); err != nil {
			return err
		}
	}
	return nil
}
