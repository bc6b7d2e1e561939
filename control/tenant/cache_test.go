package tenant_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// countingLoader serves tenants from a map and counts reads.
type countingLoader struct {
	mu       sync.Mutex
	tenants  map[string]*tenant.Tenant
	reads    atomic.Int64
	gate     chan struct{} // when set, reads wait for it, after reading
	entered  chan struct{} // when set, a read sends on it once it has read, before it waits
	lists    atomic.Int64
	listGate chan struct{} // when set (under mu), lists wait for it
}

func (l *countingLoader) list(ctx context.Context, n int) ([]*tenant.Tenant, error) {
	l.lists.Add(1)
	l.mu.Lock()
	gate := l.listGate
	l.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []*tenant.Tenant
	for _, t := range l.tenants {
		if len(ts) == n {
			break
		}
		cp := *t
		ts = append(ts, &cp)
	}
	return ts, nil
}

// completeCache is a cache over l that has listed every tenant of l.
func completeCache(t *testing.T, l *countingLoader) *tenant.Cache {
	t.Helper()
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	c.SetLister(tenant.SliceLister(l.list))
	if _, complete, err := c.Resync(context.Background()); err != nil || !complete {
		t.Fatalf("Resync = complete %v, %v; want a complete cache", complete, err)
	}
	return c
}

// load reads the tenant, then waits for the gate: what it returns is what the store held when
// the read began, as with a real store read that a change overtakes.
func (l *countingLoader) load(ctx context.Context, id string) (*tenant.Tenant, error) {
	l.reads.Add(1)
	l.mu.Lock()
	t, ok := l.tenants[id]
	var cp tenant.Tenant
	if ok {
		cp = *t
	}
	l.mu.Unlock()
	if l.entered != nil {
		l.entered <- struct{}{}
	}
	if l.gate != nil {
		<-l.gate
	}
	if !ok {
		return nil, tenant.ErrNotFound
	}
	return &cp, nil
}

func (l *countingLoader) set(t *tenant.Tenant) {
	l.mu.Lock()
	l.tenants[t.ID] = t
	l.mu.Unlock()
}

func newLoader(ids ...string) *countingLoader {
	l := &countingLoader{tenants: map[string]*tenant.Tenant{}}
	for _, id := range ids {
		l.tenants[id] = &tenant.Tenant{ID: id, Status: tenant.StatusActive, Plan: "free"}
	}
	return l
}

