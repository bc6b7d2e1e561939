package tenant

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// CacheConfig tunes a Cache; zero values take the defaults.
type CacheConfig struct {
	// MaxAge after which an entry is reloaded in the background (it keeps being served
	// meanwhile): a safety net for a missed invalidation, since changes reach the cache
	// through Put, Invalidate and the bus. Default 5m.
	MaxAge time.Duration
	// NegativeTTL is how long an unknown id is remembered as unknown. Default 10s.
	NegativeTTL time.Duration
	// NegativeMax bounds the unknown ids remembered. Default 10,000.
	NegativeMax int
	// MaxLoads bounds concurrent store reads for misses. Default 16.
	MaxLoads int
	// PreloadMax bounds how many tenants Resync reads into the cache; a platform with fewer
	// is cached whole, and the cache is then authoritative. Default 100,000.
	PreloadMax int
	// NewView builds the value kept and handed out for each snapshot loaded; nil keeps the
	// snapshot itself.
	NewView func(*Snapshot) View
}

// loadTimeout bounds a miss's store read: with the store down, a request for an uncached
// tenant fails after this long instead of waiting for the driver's server selection.
const loadTimeout = 2 * time.Second

// Loader reads one tenant from the store; ErrNotFound when there is none.
type Loader func(ctx context.Context, id string) (*Tenant, error)

// Lister reads at most n tenants from the store.
type Lister func(ctx context.Context, n int) ([]*Tenant, error)

// Cache answers tenant lookups from memory. While it holds every tenant (complete) it is
// authoritative: a miss is an unknown id, answered without a store read, so a flood of random
// ids cannot take the store reads that real tenants need. Otherwise a miss costs one store
// read, shared by concurrent misses of the same id, and unknown ids are remembered (boundedly)
// so such a flood neither grows memory without limit nor reaches the store for every request.
type Cache struct {
	load  atomic.Pointer[Loader]
	list  atomic.Pointer[Lister]
	cfg   CacheConfig
	now   func() time.Time
	loads chan struct{}
	// gen counts invalidations: a load that began before one must not cache what it read,
	// which may predate the change.
	gen    atomic.Uint64
	mu     sync.RWMutex
	known  map[string]*cacheEntry
	absent map[string]int64 // id → expiry (unix ns)
	flight map[string]*loadCall
	// complete says known holds every tenant: a Resync listed them all, and every change since
	// reached the cache (Put, Invalidate). It is dropped with the invalidation channel.
	complete bool
	// deaf says the invalidation channel is down: changes made on other replicas go unheard,
	// so no Resync may make the cache complete.
	deaf bool
	// epoch counts flushes: a tenant list read before one must not land.
	epoch uint64
}

// cacheEntry is a cached tenant; a nil view marks an id whose tenant changed (or may now
// exist): its next lookup reads the store.
type cacheEntry struct {
	view       View
	loadedAt   int64
	refreshing atomic.Bool
}

type loadCall struct {
	done chan struct{}
	view View
	err  error
}

// NewCache builds an empty cache reading through load.
func NewCache(load Loader, cfg CacheConfig) *Cache {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = 10 * time.Second
	}
	if cfg.NegativeMax <= 0 {
		cfg.NegativeMax = 10000
	}
	if cfg.MaxLoads <= 0 {
		cfg.MaxLoads = 16
	}
	if cfg.PreloadMax <= 0 {
		cfg.PreloadMax = 100_000
	}
	if cfg.NewView == nil {
		cfg.NewView = func(s *Snapshot) View { return s }
	}
	c := &Cache{cfg: cfg, now: time.Now, loads: make(chan struct{}, cfg.MaxLoads),
		known: make(map[string]*cacheEntry), absent: make(map[string]int64), flight: make(map[string]*loadCall)}
	c.SetLoader(load)
	return c
}

// SetLoader replaces the store reader (a reloaded config may bring a new one).
func (c *Cache) SetLoader(load Loader) { c.load.Store(&load) }

// SetLister replaces the store lister Resync reads through.
func (c *Cache) SetLister(list Lister) { c.list.Store(&list) }

// SetClock injects the clock (tests).
func (c *Cache) SetClock(now func() time.Time) { c.now = now }

