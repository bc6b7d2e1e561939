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
	// OnLoad, when set, is called for every store read of one tenant, for a metric: for a miss
	// (refresh false), or for an entry older than MaxAge. Changes are announced with the
	// tenant's state, so on a complete cache misses stay near zero.
	OnLoad func(refresh bool)
}

// removalMemory is how long a removed tenant's id stays suspect: an announcement of its state
// arriving meanwhile (sent before the removal by a slower replica) is taken as an
// invalidation, so that the next lookup asks the store rather than serve a removed tenant.
// Messages are late by milliseconds; past this, the MaxAge refresh is the safety net.
const removalMemory = time.Minute

// removedMax bounds the removed ids remembered; removals are rare (a signup undone).
const removedMax = 10_000

// loadTimeout bounds a miss's store read: with the store down, a request for an uncached
// tenant fails after this long instead of waiting for the driver's server selection.
const loadTimeout = 2 * time.Second

// Loader reads one tenant from the store; ErrNotFound when there is none.
type Loader func(ctx context.Context, id string) (*Tenant, error)

// Lister reads at most n tenants from the store, handing each to each as it is read: the cache
// keeps a small entry per tenant, and a hundred thousand tenants decoded whole at once would
// be a heap peak of their own.
type Lister func(ctx context.Context, n int, each func(*Tenant)) error

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
	// removed holds ids removed lately (id → expiry, unix ns; see removalMemory).
	removed map[string]int64
	flight  map[string]*loadCall
	// complete says known holds every tenant: a Resync listed them all, and every change since
	// reached the cache (Put, Invalidate). It is dropped with the invalidation channel.
	complete bool
	// deaf says the invalidation channel is down: changes made on other replicas go unheard,
	// so no Resync may make the cache complete.
	deaf bool
	// epoch counts flushes: a tenant list read before one must not land.
	epoch uint64
	// slab is what is left of the array newEntry hands entries out of (c.mu held).
	slab []cacheEntry
}

// cacheEntry is a cached tenant at revision rev (Tenant.Rev). An invalid entry marks an id
// whose tenant changed (or may now exist, or was removed): its next lookup reads the store. It
// keeps the revision and, unless removed, the view it replaced, so that an announcement can
// still be ordered against them (see announced).
type cacheEntry struct {
	view       View
	rev        int64
	loadedAt   int64
	invalid    bool
	refreshing atomic.Bool
}

// entrySlab is how many entries newEntry allocates at once.
const entrySlab = 256

// newEntry hands out an entry from arrays of entrySlab rather than one heap object each: the
// garbage collector visits every live object on every cycle, and a hundred thousand cached
// tenants, one object each, made each cycle costly (see the gateway's viewSlabs, which does
// the same for its views). An array lives while any of its entries is referenced; an entry
// replaced leaves its slot to the array's end. Called with c.mu held.
func (c *Cache) newEntry(view View, rev, loadedAt int64) *cacheEntry {
	if len(c.slab) == 0 {
		c.slab = make([]cacheEntry, entrySlab)
	}
	e := &c.slab[0]
	c.slab = c.slab[1:]
	e.view, e.rev, e.loadedAt = view, rev, loadedAt
	return e
}

// usable reports whether the entry can be served.
func (e *cacheEntry) usable() bool { return e.view != nil && !e.invalid }

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
		known: make(map[string]*cacheEntry), absent: make(map[string]int64), removed: make(map[string]int64),
		flight: make(map[string]*loadCall)}
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
	case e != nil && e.usable():
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
	if e := c.known[id]; e != nil && e.usable() { // filled while we waited for the lock
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
	call.view, call.err = c.read(ctx, id, false)
	c.mu.Lock()
	delete(c.flight, id)
	c.mu.Unlock()
	close(call.done)
}

