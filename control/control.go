// Package control assembles the control plane from its domain packages: one Service per
// configuration, over a Backend (the database connection) that outlives config reloads.
package control

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/billing"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
)

// StripeConfig and BillingConfig configure billing (see package billing).
type (
	StripeConfig  = billing.StripeConfig
	BillingConfig = billing.Config
)

// Config is the control plane's configuration (the `saas` option, already parsed).
type Config struct {
	DataDir       string
	JWTSecret     []byte // empty: generated once and kept in DataDir/jwt_secret
	JWTIssuer     string
	AccessTTL     time.Duration
	BaseDomain    string
	AdminEmail    string
	AdminPassword string
	Plans         *plan.Catalog
	// OnLimiterError is what the limiter does when Redis fails.
	OnLimiterError limit.OnError
	// AuthRates limit the anonymous auth routes per client IP; a route not named here gets
	// its DefaultAuthRates entry.
	AuthRates map[string]AuthRate
	// LimitObserver hears about limiter decisions and Redis health (metrics); may be nil.
	LimitObserver limit.Observer
	// OnAlert hears about excessive usage after it is logged (metrics); may be nil.
	OnAlert func(limit.Alert)
	// NotifyObserver hears about webhook events, deliveries and the outbox (metrics); may be nil.
	NotifyObserver notify.Observer
	// AuditObserver hears about audit appends and failed verifications (metrics); may be nil.
	AuditObserver audit.Observer
	// UsageAlerts are the shares of the quota, in percent and increasing, that raise
	// usage.threshold_reached, each once per quota period (default limit.DefaultThresholds).
	UsageAlerts []int
	// Webhooks is how notifications are delivered (the `webhooks` block; defaults in notify).
	Webhooks notify.Config
	// Events, when set, receives the notifications of billing, accounts and usage instead of
	// the outbox (tests and tools that watch what is published); nil: the outbox.
	Events notify.Publisher
	// Stripe billing; a zero SecretKey disables it.
	Stripe StripeConfig
	// Billing's webhook secret, URLs and payment rules. Its Stripe field is set by New.
	Billing BillingConfig
	// BillingTick is how often the billing scheduler runs (default 1m).
	BillingTick time.Duration
	// AuditRetention is how long audit entries are kept; Sweep deletes older ones and
	// anchors the chain where they end. 0 (the default) keeps them forever.
	AuditRetention time.Duration
	// TenantLayout is where tenants' users, invitations, audit entries and webhook endpoints
	// live (store.LayoutCollections when empty). It is fixed at install: New refuses a
	// database that holds the other layout's data.
	TenantLayout store.Layout
	// EmbeddedTenantLimit is the number of tenants past which New logs a WARN when the store is
	// the embedded one (0: the package's EmbeddedTenantLimit). Tests set it low.
	EmbeddedTenantLimit int
	Logger              *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// AuthRate is the limit of one anonymous auth route per client IP.
type AuthRate struct {
	Rate  plan.Rate
	Burst int64 // 0: Rate.Count
}

// DefaultAuthRates are the limits of the anonymous auth routes, by route.
var DefaultAuthRates = map[string]AuthRate{
	"signup":  {Rate: plan.Rate{Count: 20, Period: time.Hour}},
	"login":   {Rate: plan.Rate{Count: 60, Period: time.Minute}},
	"refresh": {Rate: plan.Rate{Count: 60, Period: time.Minute}},
	"mfa":     {Rate: plan.Rate{Count: 30, Period: time.Minute}},
}

// Service is the assembled control plane. The adapter reaches it through methods (the request
// path's in gateway.go); the exported fields are what outlives a config (Backend, Runtime),
// what the adapter builds its own caches over (Keys), and the managers tests outside this
// package drive directly (Tenants, Billing).
type Service struct {
	Backend *Backend
	Runtime *Runtime
	Keys    *token.Keys
	Tenants *tenant.Manager
	Billing *billing.Manager

	plans    *plan.Catalog
	accounts *account.Manager
	audit    *audit.Log
	// auditRetention is Config.AuditRetention.
	auditRetention time.Duration
	limiter        *limit.Limiter
	alerts         *limit.Alerter
	usage          *usageEvents
	notify         *notify.Manager
	api            *api.API
	policies       map[string]limit.Policy
	// authPolicies are the limits of the anonymous auth routes, by route.
	authPolicies map[string]limit.Policy
	tick         time.Duration
	now          func() time.Time
	logger       *zap.Logger
}

// New builds the service over an open backend and runtime: it creates the platform
// collections, loads or generates the signing secret, and creates the platform admin when
// configured.
func New(ctx context.Context, b *Backend, rt *Runtime, cfg Config) (*Service, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	secret := cfg.JWTSecret
	if len(secret) == 0 {
		var err error
		if secret, err = LoadOrCreateSecret(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	keys, err := token.NewKeys(secret, cfg.JWTIssuer, cfg.AccessTTL)
	if err != nil {
		return nil, err
	}
	keys.Now = cfg.Now

	layout, err := store.ParseLayout(string(cfg.TenantLayout))
	if err != nil {
		return nil, err
	}
	if err := b.DB.CheckLayout(ctx, layout); err != nil {
		return nil, err
	}
	auditStore := &audit.MongoStore{DB: b.DB, Layout: layout}
	auditLog := &audit.Log{Store: auditStore, Logger: logger.Named("audit"), Now: cfg.Now, Observer: cfg.AuditObserver}
	tenantStore := &tenant.MongoStore{DB: b.DB}
	accountStore := &account.MongoStore{DB: b.DB, Layout: layout}
	refreshStore := &token.MongoRefreshStore{DB: b.DB}
	notifyStore := &notify.MongoStore{DB: b.DB, Layout: layout}
	notifier, err := notify.NewManager(notifyStore, cfg.Webhooks)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	notifier.Audit, notifier.Observer, notifier.Logger, notifier.Now = auditLog, cfg.NotifyObserver, logger.Named("notify"), cfg.Now
	events := cfg.Events
	if events == nil {
		events = notifier
	}
	for _, init := range []func(context.Context) error{tenantStore.Init, accountStore.Init, refreshStore.Init, auditStore.Init, notifier.Init} {
		if err := init(ctx); err != nil {
			return nil, fmt.Errorf("preparing the database: %w", err)
		}
	}
	// The system pseudo-tenant holds platform admins, platform-wide audit entries and the
	// platform's webhook endpoints.
	provisioners := []tenant.Provisioner{accountStore.CreateTenantCollections, auditStore.CreateTenantCollections, notifyStore.CreateTenantCollections}
	for _, provision := range provisioners {
		if err := provision(ctx, store.SystemTenant); err != nil {
			return nil, fmt.Errorf("preparing the database: %w", err)
		}
	}

	tenants := &tenant.Manager{
		Store:        tenantStore,
		Plans:        cfg.Plans,
		Audit:        auditLog,
		Provisioners: provisioners,
		Now:          cfg.Now,
		OnChange: func(ctx context.Context, t *tenant.Tenant) {
			if err := rt.TenantChanged(ctx, t); err != nil {
				logger.Warn("tenant change not announced to other replicas; they catch up within a minute",
					zap.String("tenant", t.ID), zap.Error(err))
			}
		},
		OnRemove: func(ctx context.Context, id string) {
			if err := rt.TenantRemoved(ctx, id); err != nil {
				logger.Warn("tenant removal not announced to other replicas; they catch up within a minute",
					zap.String("tenant", id), zap.Error(err))
			}
		},
	}
	rt.useBackend(b, tenants.Lookup, tenantStore.EachN)
	tenants.Cached = rt.Cache.Get
	warnEmbeddedTenants(ctx, b, tenantStore, cfg.EmbeddedTenantLimit, logger)
	accounts := &account.Manager{
		Store:     accountStore,
		Tenants:   tenants,
		Keys:      keys,
		Refresh:   &token.Refresher{Store: refreshStore, Now: cfg.Now},
		Passwords: account.NewHasher(64),
		Audit:     auditLog,
		Notify:    events,
		Now:       cfg.Now,
		Logger:    logger.Named("account"),
	}
	billingCfg := cfg.Billing
	if billingCfg.Grace <= 0 {
		billingCfg.Grace = DefaultGracePeriod
	}
	if cfg.Stripe.SecretKey != "" {
		billingCfg.Stripe = billing.NewStripe(cfg.Stripe)
	}
	bill := &billing.Manager{Config: billingCfg, Tenants: tenants, Plans: cfg.Plans, Events: &billing.MongoEventStore{DB: b.DB},
		Notify: events, Audit: auditLog, Now: cfg.Now, Logger: logger.Named("billing")}
	if err := bill.Init(ctx); err != nil {
		return nil, fmt.Errorf("preparing the database: %w", err)
	}
	if rt.Bus != nil {
		// Replicas share jwt_secret, so they share this key: tenant states announced over
		// Redis are signed with it, and one no replica signed is dropped.
		rt.Bus.SetKey(keys.Derive("saasgate tenant announcements"))
	}
	s := &Service{Backend: b, Runtime: rt, plans: cfg.Plans, Keys: keys, Tenants: tenants, accounts: accounts,
		audit: auditLog, notify: notifier, auditRetention: cfg.AuditRetention, Billing: bill, tick: cfg.BillingTick, now: now, logger: logger}
	if s.tick <= 0 {
		s.tick = time.Minute
	}
	s.policies = make(map[string]limit.Policy)
	for _, p := range cfg.Plans.All() {
		s.policies[p.ID] = limit.Policy{Name: p.ID, Interval: p.Rate.Interval(), Burst: p.Burst, Quota: p.Quota, Exact: p.Exact}
	}
	s.authPolicies = make(map[string]limit.Policy)
	for route, r := range DefaultAuthRates {
		if configured, ok := cfg.AuthRates[route]; ok {
			r = configured
		}
		burst := r.Burst
		if burst == 0 {
			burst = r.Rate.Count
		}
		// Exact: every attempt is counted in Redis, so replicas share one budget per address.
		s.authPolicies[route] = limit.Policy{Name: "auth_" + route, Interval: r.Rate.Interval(), Burst: burst, Exact: true}
	}
	s.limiter = &limit.Limiter{Local: rt.Local, OnError: cfg.OnLimiterError, Breaker: rt.Breaker, Observer: cfg.LimitObserver}
	if rt.Redis != nil {
		s.limiter.Store = rt.Leased
		s.limiter.Exact = &limit.Redis{Client: rt.Redis, Prefix: rt.Prefix}
	}
	usageLog := logger.Named("usage")
	s.usage = newUsageEvents(events, usageLog)
	s.alerts = &limit.Alerter{Thresholds: cfg.UsageAlerts, Debounce: rateAlertEvery, Sink: func(a limit.Alert) {
		usageLog.Warn("excessive usage", zap.String("alert", string(a.Kind)), zap.String("tenant", a.TenantID),
			zap.String("plan", a.Plan), zap.Int64("quota_used", a.Used), zap.Int64("quota_limit", a.Limit))
		if cfg.OnAlert != nil {
			cfg.OnAlert(a)
		}
		s.usage.offer(usageEvent(a, s.now()))
	}}
	s.api = api.New(&api.API{
		Accounts: accounts, Tenants: tenants, Audit: auditLog, Billing: bill, Plans: cfg.Plans, Keys: keys, Usage: s, AuthLimit: s.AdmitAuth, BaseDomain: cfg.BaseDomain,
		Webhooks: notifier,
		Ready:    s.ready, Logger: logger.Named("api"),
	})
	if cfg.AdminEmail != "" && cfg.AdminPassword != "" {
		if err := accounts.BootstrapAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return nil, fmt.Errorf("creating the platform admin: %w", err)
		}
	}
	return s, nil
}

// Plans is the configuration's plan catalog.
func (s *Service) Plans() *plan.Catalog { return s.plans }

func (s *Service) ready(ctx context.Context) map[string]error {
	checks := map[string]error{"mongo": s.Backend.DB.Ping(ctx)}
	if s.Runtime.Redis != nil {
		checks["redis"] = s.Runtime.pubsub.Ping(ctx).Err()
	}
	return checks
}

// Preload reads the tenants into the request path's cache in one query, so that their first
// requests need no store read; when they are fewer than the cache's preload limit, the cache
// holds them all and answers unknown ids without a store read.
func (s *Service) Preload(ctx context.Context) {
	n, complete, err := s.Runtime.Cache.Resync(ctx)
	if err != nil {
		s.logger.Warn("preloading the tenant cache; tenants load on first use", zap.Error(err))
		return
	}
	s.logger.Info("tenant cache preloaded", zap.Int("tenants", n), zap.Bool("complete", complete))
}

// Run does the background housekeeping (expired refresh tokens, stale login back-off: FerretDB
// has no TTL indexes) and runs the billing scheduler, the publishing of usage notifications
// and the webhook delivery workers until ctx ends, after preloading the tenant cache.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	s.Preload(ctx)
	go s.Billing.RunScheduler(ctx, s.tick)
	go s.usage.run(ctx)
	go s.notify.Run(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sweep(ctx)
		}
	}
}

