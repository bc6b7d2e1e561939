package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/token"
)

// The checks below are written once and used twice: by Validate for JSON configs, and by the
// Caddyfile parser line by line, so that both reject the same configs with the same words.
// An empty value means "use the default" and is never checked; a value that still holds a
// runtime placeholder ("{env.JWT_SECRET}") is not known before Provision and is not checked
// either. Error messages never repeat secrets.

// Validate checks the configuration, so that a bad value fails `saasgate validate` and a
// reload instead of the first request that needs it.
func (a *App) Validate() error {
	return validateConfig(a)
}

// validateConfig checks every value of the `saas` app config and how they fit together.
func validateConfig(a *App) error {
	for _, o := range a.options() {
		if err := o.validate(); err != nil {
			return err
		}
	}
	if err := checkAdminPair(a.AdminEmail, a.AdminPassword); err != nil {
		return err
	}
	if a.Stripe != nil {
		for _, o := range a.Stripe.options() {
			if err := o.validate(); err != nil {
				return fmt.Errorf("stripe: %w", err)
			}
		}
		if err := checkStripe(a.Stripe, time.Duration(a.GracePeriod)); err != nil {
			return fmt.Errorf("stripe: %w", err)
		}
	}
	if a.Webhooks != nil {
		for _, o := range a.Webhooks.options() {
			if err := o.validate(); err != nil {
				return fmt.Errorf("webhooks: %w", err)
			}
		}
		if err := checkWebhooks(a.Webhooks); err != nil {
			return fmt.Errorf("webhooks: %w", err)
		}
	}
	for i, ar := range a.AuthRates {
		if err := checkAuthRate(ar, a.AuthRates[:i]); err != nil {
			return fmt.Errorf("auth_rates[%d]: %w", i, err)
		}
	}
	for i := range a.Plans {
		p := &a.Plans[i]
		if err := checkNewPlanID(p.ID, a.Plans[:i]); err != nil {
			return fmt.Errorf("plans[%d]: %w", i, err)
		}
		if err := checkPlan(p); err != nil {
			return fmt.Errorf("plans[%d]: %w", i, err)
		}
	}
	return checkDefaultPlan(a.DefaultPlan, a.Plans)
}

// isPlaceholder reports whether s still holds a runtime placeholder such as {env.X}.
// Caddyfile {$X} placeholders are expanded by the lexer and never get here.
func isPlaceholder(s string) bool {
	return strings.Contains(s, "{")
}

// namedErr prefixes err with the option name, unless the message already starts with it (the
// plan package names the value it rejects: `rate "10/xyz": ...`).
func namedErr(name string, err error) error {
	if strings.HasPrefix(err.Error(), name+" ") {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

func checkPositiveDuration(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s: %s is not a positive duration", name, d)
	}
	return nil
}

// checkMongoURI looks at the shape only; the driver parses the rest when connecting. The URI
// may carry a password, so it is not quoted back.
func checkMongoURI(s string) error {
	rest, ok := strings.CutPrefix(s, "mongodb://")
	if !ok {
		rest, ok = strings.CutPrefix(s, "mongodb+srv://")
	}
	if !ok {
		return errors.New("must start with mongodb:// or mongodb+srv://")
	}
	hosts, _, _ := strings.Cut(rest, "/")
	hosts, _, _ = strings.Cut(hosts, "?")
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		hosts = hosts[i+1:]
	}
	if hosts == "" {
		return errors.New("names no host (e.g. mongodb://localhost:27017)")
	}
	return nil
}

// checkDatabaseName applies MongoDB's rules for database names.
func checkDatabaseName(s string) error {
	if len(s) >= 64 || strings.ContainsAny(s, "/\\. \"$*<>:|?\x00") {
		return fmt.Errorf("%q is not a MongoDB database name (under 64 bytes, none of /\\. \"$*<>:|?)", s)
	}
	return nil
}

