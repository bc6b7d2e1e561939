// Package caddymodule adapts the control plane to Caddy: the `saas` app (configured by the
// `saas` global option), and the HTTP handlers that call into it.
package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/token"
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
	// Most connections the driver opens to each server. Default: 100.
	MongoPoolSize int64 `json:"mongo_pool_size,omitempty"`
	// Bound on opening one connection to a server. Default: 10s.
	MongoConnectTimeout caddy.Duration `json:"mongo_connect_timeout,omitempty"`
	// How long an operation waits for a suitable server (a primary, for writes) before it
	// fails: during a replica-set election, requests wait up to this. Default: 10s.
	MongoServerSelectionTimeout caddy.Duration `json:"mongo_server_selection_timeout,omitempty"`
	// Where reads go: primary, primaryPreferred, secondary, secondaryPreferred or nearest.
	// Non-primary reads may be stale by the replication lag. Default: primary.
	MongoReadPreference string `json:"mongo_read_preference,omitempty"`
	// Database name. Default: "saasgate".
	Database string `json:"database,omitempty"`
	// Directory for the embedded database and the generated JWT secret. Default: "./data".
	DataDir string `json:"data_dir,omitempty"`
	// Redis URL: redis:// or rediss:// for one server, with `?master_name=m&addr=...` for
	// Sentinel, with extra `?addr=host:port` parameters for Cluster. Default: empty, an
	// in-process limiter and cache good for one instance only.
	RedisURL string `json:"redis_url,omitempty"`
	// Prefix of every Redis key and channel. Default: "saasgate:".
	RedisPrefix string `json:"redis_prefix,omitempty"`
	// Bound on each limiter call to Redis (dial, read, write). Default: 50ms.
	RedisTimeout caddy.Duration `json:"redis_timeout,omitempty"`
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
	// How long audit entries are kept; older ones are swept, the chain anchored where they
	// end. Default: 0, kept forever.
	AuditRetention caddy.Duration `json:"audit_retention,omitempty"`
	// Where tenants' users, invitations, audit entries and webhook endpoints live:
	// "collections" (each tenant its own) or "shared" (one collection each, keyed by
	// tenant_id). Chosen at install: the app refuses to start over the other layout's data.
	// Default: "collections".
	TenantLayout string `json:"tenant_layout,omitempty"`
	// Limits of the anonymous auth routes per client IP (Caddy's, after trusted_proxies).
	// Default: signup 20/1h, login 60/1m, refresh 60/1m, mfa 30/1m, each with a burst of n.
	AuthRates []AuthRateConfig `json:"auth_rates,omitempty"`
	// Stripe billing. Default: nil, billing disabled (/subscriptions answers 503).
	Stripe *StripeConfig `json:"stripe,omitempty"`
	// Shares of a tenant's monthly quota, in percent (1..100, increasing, at most 10), each
	// raising usage.threshold_reached once per quota period. Default: 80, 100.
	UsageAlerts []int `json:"usage_alerts,omitempty"`
	// Delivery of the outbound webhooks. Default: nil, every default of WebhooksConfig.
	Webhooks *WebhooksConfig `json:"webhooks,omitempty"`
	// The plan catalog. Default: one plan "free" (60/1m, burst 60, 10000/month).
	Plans []PlanConfig `json:"plans,omitempty"`

	catalog    *plan.Catalog
	ctx        caddy.Context
	logger     *zap.Logger
	backendKey string
	runtimeKey string
	tokensKey  string
	stop       context.CancelFunc
	service    atomic.Pointer[control.Service]
	ready      chan struct{} // closed once service is set
	// tokens remembers the tokens verified over service's keys (or keys that verify alike:
	// see tokenCaches); set before service is.
	tokens *token.VerifiedCache[*callerView]
}