// Sweep deletes expired documents once.
func (s *Service) Sweep(ctx context.Context) {
	if n, err := s.accounts.Refresh.Sweep(ctx); err != nil {
		s.logger.Warn("sweeping refresh tokens", zap.Error(err))
	} else if n > 0 {
		s.logger.Debug("swept refresh tokens", zap.Int64("deleted", n))
	}
	if _, err := s.accounts.Sweep(ctx); err != nil {
		s.logger.Warn("sweeping login back-off", zap.Error(err))
	}
	if _, err := s.Backend.DB.SweepClaims(ctx, s.now()); err != nil {
		s.logger.Warn("sweeping claims", zap.Error(err))
	}
	if _, err := s.Billing.SweepEvents(ctx); err != nil {
		s.logger.Warn("sweeping Stripe event records", zap.Error(err))
	}
	s.sweepAudit(ctx)
}

// sweepAudit applies audit_retention to every tenant's chain and the platform's.
func (s *Service) sweepAudit(ctx context.Context) {
	if s.auditRetention <= 0 {
		return
	}
	ts, err := s.Tenants.Store.List(ctx)
	if err != nil {
		s.logger.Warn("sweeping audit entries: listing tenants", zap.Error(err))
		return
	}
	ids := []string{store.SystemTenant}
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	for _, id := range ids {
		if n, err := s.audit.Sweep(ctx, id, s.auditRetention); err != nil {
			s.logger.Warn("sweeping audit entries", zap.String("tenant", id), zap.Error(err))
		} else if n > 0 {
			s.logger.Debug("swept audit entries", zap.String("tenant", id), zap.Int64("deleted", n))
		}
	}
}
