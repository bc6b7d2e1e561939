package tenant_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// countingLoader serves tenants from a map and counts reads.
type countingLoader struct {
	mu      sync.Mutex
	tenants map[string]*tenant.Tenant
	reads   atomic.Int64
	gate    chan struct{} // when set, reads wait for it
}

func (l *countingLoader) load(ctx context.Context, id string) (*tenant.Tenant, error) {
	l.reads.Add(1)
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.tenants[id]
	if !ok {
		return nil, tenant.ErrNotFound
	}
	cp := *t
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
	l.gate = make(chan struct{})
	c.Invalidate("acme")
	done := make(chan *tenant.Snapshot)
	go func() { s, _ := c.Get(ctx, "acme"); done <- s }()
	time.Sleep(10 * time.Millisecond)
	c.Invalidate("acme") // the change lands while the load is in flight
	l.set(&tenant.Tenant{ID: "acme", Status: tenant.StatusActive, Plan: "pro"})
	close(l.gate)
	<-done
	l.gate = nil
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

func TestBus_InvalidatesEveryReplicaWithinASecond(t *testing.T) {
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
	if err := bus.Publish(ctx, "acme"); err != nil {
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

func TestCache_PreloadAddsAbsentTenantsUnlessSomethingChanged(t *testing.T) {
	l := newLoader("acme")
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	ctx := context.Background()
	_, _ = c.Get(ctx, "acme") // cached: a preload must not overwrite it
	gen := c.Generation()
	n := c.Preload([]*tenant.Tenant{
		{ID: "acme", Status: tenant.StatusSuspended, Plan: "free"},
		{ID: "globex", Status: tenant.StatusActive, Plan: "pro"},
	}, gen)
	if n != 1 {
		t.Fatalf("Preload added %d, want 1 (globex)", n)
	}
	if s, _ := c.Get(ctx, "acme"); s.Status != tenant.StatusActive {
		t.Fatal("Preload overwrote a cached entry")
	}
	if s, err := c.Get(ctx, "globex"); err != nil || s.Plan != "pro" || l.reads.Load() != 1 {
		t.Fatalf("globex = %v, %v after %d reads; want it from the preload, no read", s, err, l.reads.Load())
	}
	stale := c.Generation()
	c.Invalidate("initech")
	if n := c.Preload([]*tenant.Tenant{{ID: "initech", Status: tenant.StatusActive}}, stale); n != 0 {
		t.Fatal("a preload read before an invalidation must not land")
	}
}