// Get returns the tenant's snapshot; ErrNotFound for an unknown id.
func (c *Cache) Get(ctx context.Context, id string) (*Snapshot, error) {
	v, err := c.View(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.Snapshot(), nil
}

// View returns what the cache keeps for the tenant (see CacheConfig.NewView); ErrNotFound for
// an unknown id.
func (c *Cache) View(ctx context.Context, id string) (View, error) {
	now := c.now().UnixNano()
	c.mu.RLock()
	e := c.known[id]
	complete := c.complete
	var expiry int64
	var absent bool
	if e == nil {
		expiry, absent = c.absent[id]
	}
	c.mu.RUnlock()
	switch {
	case e != nil && e.view != nil:
		if now-e.loadedAt > int64(c.cfg.MaxAge) && e.refreshing.CompareAndSwap(false, true) {
			go c.refresh(id)
		}
		return e.view, nil
	case e == nil && complete, absent && now < expiry:
		return nil, ErrNotFound
	}
	return c.fill(ctx, id)
}

// fill loads id once for all concurrent callers.
func (c *Cache) fill(ctx context.Context, id string) (View, error) {
	c.mu.Lock()
	if e := c.known[id]; e != nil && e.view != nil { // filled while we waited for the lock
		c.mu.Unlock()
		return e.view, nil
	}
	call := c.flight[id]
	if call == nil {
		call = &loadCall{done: make(chan struct{})}
		c.flight[id] = call
		c.mu.Unlock()
		go c.runLoad(id, call)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-call.done:
		return call.view, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runLoad reads the store, detached from any one caller's context so that a caller giving up
// does not fail the others.
func (c *Cache) runLoad(id string, call *loadCall) {
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	call.view, call.err = c.read(ctx, id)
	c.mu.Lock()
	delete(c.flight, id)
	c.mu.Unlock()
	close(call.done)
}

func (c *Cache) read(ctx context.Context, id string) (View, error) {
	select {
	case c.loads <- struct{}{}:
		defer func() { <-c.loads }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	gen := c.gen.Load()
	t, err := (*c.load.Load())(ctx, id)
	now := c.now().UnixNano()
	stale := c.gen.Load() != gen
	switch {
	case err == ErrNotFound && stale:
		return nil, ErrNotFound
	case err == ErrNotFound:
		c.mu.Lock()
		if len(c.absent) >= c.cfg.NegativeMax {
			c.evictAbsent(now)
		}
		c.absent[id] = now + int64(c.cfg.NegativeTTL)
		delete(c.known, id)
		c.mu.Unlock()
		return nil, ErrNotFound
	case err != nil:
		return nil, err
	}
	view := c.cfg.NewView(NewSnapshot(t))
	if stale {
		return view, nil
	}
	c.mu.Lock()
	c.known[id] = &cacheEntry{view: view, loadedAt: now}
	delete(c.absent, id)
	c.mu.Unlock()
	return view, nil
}

// evictAbsent makes room among unknown ids: expired ones first, else an arbitrary tenth.
// Called with c.mu held.
func (c *Cache) evictAbsent(now int64) {
	for id, exp := range c.absent {
		if exp <= now {
			delete(c.absent, id)
		}
	}
	drop := len(c.absent) - c.cfg.NegativeMax*9/10
	for id := range c.absent {
		if drop <= 0 {
			break
		}
		delete(c.absent, id)
		drop--
	}
}

func (c *Cache) refresh(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.read(ctx, id); err != nil && err != ErrNotFound {
		c.mu.RLock()
		e := c.known[id]
		c.mu.RUnlock()
		if e != nil {
			e.refreshing.Store(false) // try again on a later request
		}
	}
}

// Put stores a fresh snapshot (the replica that made a change knows the new state).
func (c *Cache) Put(t *Tenant) {
	view := c.cfg.NewView(NewSnapshot(t))
	c.mu.Lock()
	c.known[t.ID] = &cacheEntry{view: view, loadedAt: c.now().UnixNano()}
	delete(c.absent, t.ID)
	c.mu.Unlock()
}

// Resync reads up to PreloadMax tenants into the cache in one list, so that their first
// requests need no store read. It leaves alone any id cached or invalidated while the list was
// read (what the list says of those may be older). When the list holds every tenant, nothing
// was flushed meanwhile and the invalidation channel is up, the cache becomes complete. It
// reports how many tenants it added and whether the cache is complete.
func (c *Cache) Resync(ctx context.Context) (added int, complete bool, err error) {
	list := c.list.Load()
	if list == nil {
		return 0, false, nil
	}
	c.mu.RLock()
	epoch := c.epoch
	c.mu.RUnlock()
	ts, err := (*list)(ctx, c.cfg.PreloadMax)
	if err != nil {
		return 0, false, err
	}
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return 0, false, nil // flushed while the list was read: the flush's own resync lists afresh
	}
	for _, t := range ts {
		if _, ok := c.known[t.ID]; !ok {
			c.known[t.ID] = &cacheEntry{view: c.cfg.NewView(NewSnapshot(t)), loadedAt: now}
			delete(c.absent, t.ID)
			added++
		}
	}
	c.complete = !c.deaf && len(ts) < c.cfg.PreloadMax
	return added, c.complete, nil
}

// Complete reports whether the cache holds every tenant, answering misses without a store read.
func (c *Cache) Complete() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.complete
}

// Invalidate marks id as changed, so the next lookup reads the store. The mark takes the
// entry's place rather than removing it: a complete cache must still send that lookup to the
// store (the id may be a tenant just created on another replica), and a Resync listed before
// the change must not put the old state back.
func (c *Cache) Invalidate(id string) {
	c.gen.Add(1)
	c.mu.Lock()
	c.known[id] = &cacheEntry{}
	delete(c.absent, id)
	c.mu.Unlock()
}

// Flush forgets everything (the store changed, say); the cache is partial until a Resync.
func (c *Cache) Flush() {
	c.mu.Lock()
	c.flush()
	c.mu.Unlock()
}

// Unsubscribed says the invalidation channel is down (or not up yet): a change made on another
// replica may go unheard, so the cache stops being authoritative until Subscribed and a Resync.
func (c *Cache) Unsubscribed() {
	c.mu.Lock()
	c.deaf, c.complete = true, false
	c.mu.Unlock()
}

// Subscribed says the invalidation channel is up again. What was announced while it was down
// is lost, so everything cached may be stale: it is forgotten, and the next Resync makes the
// cache complete again.
func (c *Cache) Subscribed() {
	c.mu.Lock()
	c.flush()
	c.deaf = false
	c.mu.Unlock()
}

// flush forgets everything. Called with c.mu held.
func (c *Cache) flush() {
	c.gen.Add(1)
	c.epoch++
	c.complete = false
	c.known = make(map[string]*cacheEntry)
	c.absent = make(map[string]int64)
}

// Len reports how many known and unknown ids are cached.
func (c *Cache) Len() (known, absent int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.known), len(c.absent)
}