// AuthRateConfig limits one anonymous auth route per client IP.
type AuthRateConfig struct {
	// "signup", "login", "refresh" or "mfa".
	Route string `json:"route"`
	// "<n>/<duration>", e.g. "20/1h". Required.
	Rate string `json:"rate"`
	// Requests allowed at once. Default: n of Rate.
	Burst int64 `json:"burst,omitempty"`
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
	// Where the customer portal sends the customer back. Default: SuccessURL.
	ReturnURL string `json:"return_url,omitempty"`
	// When a failed payment is retried, counted from the failure; each before grace_period.
	// Default: 24h, 72h, 120h.
	RetrySchedule []caddy.Duration `json:"retry_schedule,omitempty"`
}

// WebhooksConfig configures the delivery of notifications to webhook endpoints.
type WebhooksConfig struct {
	// When each attempt of a delivery is made, counted from the attempt before; the first
	// entry is the first attempt (0: at once). Each is jittered by ±10 %. 1 to 20 entries.
	// Default: 0, 5s, 5m, 30m, 2h, 5h, 10h, 10h.
	RetrySchedule []caddy.Duration `json:"retry_schedule,omitempty"`
	// Bound on one attempt: connecting, sending and reading the answer. Default: 15s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// CIDR ranges the SSRF guard lets through (loopback, private, link-local... are refused
	// otherwise), e.g. 10.1.0.0/16 for receivers on the operator's network. Default: none.
	AllowPrivate []string `json:"allow_private,omitempty"`
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
	// Decide every request with its own call to Redis, exact across the fleet, instead of
	// admitting from blocks leased from Redis. Costs a round trip per request. Default: false.
	Exact bool `json:"exact,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "saas",
		New: func() caddy.Module { return new(App) },
	}
}

// backends holds database connections (and embedded servers) across config reloads, keyed by
// where the data lives, so a reload neither reconnects nor restarts the embedded FerretDB.
var backends = caddy.NewUsagePool()

type pooledBackend struct{ *control.Backend }

func (p pooledBackend) Destruct() error { return p.Close() }

// runtimes holds the request path's state (tenant cache, local limiter, Redis clients) across
// reloads, so counters and caches survive them.
var runtimes = caddy.NewUsagePool()

type pooledRuntime struct{ *control.Runtime }

func (p pooledRuntime) Destruct() error { return p.Close() }

// tokenCaches holds the caches of verified access tokens across reloads, keyed by the
// fingerprint of the keys they verify with (token.Keys.Fingerprint: jwt_secret and
// jwt_issuer, the secret generated in data_dir when none is set). A reload that keeps both
// keeps every verified token; one that changes either gets an empty cache, so a token of the
// old keys is checked against the new ones, and refused. An entry holds the caller's identity
// and nothing of the tenant or its plan (newCallerView), so a plan change applies on the next
// request all the same.
var tokenCaches = caddy.NewUsagePool()

type pooledTokens struct {
	*token.VerifiedCache[*callerView]
}

func (pooledTokens) Destruct() error { return nil }

// Provision fills defaults and builds the plan catalog. It does no I/O: it also runs for
// `saasgate validate`.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.ready = make(chan struct{})
	// Runtime placeholders ({env.X}, {file.path}) are resolved once here, and the defaults
	// filled; Validate then checks the resolved values.
	a.provisionOptions()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	catalog, err := buildCatalog(a.Plans, a.DefaultPlan)
	if err != nil {
		return err
	}
	a.catalog = catalog
	return nil
}

func buildCatalog(configs []PlanConfig, defaultPlan string) (*plan.Catalog, error) {
	plans := make([]*plan.Plan, 0, len(configs))
	for _, pc := range configs {
		rate, err := plan.ParseRate(pc.Rate)
		if err != nil {
			return nil, fmt.Errorf("plan %q: %w", pc.ID, err)
		}
		p := &plan.Plan{ID: pc.ID, Name: pc.Name, Rate: rate, Burst: pc.Burst, StripePrice: pc.StripePrice, Exact: pc.Exact}
		if pc.Quota != "" {
			if p.Quota, err = plan.ParseQuota(pc.Quota); err != nil {
				return nil, fmt.Errorf("plan %q: %w", pc.ID, err)
			}
		}
		plans = append(plans, p)
	}
	return plan.NewCatalog(plans, defaultPlan)
}

// Start refuses a config whose saas handlers can run without saas_tenant before them
// (checkHandlerOrder), then connects to the database (starting the embedded one if configured
// so), opens the request-path runtime, builds the control-plane service and starts its
// housekeeping.
func (a *App) Start() error {
	if err := checkConfigOrder(a.ctx); err != nil {
		return fmt.Errorf("saas: %w", err)
	}
	mongo := store.Options{
		PoolSize: uint64(a.MongoPoolSize), ConnectTimeout: time.Duration(a.MongoConnectTimeout),
		ServerSelectionTimeout: time.Duration(a.MongoServerSelectionTimeout), ReadPreference: a.MongoReadPreference,
	}
	a.backendKey = fmt.Sprintf("mongo|%s|%s|%s|%+v", a.MongoURI, a.Database, a.DataDir, mongo)
	val, _, err := backends.LoadOrNew(a.backendKey, func() (caddy.Destructor, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := control.OpenBackend(ctx, control.BackendConfig{
			MongoURI: a.MongoURI, Database: a.Database, DataDir: a.DataDir, Mongo: mongo, Logger: a.logger,
		})
		if err != nil {
			return nil, err
		}
		return pooledBackend{b}, nil
	})
	if err != nil {
		a.backendKey = ""
		return fmt.Errorf("saas: %w", err)
	}
	backend := val.(pooledBackend).Backend

	a.runtimeKey = "runtime|" + a.RedisURL + "|" + a.RedisPrefix + "|" + time.Duration(a.RedisTimeout).String()
	val, _, err = runtimes.LoadOrNew(a.runtimeKey, func() (caddy.Destructor, error) {
		rt, err := control.OpenRuntime(control.RuntimeConfig{
			RedisURL: a.RedisURL, RedisTimeout: time.Duration(a.RedisTimeout), KeyPrefix: a.RedisPrefix,
			TenantView: newTenantView, TenantLoaded: tenantLoaded, Logger: a.logger,
		})
		if err != nil {
			return nil, err
		}
		return pooledRuntime{rt}, nil
	})
	if err != nil {
		a.runtimeKey = ""
		_ = a.Stop()
		return fmt.Errorf("saas: %w", err)
	}
	runtime := val.(pooledRuntime).Runtime

	authRates := make(map[string]control.AuthRate, len(a.AuthRates))
	for _, ar := range a.AuthRates {
		rate, err := plan.ParseRate(ar.Rate)
		if err != nil {
			_ = a.Stop()
			return fmt.Errorf("saas: auth_rate %s: %w", ar.Route, err)
		}
		authRates[ar.Route] = control.AuthRate{Rate: rate, Burst: ar.Burst}
	}
	var stripeCfg control.StripeConfig
	var billingCfg control.BillingConfig
	if s := a.Stripe; s != nil {
		stripeCfg = control.StripeConfig{SecretKey: s.SecretKey, APIBase: s.APIBase}
		billingCfg = control.BillingConfig{WebhookSecret: s.WebhookSecret, SuccessURL: s.SuccessURL, CancelURL: s.CancelURL, ReturnURL: s.ReturnURL}
		for _, d := range s.RetrySchedule {
			billingCfg.RetrySchedule = append(billingCfg.RetrySchedule, time.Duration(d))
		}
	}
	billingCfg.Grace = time.Duration(a.GracePeriod)
	billingCfg.ObserveWebhook = countWebhook
	var webhooksCfg notify.Config
	if w := a.Webhooks; w != nil {
		webhooksCfg = notify.Config{RetrySchedule: webhookSchedule(w.RetrySchedule), Timeout: time.Duration(w.Timeout), AllowPrivate: w.AllowPrivate}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := control.New(ctx, backend, runtime, control.Config{
		Stripe:         stripeCfg,
		Billing:        billingCfg,
		DataDir:        a.DataDir,
		JWTSecret:      []byte(a.JWTSecret),
		JWTIssuer:      a.JWTIssuer,
		AccessTTL:      time.Duration(a.AccessTTL),
		BaseDomain:     a.BaseDomain,
		AdminEmail:     a.AdminEmail,
		AdminPassword:  a.AdminPassword,
		Plans:          a.catalog,
		OnLimiterError: limit.OnError(a.OnLimiterError),
		AuthRates:      authRates,
		AuditRetention: time.Duration(a.AuditRetention),
		TenantLayout:   store.Layout(a.TenantLayout),
		LimitObserver:  limiterMetrics{},
		OnAlert:        countAlert,
		NotifyObserver: notifyMetrics{},
		AuditObserver:  auditMetrics{},
		UsageAlerts:    a.UsageAlerts,
		Webhooks:       webhooksCfg,
		Logger:         a.logger,
	})
	if err != nil {
		_ = a.Stop()
		return fmt.Errorf("saas: %w", err)
	}
	if a.MongoURI == "" && a.TenantLayout == string(store.LayoutShared) {
		a.logger.Warn("tenant_layout shared on the embedded FerretDB: it does not use indexes to filter, so every query " +
			"on a shared collection reads all tenants' documents; the collections layout is faster here (see README, Tenant layouts)")
	}
	runCtx, stop := context.WithCancel(context.Background())
	a.stop = stop
	go svc.Run(runCtx, 10*time.Minute)
	a.tokensKey = "tokens|" + svc.Keys.Fingerprint()
	val, _, _ = tokenCaches.LoadOrNew(a.tokensKey, func() (caddy.Destructor, error) {
		return pooledTokens{token.NewVerifiedCache(svc.Keys, tokenCacheSize, newCallerView)}, nil
	})
	a.tokens = val.(pooledTokens).VerifiedCache
	a.service.Store(svc)
	tenantsByStatus.service.Store(svc)
	close(a.ready)
	a.logger.Info("control plane ready",
		zap.String("database", a.Database), zap.Bool("embedded", a.MongoURI == ""),
		zap.Bool("redis", a.RedisURL != ""), zap.String("base_domain", a.BaseDomain),
		zap.Int("plans", len(a.catalog.All())))
	return nil
}

// Stop ends housekeeping and releases the shared token cache, backend and runtime (each
// closed when no config uses it any more).
func (a *App) Stop() error {
	if a.stop != nil {
		a.stop()
	}
	// A reload starts the new config before stopping this one: leave its service counted.
	tenantsByStatus.service.CompareAndSwap(a.service.Load(), nil)
	var firstErr error
	for _, release := range []struct {
		pool *caddy.UsagePool
		key  *string
	}{{tokenCaches, &a.tokensKey}, {runtimes, &a.runtimeKey}, {backends, &a.backendKey}} {
		if *release.key == "" {
			continue
		}
		if _, err := release.pool.Delete(*release.key); err != nil && firstErr == nil {
			firstErr = err
		}
		*release.key = ""
	}
	return firstErr
}

// Service returns the running control plane, or nil before Start has finished.
func (a *App) Service() *control.Service { return a.service.Load() }

// startWait bounds how long a request arriving during start waits for the control plane.
const startWait = 10 * time.Second

// awaitService returns the control plane, waiting for Start to finish if a request arrives
// first: Caddy starts apps in no fixed order, so the HTTP server can accept requests a moment
// before this app has connected to its database. nil when start takes too long or the
// request is cancelled.
func (a *App) awaitService(r *http.Request) *control.Service {
	if svc := a.service.Load(); svc != nil {
		return svc
	}
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-a.ready:
		return a.service.Load()
	case <-t.C:
	case <-r.Context().Done():
	}
	return nil
}

var (
	_ caddy.App             = (*App)(nil)
	_ caddy.Provisioner     = (*App)(nil)
	_ caddy.Validator       = (*App)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