func TestCache_ConcurrentMissesShareOneRead(t *testing.T) {
	l := newLoader("acme")
	l.gate = make(chan struct{})
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := c.Get(context.Background(), "acme"); err != nil || s.ID != "acme" {
				t.Errorf("Get = %v, %v", s, err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the callers pile up on the one load
	close(l.gate)
	wg.Wait()
	if n := l.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for 50 concurrent misses, want 1", n)
	}
	_, _ = c.Get(context.Background(), "acme")
	if n := l.reads.Load(); n != 1 {
		t.Fatalf("a hit read the store (%d reads)", n)
	}
}

func TestCache_UnknownIDsAreRememberedBoundedly(t *testing.T) {
	l := newLoader()
	now := time.Unix(1000, 0)
	c := tenant.NewCache(l.load, tenant.CacheConfig{NegativeMax: 100, NegativeTTL: 10 * time.Second})
	c.SetClock(func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if _, err := c.Get(context.Background(), "ghost"); err != tenant.ErrNotFound {
			t.Fatalf("Get(ghost) = %v", err)
		}
	}
	if n := l.reads.Load(); n != 1 {
		t.Fatalf("%d reads for one unknown id asked thrice, want 1", n)
	}
	now = now.Add(11 * time.Second)
	_, _ = c.Get(context.Background(), "ghost")
	if n := l.reads.Load(); n != 2 {
		t.Fatalf("after the negative TTL the id must be read again (%d reads)", n)
	}
	for i := 0; i < 10000; i++ {
		_, _ = c.Get(context.Background(), fmt.Sprintf("random-%d", i))
	}
	if _, absent := c.Len(); absent > 100 {
		t.Fatalf("%d unknown ids cached, bound is 100", absent)
	}
}

func TestCache_InvalidateRereadsAndStaleLoadIsNotCached(t *testing.T) {
	l := newLoader("acme")
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	ctx := context.Background()
	if s, _ := c.Get(ctx, "acme"); s.Status != tenant.StatusActive {
		t.Fatal(s)
	}
	l.set(&tenant.Tenant{ID: "acme", Status: tenant.StatusSuspended, Plan: "free"})
	if s, _ := c.Get(ctx, "acme"); s.Status != tenant.StatusActive {
		t.Fatal("served from memory until invalidated")
	}
	c.Invalidate("acme")
	if s, _ := c.Get(ctx, "acme"); s.Status != tenant.StatusSuspended {
		t.Fatalf("after Invalidate: %v", s.Status)
	}

	// A load in flight when an invalidation arrives read the old state: it must not stick.
	l.gate, l.entered = make(chan struct{}), make(chan struct{})
	c.Invalidate("acme")
	done := make(chan *tenant.Snapshot)
	go func() { s, _ := c.Get(ctx, "acme"); done <- s }()
	<-l.entered // the load has read suspended/free
	l.set(&tenant.Tenant{ID: "acme", Status: tenant.StatusActive, Plan: "pro"})
	c.Invalidate("acme") // the change lands while the load is in flight
	close(l.gate)
	if s := <-done; s.Plan != "free" {
		t.Fatalf("the load in flight returned plan %q, want the free it read", s.Plan)
	}
	l.gate, l.entered = nil, nil
	if s, _ := c.Get(ctx, "acme"); s.Plan != "pro" {
		t.Fatalf("a load that raced an invalidation was cached: plan %q", s.Plan)
	}
}

func TestCache_OldEntriesRefreshInTheBackground(t *testing.T) {
	l := newLoader("acme")
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	c := tenant.NewCache(l.load, tenant.CacheConfig{MaxAge: time.Minute})
	c.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	ctx := context.Background()
	_, _ = c.Get(ctx, "acme")
	l.set(&tenant.Tenant{ID: "acme", Status: tenant.StatusActive, Plan: "pro"})
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if s, _ := c.Get(ctx, "acme"); s.Plan != "free" {
		t.Fatal("an old entry is still served while it refreshes")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if s, _ := c.Get(ctx, "acme"); s.Plan == "pro" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the background refresh never landed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A replica of the previous version announces a change by the tenant's id alone: every
// replica of this version reads the store again.
func TestBus_BareIDInvalidatesEveryReplicaWithinASecond(t *testing.T) {
	client := testenv.RedisClient(t)
	channel := testenv.KeyPrefix(t) + "tenants"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := newLoader("acme")
	replicas := []*tenant.Cache{tenant.NewCache(l.load, tenant.CacheConfig{}), tenant.NewCache(l.load, tenant.CacheConfig{})}
	bus := &tenant.Bus{Client: client, Channel: channel}
	for _, c := range replicas {
		go bus.Run(ctx, c)
	}
	// Wait until both subscriptions are live.
	for deadline := time.Now().Add(2 * time.Second); ; {
		n, err := client.PubSubNumSub(ctx, channel).Result()
		if err == nil && n[channel] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("subscriptions did not come up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range replicas {
		_, _ = c.Get(ctx, "acme")
	}
	l.set(&tenant.Tenant{ID: "acme", Status: tenant.StatusSuspended, Plan: "free"})
	start := time.Now()
	if err := client.Publish(ctx, channel, "acme").Err(); err != nil {
		t.Fatal(err)
	}
	for i, c := range replicas {
		for {
			if s, _ := c.Get(ctx, "acme"); s.Status == tenant.StatusSuspended {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("replica %d still serves the old state after 1 s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func TestCache_ResyncAddsAbsentTenantsUnlessFlushedMeanwhile(t *testing.T) {
	l := newLoader("acme")
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	c.SetLister(tenant.SliceLister(l.list))
	ctx := context.Background()
	_, _ = c.Get(ctx, "acme") // cached: a resync must not overwrite it
	l.set(&tenant.Tenant{ID: "acme", Status: tenant.StatusSuspended, Plan: "free"})
	l.set(&tenant.Tenant{ID: "globex", Status: tenant.StatusActive, Plan: "pro"})
	if n, complete, err := c.Resync(ctx); n != 1 || !complete || err != nil {
		t.Fatalf("Resync = %d, complete %v, %v; want 1 added (globex), complete", n, complete, err)
	}
	if s, _ := c.Get(ctx, "acme"); s.Status != tenant.StatusActive {
		t.Fatal("Resync overwrote a cached entry")
	}
	if s, err := c.Get(ctx, "globex"); err != nil || s.Plan != "pro" || l.reads.Load() != 1 {
		t.Fatalf("globex = %v, %v after %d reads; want it from the resync, no read", s, err, l.reads.Load())
	}

	// A list read before a flush does not land: what it says may predate the flush.
	l.set(&tenant.Tenant{ID: "initech", Status: tenant.StatusActive, Plan: "free"})
	l.mu.Lock()
	l.listGate = make(chan struct{})
	l.mu.Unlock()
	done := make(chan bool)
	go func() { _, complete, _ := c.Resync(ctx); done <- complete }()
	for l.lists.Load() < 2 {
		runtime.Gosched()
	}
	c.Flush()
	close(l.listGate)
	if <-done || c.Complete() {
		t.Fatal("a resync listed before a flush made the cache complete")
	}
	if known, _ := c.Len(); known != 0 {
		t.Fatalf("a resync listed before a flush added %d tenants", known)
	}
}

// A flood of random valid ids against a cache that holds every tenant never reaches the store,
// so it cannot take the store reads away from real tenants; the real tenants, those created
// since the resync included, are all served.
func TestCache_CompleteCacheAnswersUnknownIDsWithoutStoreReads(t *testing.T) {
	l := newLoader("acme", "globex")
	c := completeCache(t, l)
	// A store that never answers: any read would hold its slot for good.
	l.gate = make(chan struct{})
	defer close(l.gate)
	c.Put(&tenant.Tenant{ID: "initech", Status: tenant.StatusActive, Plan: "free"}) // created here since

	ctx := context.Background()
	var wg sync.WaitGroup
	var served, wrong atomic.Int64
	for g := 0; g < 32; g++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, err := c.Get(ctx, fmt.Sprintf("random-%d-%d", g, i)); err != tenant.ErrNotFound {
					wrong.Add(1)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				id := []string{"acme", "globex", "initech"}[i%3]
				if s, err := c.Get(ctx, id); err == nil && s.ID == id {
					served.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d lookups of random ids were not ErrNotFound", n)
	}
	if n := served.Load(); n != 32*50 {
		t.Errorf("%d of %d lookups of real tenants served", n, 32*50)
	}
	if n := l.reads.Load(); n != 0 {
		t.Errorf("%d store reads, want none", n)
	}
	if _, absent := c.Len(); absent != 0 {
		t.Errorf("%d unknown ids remembered, want none: the complete cache needs no memory of them", absent)
	}
}

// An announced change (Invalidate, from another replica) is read from the store even while the
// cache is complete: the id may be a tenant created there, which this cache never held.
func TestCache_CompleteCacheReadsAnnouncedIDs(t *testing.T) {
	l := newLoader("acme")
	c := completeCache(t, l)
	ctx := context.Background()
	l.set(&tenant.Tenant{ID: "newco", Status: tenant.StatusActive, Plan: "free"})
	if _, err := c.Get(ctx, "newco"); err != tenant.ErrNotFound {
		t.Fatalf("an unannounced tenant: %v, want ErrNotFound from memory", err)
	}
	c.Invalidate("newco")
	if s, err := c.Get(ctx, "newco"); err != nil || s.ID != "newco" {
		t.Fatalf("an announced new tenant: %v, %v", s, err)
	}
	// A tenant removed and announced is unknown again.
	l.mu.Lock()
	delete(l.tenants, "acme")
	l.mu.Unlock()
	c.Invalidate("acme")
	if _, err := c.Get(ctx, "acme"); err != tenant.ErrNotFound {
		t.Fatalf("an announced removed tenant: %v, want ErrNotFound", err)
	}
	if n := l.reads.Load(); n != 2 || !c.Complete() {
		t.Fatalf("%d reads (want 2, one per announcement), complete %v (want true)", n, c.Complete())
	}
}

// A lost subscription makes the cache partial (a change announced meanwhile is lost, so a miss
// must read the store) until the subscription is back and every tenant is listed again.
func TestBus_LostSubscriptionMakesTheCachePartialUntilResynced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The bus's own client, named so that its connection, and no other test's, can be killed.
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	opts.ClientName = "bus-test-" + strings.Trim(testenv.KeyPrefix(t), ":")
	client := redis.NewClient(opts)
	defer client.Close()
	admin := testenv.RedisClient(t)

	l := newLoader("acme")
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	c.SetLister(tenant.SliceLister(l.list))
	bus := &tenant.Bus{Client: client, Channel: opts.ClientName}
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx, c) }()
	defer func() { cancel(); <-done }()
	awaitCondition(t, "the first subscription's resync", c.Complete)

	// The next resync waits until the test lets it list.
	gate := make(chan struct{})
	l.mu.Lock()
	l.listGate = gate
	l.mu.Unlock()
	lists := l.lists.Load()
	killClient(t, admin, opts.ClientName)
	awaitCondition(t, "the resync after the subscription came back", func() bool { return l.lists.Load() > lists })
	if c.Complete() {
		t.Fatal("complete before the resync listed the tenants")
	}
	// A tenant created on another replica while the channel was down: unannounced, yet found.
	l.set(&tenant.Tenant{ID: "newco", Status: tenant.StatusActive, Plan: "free"})
	if s, err := c.Get(ctx, "newco"); err != nil || s.ID != "newco" {
		t.Fatalf("an unannounced tenant while the cache is partial: %v, %v; want it read from the store", s, err)
	}
	l.set(&tenant.Tenant{ID: "lateco", Status: tenant.StatusActive, Plan: "free"})
	close(gate)
	awaitCondition(t, "the cache complete again", c.Complete)
	reads := l.reads.Load()
	if s, err := c.Get(ctx, "lateco"); err != nil || s.ID != "lateco" || l.reads.Load() != reads {
		t.Fatalf("lateco after the resync: %v, %v; want it from the resync, no read", s, err)
	}
	if _, err := c.Get(ctx, "ghost"); err != tenant.ErrNotFound || l.reads.Load() != reads {
		t.Fatalf("an unknown id after the resync: %v, %d reads; want ErrNotFound from memory", err, l.reads.Load()-reads)
	}
}

// killClient closes the Redis connections named name, as a network failure would.
func killClient(t *testing.T, admin *redis.Client, name string) {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		fields := strings.Fields(line)
		if !slices.Contains(fields, "name="+name) {
			continue
		}
		for _, f := range fields {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if err := admin.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no Redis connection named %s", name)
	}
}

// awaitCondition polls ok until it holds; the deadline only keeps a broken bus from hanging
// the test.
func awaitCondition(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5 s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