func (c *Cache) read(ctx context.Context, id string, refresh bool) (View, error) {
	select {
	case c.loads <- struct{}{}:
		defer func() { <-c.loads }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	gen := c.gen.Load()
	c.mu.RLock()
	before := c.known[id]
	c.mu.RUnlock()
	if c.cfg.OnLoad != nil {
		c.cfg.OnLoad(refresh)
	}
	t, err := (*c.load.Load())(ctx, id)
	if err != nil && err != ErrNotFound {
		return nil, err
	}
	var view View
	if err == nil {
		view = c.cfg.NewView(NewSnapshot(t))
	}
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.known[id]
	switch {
	case c.gen.Load() != gen:
		// Invalidated or flushed while reading: what was read may predate the change.
	case cur != before:
		// A state was announced while reading (announcements do not count as invalidations):
		// the read replaces it only if at least as new.
		if view != nil && (cur == nil || t.Rev >= cur.rev) {
			c.known[id] = c.newEntry(view, t.Rev, now)
		} else if cur != nil && cur.usable() {
			return cur.view, nil
		}
	case view == nil:
		if len(c.absent) >= c.cfg.NegativeMax {
			evict(c.absent, c.cfg.NegativeMax, now)
		}
		c.absent[id] = now + int64(c.cfg.NegativeTTL)
		delete(c.known, id)
	default:
		// The store's word, unchanged since the read began, is the latest: it replaces
		// whatever was cached, whatever its revision (a tenant removed and made again starts
		// over at 1).
		c.known[id] = c.newEntry(view, t.Rev, now)
		delete(c.absent, id)
	}
	if view == nil {
		return nil, ErrNotFound
	}
	return view, nil
}

// evict makes room in m (id → expiry, unix ns), bounded by max: expired ids first, else an
// arbitrary tenth. Called with c.mu held.
func evict(m map[string]int64, max int, now int64) {
	for id, exp := range m {
		if exp <= now {
			delete(m, id)
		}
	}
	drop := len(m) - max*9/10
	for id := range m {
		if drop <= 0 {
			break
		}
		delete(m, id)
		drop--
	}
}

func (c *Cache) refresh(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.read(ctx, id, true); err != nil && err != ErrNotFound {
		c.mu.RLock()
		e := c.known[id]
		c.mu.RUnlock()
		if e != nil {
			e.refreshing.Store(false) // try again on a later request
		}
	}
}

// Put caches t's state as announced: by this replica's own change, or by another replica's
// over the bus. Announcements from different replicas may cross on the way, so Put orders
// them by revision (see announced) and never lets an older state replace a newer one.
func (c *Cache) Put(t *Tenant) {
	s := NewSnapshot(t)
	view := c.cfg.NewView(s)
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.known[t.ID]
	if exp, ok := c.removed[t.ID]; ok {
		if now < exp {
			c.gen.Add(1)
			c.markInvalid(t.ID, false)
			return
		}
		delete(c.removed, t.ID)
	}
	switch announced(e, t.Rev, s) {
	case replace:
		c.known[t.ID] = c.newEntry(view, t.Rev, now)
		delete(c.absent, t.ID)
	case invalidate:
		c.gen.Add(1) // a read in flight may have met either state
		c.markInvalid(t.ID, true)
	}
}

// outcome is what an announced state does to a cache entry.
type outcome int

const (
	ignore     outcome = iota // older than what the cache knows
	replace                   // newer, or the same state again
	invalidate                // undecidable from the announcement: the store decides
)

// announced orders an announced state (rev, s) against the entry e the cache holds for the
// tenant (nil: none):
//   - no entry: the state is taken (a tenant created elsewhere, or one not cached yet);
//   - a higher revision than the entry's is newer, whether the entry is valid or marked
//     invalid: taken;
//   - a lower revision is older (it crossed a newer announcement, or a store read): ignored,
//     and an invalid entry stays invalid;
//   - the same revision with the same state is a repeat (the echo of this replica's own change,
//     or the state sent after the id that marked the entry): taken, which makes a marked entry
//     valid again;
//   - the same revision with another state comes from writers that did not count a revision
//     (a replica of the previous version, or two writes the store did not serialise): the entry
//     is marked invalid, so the next lookup reads the store.
func announced(e *cacheEntry, rev int64, s *Snapshot) outcome {
	switch {
	case e == nil, rev > e.rev:
		return replace
	case rev < e.rev:
		return ignore
	case e.view != nil && sameState(e.view.Snapshot(), s):
		return replace
	}
	return invalidate
}

// sameState reports whether two snapshots say the same. Both come from NewSnapshot over times
// the store or the bus decoded (UTC, milliseconds, no monotonic reading); where they differ in
// representation only, the cost is one store read.
func sameState(a, b *Snapshot) bool { return *a == *b }

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
	// Each tenant is reduced to what the cache keeps as it is read; the entries land together.
	type listed struct {
		id   string
		rev  int64
		view View
	}
	var ls []listed
	err = (*list)(ctx, c.cfg.PreloadMax, func(t *Tenant) {
		ls = append(ls, listed{t.ID, t.Rev, c.cfg.NewView(NewSnapshot(t))})
	})
	if err != nil {
		return 0, false, err
	}
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return 0, false, nil // flushed while the list was read: the flush's own resync lists afresh
	}
	for _, l := range ls {
		if _, ok := c.known[l.id]; ok {
			continue
		}
		// Removed while the list was read (its entry since dropped by a lookup that found
		// nothing): the list predates the removal.
		if exp, ok := c.removed[l.id]; ok && exp > now {
			continue
		}
		c.known[l.id] = c.newEntry(l.view, l.rev, now)
		delete(c.absent, l.id)
		added++
	}
	c.complete = !c.deaf && len(ls) < c.cfg.PreloadMax
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
// store (the id may be a tenant just created on another replica), a Resync listed before the
// change must not put the old state back, and an announcement that arrives later is still
// ordered against the revision the entry had (see announced).
func (c *Cache) Invalidate(id string) {
	c.gen.Add(1)
	c.mu.Lock()
	c.markInvalid(id, true)
	c.mu.Unlock()
}

// Removed marks id as changed like Invalidate and, for removalMemory, takes any state announced
// for it as an invalidation: one sent before the removal and delivered after it must not bring
// the tenant back.
func (c *Cache) Removed(id string) {
	c.gen.Add(1)
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.removed[id]; !ok && len(c.removed) >= removedMax {
		evict(c.removed, removedMax, now)
	}
	c.removed[id] = now + int64(removalMemory)
	c.markInvalid(id, false)
}

// markInvalid puts an invalid entry in id's place, keeping the revision and, with keepView,
// the view of the entry it replaces. Called with c.mu held.
func (c *Cache) markInvalid(id string, keepView bool) {
	m := c.newEntry(nil, 0, 0)
	m.invalid = true
	if e := c.known[id]; e != nil {
		m.rev = e.rev
		if keepView {
			m.view = e.view
		}
	}
	c.known[id] = m
	delete(c.absent, id)
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
