package control

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
)

// leaseTTL and maxLeaseTTL bound how long a block leased from Redis may be used: a busy
// tenant's lease is leaseTTL, a quiet tenant's up to maxLeaseTTL (limit.Leased.leaseLength);
// what a block leaves unused then goes back. Longer means fewer round trips for tenants with
// little traffic per instance (the long tail: thousands of tenants a few requests a second
// each), and unused requests held longer; the over-admission bound (one block per instance)
// does not depend on either, but the headers' figures may be this old.
const (
	leaseTTL    = 10 * time.Second
	maxLeaseTTL = time.Minute
)

// RuntimeConfig says where the shared hot-path state lives.
type RuntimeConfig struct {
	RedisURL     string        // empty: in-process state only (one instance)
	RedisTimeout time.Duration // bound on every limiter call to Redis
	KeyPrefix    string        // Redis key and channel prefix
	// TenantView builds what the tenant cache keeps beside each snapshot for the adapter's
	// request path (see tenant.View); nil keeps the bare snapshot.
	TenantView func(*tenant.Snapshot) tenant.View
	// TenantLoaded, when set, is called for every store read the tenant cache makes for one
	// tenant (tenant.CacheConfig.OnLoad).
	TenantLoaded func(refresh bool)
	Logger       *zap.Logger
}

// Runtime is the request path's shared state: the tenant cache and its invalidation channel,
// the in-process limiter store, the Redis clients and the breaker. It outlives config reloads,
// so counters and caches survive them.
type Runtime struct {
	Redis   redis.UniversalClient // limiter calls, with tight timeouts; nil without Redis
	Leased  *limit.Leased         // blocks leased from Redis; nil without Redis
	Local   *limit.Local
	Breaker *limit.Breaker
	Cache   *tenant.Cache
	Bus     *tenant.Bus // nil without Redis
	Prefix  string

	pubsub redis.UniversalClient
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	loaderOwner *Backend
}

// OpenRuntime builds the runtime and starts its background work (invalidation listener,
// sweeps). It does not wait for Redis: the limiter's breaker and fallback cover an absent one.
func OpenRuntime(cfg RuntimeConfig) (*Runtime, error) {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	rt := &Runtime{
		Local:   limit.NewLocal(),
		Breaker: limit.NewBreaker(3, time.Second),
		Prefix:  cfg.KeyPrefix,
	}
	rt.Cache = tenant.NewCache(func(context.Context, string) (*tenant.Tenant, error) {
		return nil, tenant.ErrNotFound
	}, tenant.CacheConfig{NewView: cfg.TenantView, OnLoad: cfg.TenantLoaded})
	ctx, cancel := context.WithCancel(context.Background())
	rt.cancel = cancel
	if cfg.RedisURL != "" {
		var err error
		if rt.Redis, err = store.OpenRedis(store.RedisOptions{URL: cfg.RedisURL, Timeout: cfg.RedisTimeout}); err != nil {
			cancel()
			return nil, err
		}
		if rt.pubsub, err = store.OpenRedis(store.RedisOptions{URL: cfg.RedisURL}); err != nil {
			_ = rt.Redis.Close()
			cancel()
			return nil, err
		}
		rt.Leased = limit.NewLeased(&limit.Redis{Client: rt.Redis, Prefix: cfg.KeyPrefix}, leaseTTL)
		rt.Leased.MaxLeaseTTL = maxLeaseTTL
		rt.Bus = &tenant.Bus{Client: rt.pubsub, Channel: cfg.KeyPrefix + "tenants", Logger: cfg.Logger.Named("tenant_bus")}
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			rt.Bus.Run(ctx, rt.Cache)
		}()
	}
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		sweep := time.NewTicker(time.Minute)
		defer sweep.Stop()
		// Unused requests of expired blocks go back within a lease TTL or two.
		handBack := time.NewTicker(leaseTTL)
		defer handBack.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-sweep.C:
				rt.Local.Sweep(now)
			case now := <-handBack.C:
				if rt.Leased != nil {
					if err := rt.Leased.Sweep(ctx, now); err != nil && ctx.Err() == nil {
						cfg.Logger.Warn("handing unused leased requests back to Redis failed; they stay counted", zap.Error(err))
					}
				}
			}
		}
	}()
	return rt, nil
}

// useBackend points the tenant cache at b's store; a different backend than before
// invalidates everything cached.
func (rt *Runtime) useBackend(b *Backend, load tenant.Loader, list tenant.Lister) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.Cache.SetLoader(load)
	rt.Cache.SetLister(list)
	if rt.loaderOwner != nil && rt.loaderOwner != b {
		rt.Cache.Flush()
	}
	rt.loaderOwner = b
}

// TenantChanged updates this replica's cache and announces the new state to the others,
// which cache it as it is: a tenant created here is served at once everywhere, with no store
// read.
func (rt *Runtime) TenantChanged(ctx context.Context, t *tenant.Tenant) error {
	rt.Cache.Put(t)
	if rt.Bus == nil {
		return nil
	}
	return rt.Bus.Publish(ctx, t)
}

// TenantRemoved drops a tenant from this replica's cache and tells the others.
func (rt *Runtime) TenantRemoved(ctx context.Context, id string) error {
	rt.Cache.Removed(id)
	if rt.Bus == nil {
		return nil
	}
	return rt.Bus.PublishRemoval(ctx, id)
}

// Close stops the background work and closes the Redis clients.
func (rt *Runtime) Close() error {
	rt.cancel()
	rt.wg.Wait()
	if rt.Leased != nil {
		// Hand back the blocks in hand, so a stopping replica leaves the quota as used.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = rt.Leased.Release(ctx, time.Now())
		cancel()
	}
	if rt.Redis != nil {
		_ = rt.Redis.Close()
		return rt.pubsub.Close()
	}
	return nil
}