// checkRedisURL parses the URL the way the limiter will. The URL may carry a password, so it
// is not quoted back.
func checkRedisURL(s string) error {
	scheme, _, _ := strings.Cut(s, "://")
	switch scheme {
	case "redis", "rediss", "unix":
	default:
		return errors.New("must start with redis://, rediss:// or unix://")
	}
	if _, err := url.Parse(s); err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("not a URL: %w", err)
	}
	client, err := store.OpenRedis(store.RedisOptions{URL: s})
	if err != nil {
		return err
	}
	return client.Close()
}

func checkRedisPrefix(s string) error {
	if len(s) > 64 || strings.ContainsAny(s, "{} \t\r\n") {
		return errors.New("must be at most 64 characters without braces or white space")
	}
	return nil
}

func checkJWTSecret(s string) error {
	if len(s) < token.MinSecretLen {
		return fmt.Errorf("is %d bytes, at least %d are required (e.g. openssl rand -base64 48)", len(s), token.MinSecretLen)
	}
	return nil
}

// checkBaseDomain wants a lower-case host name: tenants are its subdomains, and request hosts
// are compared in lower case.
func checkBaseDomain(s string) error {
	if net.ParseIP(s) != nil {
		return fmt.Errorf("%q is an IP address; tenants need a domain name to be subdomains of", s)
	}
	bad := fmt.Errorf("%q is not a lower-case host name such as example.com (no scheme, port or path)", s)
	if len(s) > 253 {
		return bad
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return bad
			}
		}
	}
	return nil
}

// checkAdminEmail and checkAdminPassword apply the rules the admin account is created with, so
// that a bad pair fails here rather than at start.
func checkAdminEmail(s string) error {
	if _, err := account.NormalizeEmail(s); err != nil {
		return fmt.Errorf("%q: %s", s, domainMessage(err))
	}
	return nil
}

func checkAdminPassword(s string) error {
	if err := account.CheckPassword(s); err != nil {
		return errors.New(domainMessage(err))
	}
	return nil
}

// domainMessage is the human part of a domain error, without its code.
func domainMessage(err error) string {
	msg := err.Error()
	if e, ok := errs.As(err); ok {
		msg = e.Message
	}
	return strings.TrimSuffix(msg, ".")
}

// checkAdminPair: the platform admin is created only when both are set, so one alone is
// almost certainly a mistake.
func checkAdminPair(email, password string) error {
	switch {
	case email != "" && password == "":
		return errors.New("admin_email is set without admin_password; set both to create the platform admin, or neither")
	case email == "" && password != "":
		return errors.New("admin_password is set without admin_email; set both to create the platform admin, or neither")
	}
	return nil
}

func checkReadPreference(s string) error {
	if !slices.Contains(store.ReadPreferences, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(store.ReadPreferences, ", "))
	}
	return nil
}

func checkTenantLayout(s string) error {
	_, err := store.ParseLayout(s)
	return err
}

