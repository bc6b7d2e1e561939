// Package caddymodule adapts the control plane to Caddy: the `saas` app (configured by the
// `saas` global option), and the HTTP handlers that call into it.
package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the `saas` app. It owns the shared infrastructure (the MongoDB client or embedded
// FerretDB, later Redis) and the control-plane service that the handlers call.
type App struct {
	// MongoDB connection string. Default: empty, which starts an embedded FerretDB storing
	// SQLite files under DataDir.
	MongoURI string `json:"mongo_uri,omitempty"`
	// Database name. Default: "saasgate".
	Database string `json:"database,omitempty"`
	// Directory for the embedded database and the generated JWT secret. Default: "./data".
	DataDir string `json:"data_dir,omitempty"`
	// Redis URL (redis://, rediss://, redis-sentinel:// style options through go-redis'
	// UniversalClient). Default: empty, an in-process limiter good for one instance only.
	RedisURL string `json:"redis_url,omitempty"`
	// HS256 signing secret of access tokens, at least 32 bytes. Default: empty, a random secret
	// generated once and kept in DataDir/jwt_secret (mode 0600).
	JWTSecret string `json:"jwt_secret,omitempty"`
	// The `iss` claim of issued tokens, checked on verification. Default: "saasgate".
	JWTIssuer string `json:"jwt_issuer,omitempty"`
	// Lifetime of access tokens. Default: 1h.
	AccessTTL caddy.Duration `json:"access_ttl,omitempty"`
	// Domain under which tenants are subdomains. Default: "localhost".
	BaseDomain string `json:"base_domain,omitempty"`
	// Email of the platform admin created at start when both it and AdminPassword are set.
	AdminEmail string `json:"admin_email,omitempty"`
	// Password of the platform admin (only used to create it).
	AdminPassword string `json:"admin_password,omitempty"`
	// Plan id new tenants start on. Default: "free".
	DefaultPlan string `json:"default_plan,omitempty"`
	// How long a tenant whose payment failed keeps its plan before suspension. Default: 168h.
	GracePeriod caddy.Duration `json:"grace_period,omitempty"`
	// What the rate limiter does when Redis fails: "local" (an in-process limiter carries on
	// at the plan's rate), "allow" or "deny" (503). Default: "local".
	OnLimiterError string `json:"on_limiter_error,omitempty"`
	// Stripe billing. Default: nil, billing disabled (/subscriptions answers 503).
	Stripe *StripeConfig `json:"stripe,omitempty"`
	// The plan catalog. Default: one plan "free" (60/1m, burst 60, 10000/month).
	Plans []PlanConfig `json:"plans,omitempty"`
}

// StripeConfig configures billing through Stripe.
type StripeConfig struct {
	// Secret API key (sk_...). Required for billing.
	SecretKey string `json:"secret_key,omitempty"`
	// Signing secret of the webhook endpoint (whsec_...).
	WebhookSecret string `json:"webhook_secret,omitempty"`
	// Base URL of the Stripe API. Default: Stripe's; tests point it at stripe-mock.
	APIBase string `json:"api_base,omitempty"`
	// Where Checkout sends the customer after paying.
	SuccessURL string `json:"success_url,omitempty"`
	// Where Checkout sends the customer after giving up.
	CancelURL string `json:"cancel_url,omitempty"`
}

// PlanConfig is one plan of the catalog.
type PlanConfig struct {
	// Plan id: lower-case letters, digits, '-' and '_'.
	ID string `json:"id"`
	// Display name. Default: the id.
	Name string `json:"name,omitempty"`
	// "<n>/<duration>", e.g. "100/1h" or "20/1s". Required.
	Rate string `json:"rate"`
	// Requests allowed at once above the steady rate. Default: n of Rate.
	Burst int64 `json:"burst,omitempty"`
	// "<n>/month". Default: no quota.
	Quota string `json:"quota,omitempty"`
	// Stripe price id that buys this plan. Default: none, not purchasable.
	StripePrice string `json:"stripe_price,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "saas",
		New: func() caddy.Module { return new(App) },
	}
}