func checkOnLimiterError(s string) error {
	switch s {
	case "allow", "deny", "local":
		return nil
	}
	return fmt.Errorf("%q is not one of allow, deny, local", s)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

func checkStripeSecretKey(s string) error {
	switch {
	case strings.HasPrefix(s, "sk_"), strings.HasPrefix(s, "rk_"):
		return nil
	case strings.HasPrefix(s, "pk_"):
		return errors.New("is a publishable key (pk_...); billing needs a secret key (sk_...) or a restricted key (rk_...)")
	}
	return errors.New("must be a secret key (sk_...) or a restricted key (rk_...)")
}

// checkStripe checks how the stripe options fit together and with grace_period.
func checkStripe(s *StripeConfig, grace time.Duration) error {
	if s.SecretKey != "" && s.SuccessURL == "" {
		return errors.New("success_url is required with secret_key: Checkout sends the customer there after paying")
	}
	if grace == 0 {
		grace = control.DefaultGracePeriod
	}
	return checkRetrySchedule(s.RetrySchedule, grace)
}

// checkRetrySchedule wants increasing positive durations, each within the grace period (a
// retry after it would come after the suspension).
func checkRetrySchedule(schedule []caddy.Duration, grace time.Duration) error {
	if len(schedule) > 10 {
		return errors.New("retry_schedule: at most 10 retries")
	}
	var prev time.Duration
	for _, d := range schedule {
		v := time.Duration(d)
		switch {
		case v <= prev:
			return fmt.Errorf("retry_schedule: %s must be positive and after the retry before it", v)
		case v >= grace:
			return fmt.Errorf("retry_schedule: %s is not within grace_period (%s); the tenant is suspended by then", v, grace)
		}
		prev = v
	}
	return nil
}

func checkStripeWebhookSecret(s string) error {
	if !strings.HasPrefix(s, "whsec_") {
		return errors.New("must be a webhook signing secret (whsec_...)")
	}
	return nil
}

func checkPlanID(s string) error {
	if !plan.ValidID(s) {
		return fmt.Errorf("%q is not a plan id (lower-case letters, digits, '-' and '_', at most 64)", s)
	}
	return nil
}

func checkRate(s string) error {
	_, err := plan.ParseRate(s)
	return err
}

func checkQuota(s string) error {
	_, err := plan.ParseQuota(s)
	return err
}

// checkAuthRate checks one auth route limit against the ones before it.
func checkAuthRate(ar AuthRateConfig, before []AuthRateConfig) error {
	if _, ok := control.DefaultAuthRates[ar.Route]; !ok {
		return fmt.Errorf("auth_rate: unknown route %q (want signup, login, refresh or mfa)", ar.Route)
	}
	for _, b := range before {
		if b.Route == ar.Route {
			return fmt.Errorf("auth_rate %s: given twice", ar.Route)
		}
	}
	if err := checkRate(ar.Rate); err != nil {
		return fmt.Errorf("auth_rate %s: %w", ar.Route, err)
	}
	if ar.Burst != 0 {
		if err := checkCount("burst", ar.Burst); err != nil {
			return fmt.Errorf("auth_rate %s: %w", ar.Route, err)
		}
	}
	return nil
}

// checkCount wants a positive integer.
func checkCount(name string, n int64) error {
	if n <= 0 {
		return fmt.Errorf("%s: %d is not a positive integer", name, n)
	}
	return nil
}

// checkNewPlanID checks the id of a plan about to join the ones defined before it. Plan ids
// are names in the config, not values: they cannot be placeholders.
func checkNewPlanID(id string, before []PlanConfig) error {
	if err := checkPlanID(id); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	for _, p := range before {
		if p.ID == id {
			return fmt.Errorf("plan %q is defined twice", id)
		}
	}
	return nil
}

// checkPlan checks one plan's options (its id is checkNewPlanID's) and that it has a rate.
func checkPlan(p *PlanConfig) error {
	for _, o := range p.options() {
		if err := o.validate(); err != nil {
			return fmt.Errorf("plan %q: %w", p.ID, err)
		}
	}
	if p.Rate == "" {
		return fmt.Errorf("plan %q: rate is required (e.g. rate 100/1h)", p.ID)
	}
	return nil
}

// checkDefaultPlan checks that new tenants get a plan that exists. Unset, it means "free";
// with no plan defined, the catalog holds only the built-in "free" plan.
func checkDefaultPlan(defaultPlan string, plans []PlanConfig) error {
	if isPlaceholder(defaultPlan) {
		return nil
	}
	var ids []string
	for _, p := range plans {
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		for _, p := range plan.DefaultPlans() {
			ids = append(ids, p.ID)
		}
	}
	id := defaultPlan
	if id == "" {
		id = "free"
	}
	for _, defined := range ids {
		if defined == id {
			return nil
		}
	}
	if defaultPlan == "" {
		return fmt.Errorf(`default_plan is not set, so it is "free", but no plan "free" is defined: set default_plan to one of %s`, strings.Join(ids, ", "))
	}
	return fmt.Errorf("default_plan %q is not a defined plan (defined: %s)", defaultPlan, strings.Join(ids, ", "))
}
