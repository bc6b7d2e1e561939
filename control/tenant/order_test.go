package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

// state is tenant acme at revision rev, on plan "plan-<rev>" unless plan says otherwise.
func state(rev int64, plan ...string) *tenant.Tenant {
	p := "plan-" + strconv.FormatInt(rev, 10)
	if len(plan) > 0 {
		p = plan[0]
	}
	return &tenant.Tenant{ID: "acme", Status: tenant.StatusActive, Plan: p, Rev: rev}
}

// served is what c serves for acme, and how many store reads that took.
func served(t *testing.T, c *tenant.Cache, l *countingLoader) (plan string, reads int64) {
	t.Helper()
	before := l.reads.Load()
	s, err := c.Get(context.Background(), "acme")
	if err != nil {
		return err.Error(), l.reads.Load() - before
	}
	return s.Plan, l.reads.Load() - before
}

// The rules Put orders announcements by, one case each. The store (the loader) holds the
// state the writes left; the cache starts from what the case sets up.
func TestCache_PutOrdersAnnouncementsByRevision(t *testing.T) {
	for _, tc := range []struct {
		name      string
		store     *tenant.Tenant // nil: no such tenant
		steps     func(c *tenant.Cache)
		wantPlan  string
		wantReads int64
	}{
		{"a newer state replaces", state(2), func(c *tenant.Cache) { c.Put(state(1)); c.Put(state(2)) }, "plan-2", 0},
		{"an older state, crossing a newer one, is ignored", state(3), func(c *tenant.Cache) { c.Put(state(3)); c.Put(state(2)) }, "plan-3", 0},
		{"the id then the state (one change as published) needs no read", state(2),
			func(c *tenant.Cache) { c.Put(state(1)); c.Invalidate("acme"); c.Put(state(2)) }, "plan-2", 0},
		{"the echo of this replica's own change needs no read", state(2),
			func(c *tenant.Cache) { c.Put(state(2)); c.Invalidate("acme"); c.Put(state(2)) }, "plan-2", 0},
		{"a late pair behind a newer one leaves the entry to the store", state(3),
			func(c *tenant.Cache) { c.Invalidate("acme"); c.Put(state(3)); c.Invalidate("acme"); c.Put(state(2)) }, "plan-3", 1},
		{"one revision, two states: the store decides", state(2, "store-plan"),
			func(c *tenant.Cache) { c.Put(state(2)); c.Put(state(2, "other")) }, "store-plan", 1},
		{"an id alone (a replica of the previous version) is read", state(2, "old-writer"),
			func(c *tenant.Cache) { c.Put(state(2)); c.Invalidate("acme") }, "old-writer", 1},
		{"a state announced before a removal and delivered after it is not served", nil,
			func(c *tenant.Cache) { c.Put(state(1)); c.Removed("acme"); c.Put(state(2)) }, tenant.ErrNotFound.Error(), 1},
		{"a repeat of the last state after a removal is not served", nil,
			func(c *tenant.Cache) { c.Put(state(1)); c.Removed("acme"); c.Put(state(1)) }, tenant.ErrNotFound.Error(), 1},
		{"a tenant made again right after its removal is read", state(1, "again"),
			func(c *tenant.Cache) { c.Put(state(4)); c.Removed("acme"); c.Put(state(1, "again")) }, "again", 1},
		{"a tenant unknown here is taken as announced", state(1), func(c *tenant.Cache) { c.Put(state(1)) }, "plan-1", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLoader()
			if tc.store != nil {
				l.set(tc.store)
			}
			c := completeCache(t, newLoader())
			c.SetLoader(l.load)
			tc.steps(c)
			plan, reads := served(t, c, l)
			if plan != tc.wantPlan || reads != tc.wantReads {
				t.Fatalf("serves %q after %d store reads; want %q after %d", plan, reads, tc.wantPlan, tc.wantReads)
			}
			if !c.Complete() {
				t.Fatal("announcements made the cache partial")
			}
		})
	}
}

// Three replicas change acme one after another (revisions 1, 2, 3); each publishes its pair,
// the id then the state, and the pairs cross on the way in every possible way (90
// interleavings). Whatever the order, the cache serves revision 3 in the end, with at most one
// store read.
func TestCache_CrossingAnnouncementsEndOnTheNewestState(t *testing.T) {
	type msg struct {
		rev   int64
		state bool // false: the bare id
	}
	var orders [][]msg
	var walk func(prefix []msg, next [3]int)
	walk = func(prefix []msg, next [3]int) {
		if next == [3]int{2, 2, 2} {
			orders = append(orders, append([]msg(nil), prefix...))
			return
		}
		for r := range 3 {
			if next[r] < 2 {
				n := next
				n[r]++
				walk(append(prefix, msg{rev: int64(r + 1), state: next[r] == 1}), n)
			}
		}
	}
	walk(nil, [3]int{})
	if len(orders) != 90 {
		t.Fatalf("%d interleavings, want 90", len(orders))
	}
	maxReads := int64(0)
	for _, order := range orders {
		l := newLoader()
		l.set(state(3))
		c := completeCache(t, newLoader())
		c.SetLoader(l.load)
		c.Put(state(0, "initial"))
		var trace []string
		for _, m := range order {
			if m.state {
				c.Put(state(m.rev))
				trace = append(trace, fmt.Sprintf("state %d", m.rev))
			} else {
				c.Invalidate("acme")
				trace = append(trace, fmt.Sprintf("id (%d)", m.rev))
			}
		}
		plan, reads := served(t, c, l)
		if plan != "plan-3" || reads > 1 {
			t.Fatalf("after %s: serves %q after %d reads; want plan-3 after at most 1", strings.Join(trace, ", "), plan, reads)
		}
		maxReads = max(maxReads, reads)
	}
	t.Logf("90 orders: at most %d store read", maxReads)
}

// A removal is remembered for a minute (removalMemory), then a state announced for the id is
// taken again.
func TestCache_RemovalIsRememberedForAMinute(t *testing.T) {
	l := newLoader()
	c := completeCache(t, newLoader())
	c.SetLoader(l.load)
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	c.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	c.Removed("acme")
	c.Put(state(5))
	if plan, reads := served(t, c, l); plan != tenant.ErrNotFound.Error() || reads != 1 {
		t.Fatalf("right after the removal: %q after %d reads; want not found from the store", plan, reads)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	c.Put(state(6))
	if plan, reads := served(t, c, l); plan != "plan-6" || reads != 0 {
		t.Fatalf("a minute later: %q after %d reads; want the announced plan-6 from memory", plan, reads)
	}
}

// A store read in flight when a newer state is announced does not replace it with what it
// read, nor drop a tenant announced as created while it found none.
func TestCache_ReadInFlightDoesNotUndoAnAnnouncement(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		store *tenant.Tenant // what the read finds
	}{
		{"older state read", state(1)},
		{"nothing read", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLoader()
			if tc.store != nil {
				l.set(tc.store)
			}
			l.gate, l.entered = make(chan struct{}), make(chan struct{})
			c := tenant.NewCache(l.load, tenant.CacheConfig{}) // partial: a miss reads
			done := make(chan error)
			go func() { _, err := c.Get(ctx, "acme"); done <- err }()
			<-l.entered
			c.Put(state(2)) // announced while the read is in flight
			close(l.gate)
			<-done
			l.gate, l.entered = nil, nil
			if plan, reads := served(t, c, l); plan != "plan-2" || reads != 0 {
				t.Fatalf("serves %q after %d reads; want the announced plan-2 from memory", plan, reads)
			}
		})
	}
}

// subscribed runs a bus for each cache and waits until every subscription is whole (the state
// channel is subscribed last).
func subscribed(t *testing.T, bus *tenant.Bus, caches ...*tenant.Cache) {
	t.Helper()
	bus.SetKey([]byte("the replicas' key"))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, c := range caches {
		wg.Add(1)
		go func() { defer wg.Done(); bus.Run(ctx, c) }()
	}
	awaitCondition(t, "every subscription", func() bool {
		n, err := bus.Client.PubSubNumSub(ctx, bus.StateChannel()).Result()
		return err == nil && n[bus.StateChannel()] == int64(len(caches))
	})
	for _, c := range caches {
		awaitCondition(t, "the resync", c.Complete)
	}
}

// A tenant created on one replica is in every replica's cache once its announcement arrives:
// served with no store read, the caches still complete. Replicas of the previous version hear
// its id on the old channel.
func TestBus_AnnouncedStateIsServedEverywhereWithoutStoreReads(t *testing.T) {
	client := testenv.RedisClient(t)
	bus := &tenant.Bus{Client: client, Channel: testenv.KeyPrefix(t) + "tenants"}
	l := newLoader("acme")
	replicas := []*tenant.Cache{tenant.NewCache(l.load, tenant.CacheConfig{}), tenant.NewCache(l.load, tenant.CacheConfig{})}
	for _, c := range replicas {
		c.SetLister(tenant.SliceLister(l.list))
	}
	ctx := context.Background()
	previous := client.Subscribe(ctx, bus.Channel) // a replica of the previous version
	defer previous.Close()
	if _, err := previous.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	subscribed(t, bus, replicas...)

	created := &tenant.Tenant{ID: "newco", Status: tenant.StatusActive, Plan: "pro", Rev: 1}
	l.set(created)
	reads := l.reads.Load()
	if err := bus.Publish(ctx, created); err != nil {
		t.Fatal(err)
	}
	for i, c := range replicas {
		awaitCondition(t, fmt.Sprintf("newco on replica %d", i), func() bool {
			s := tenant.Peek(c, "newco")
			return s != nil && s.Plan == "pro"
		})
		if !c.Complete() {
			t.Errorf("replica %d: partial after a creation was announced", i)
		}
	}
	if n := l.reads.Load() - reads; n != 0 {
		t.Fatalf("%d store reads; want none: the state came with the announcement", n)
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := previous.ReceiveMessage(wait)
	if err != nil || msg.Payload != "newco" {
		t.Fatalf("the previous version's channel got %v, %v; want the bare id newco", msg, err)
	}
}

// A malformed payload on the state channel is dropped without harm, and the bus goes on.
func TestBus_MalformedAnnouncementsAreDropped(t *testing.T) {
	bus, l, c := subscribedCache(t, "acme")
	client := bus.Client
	ctx := context.Background()
	// Each would change acme (or add a tenant) if it were taken. They are signed, as a replica
	// would sign them, so that it is the decoder that refuses them.
	for _, p := range []string{"", "acme", "{", `{"v":1,"op":"put","id":"acme","st":"suspended","pl":"evil","rev":5}` + strings.Repeat(" ", 600),
		`{"v":1,"op":"put","id":"../../x","st":"active","pl":"free","rev":5}`, "\x00\xff"} {
		if err := client.Publish(ctx, bus.StateChannel(), tenant.Sign(bus, p)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Messages arrive in order: once this one is in, the malformed ones have been handled.
	if err := bus.Publish(ctx, &tenant.Tenant{ID: "marker", Status: tenant.StatusActive, Plan: "free", Rev: 1}); err != nil {
		t.Fatal(err)
	}
	awaitCondition(t, "the valid announcement after the malformed ones", func() bool { return tenant.Peek(c, "marker") != nil })
	if s := tenant.Peek(c, "acme"); s == nil || s.Status != tenant.StatusActive || s.Plan != "free" {
		t.Fatalf("acme after malformed announcements: %+v, want active on free, as listed", s)
	}
	if n := l.reads.Load(); n != 0 {
		t.Errorf("malformed announcements cost %d store reads", n)
	}
	if !c.Complete() {
		t.Fatal("malformed announcements made the cache partial")
	}
}

// A bare id that is no tenant id (the previous version's channel carries only ids) is dropped:
// each one taken would leave an entry in the cache for good.
func TestBus_BareIDsThatAreNoTenantIDAreDropped(t *testing.T) {
	bus, l, c := subscribedCache(t, "acme")
	client := bus.Client
	ctx := context.Background()
	for _, p := range []string{"", "A", "x y", "../etc", strings.Repeat("a", 64), "-bad-"} {
		if err := client.Publish(ctx, bus.Channel, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Publish(ctx, bus.Channel, "acme").Err(); err != nil {
		t.Fatal(err)
	}
	awaitCondition(t, "the valid id after the others", func() bool { _, _ = c.Get(ctx, "acme"); return l.reads.Load() == 1 })
	if n := tenant.Known(c); n != 1 {
		t.Errorf("the cache holds %d entries after bare ids that are no tenant id, want acme's only", n)
	}
}

// A tenant list read before a removal, landing after a lookup has dropped the removed entry,
// does not bring the tenant back: the removal is remembered.
func TestCache_ResyncDoesNotBringBackARemovedTenant(t *testing.T) {
	ctx := context.Background()
	l := newLoader("acme") // the store, where gone has been removed
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	release := make(chan struct{})
	stale := []*tenant.Tenant{
		{ID: "acme", Status: tenant.StatusActive, Plan: "free", Rev: 1},
		{ID: "gone", Status: tenant.StatusActive, Plan: "free", Rev: 1},
	}
	c.SetLister(tenant.SliceLister(func(context.Context, int) ([]*tenant.Tenant, error) {
		<-release
		return stale, nil
	}))
	done := make(chan error, 1)
	go func() { _, _, err := c.Resync(ctx); done <- err }()
	c.Removed("gone")
	if _, err := c.Get(ctx, "gone"); !errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("gone after its removal: %v, want ErrNotFound", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := tenant.Peek(c, "gone"); s != nil {
		t.Fatalf("a list read before the removal brought gone back: %+v", s)
	}
	if tenant.Peek(c, "acme") == nil {
		t.Fatal("the list's other tenant is not cached")
	}
}

// With a key, a state is taken only when signed with it: one published by someone else on
// Redis (unsigned, or signed with another key) cannot lift a suspension or change a plan; its
// bare id, sent with it, still sends the next lookup to the store, which has the truth.
func TestBus_StatesAreTakenOnlyWhenSigned(t *testing.T) {
	client := testenv.RedisClient(t)
	channel := testenv.KeyPrefix(t) + "tenants"
	bus := &tenant.Bus{Client: client, Channel: channel}
	bus.SetKey([]byte("the replicas' key"))
	l := newLoader("acme")
	l.tenants["acme"].Status = tenant.StatusSuspended
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	c.SetLister(tenant.SliceLister(l.list))
	subscribed(t, bus, c)
	ctx := context.Background()

	lifted := &tenant.Tenant{ID: "acme", Status: tenant.StatusActive, Plan: "enterprise", Rev: 99}
	unsigned, _ := tenant.EncodeState(lifted)
	other := &tenant.Bus{Client: client, Channel: channel}
	other.SetKey([]byte("another key"))
	if err := client.Publish(ctx, bus.StateChannel(), unsigned).Err(); err != nil {
		t.Fatal(err)
	}
	if err := other.Publish(ctx, lifted); err != nil { // its bare id marks acme, whose next lookup reads the store
		t.Fatal(err)
	}
	// Messages arrive in order: once the marker is in, the forged states have been handled.
	if err := bus.Publish(ctx, &tenant.Tenant{ID: "marker", Status: tenant.StatusActive, Plan: "free", Rev: 1}); err != nil {
		t.Fatal(err)
	}
	awaitCondition(t, "the signed announcement", func() bool { return tenant.Peek(c, "marker") != nil })
	if s := tenant.Peek(c, "acme"); s != nil && (s.Status != tenant.StatusSuspended || s.Plan != "free") {
		t.Fatalf("a forged state was taken: acme is %+v", s)
	}
	s, err := c.Get(ctx, "acme")
	if err != nil || s.Status != tenant.StatusSuspended {
		t.Fatalf("acme after forged states: %+v, %v; want suspended, as the store has it", s, err)
	}

	// A state signed with the key is taken as it is.
	if err := bus.Publish(ctx, &tenant.Tenant{ID: "acme", Status: tenant.StatusActive, Plan: "pro", Rev: 7}); err != nil {
		t.Fatal(err)
	}
	awaitCondition(t, "the signed state", func() bool {
		s := tenant.Peek(c, "acme")
		return s != nil && s.Plan == "pro"
	})
}

// subscribedCache is a cache of the store ids, listed and subscribed to a bus of its own.
func subscribedCache(t *testing.T, ids ...string) (*tenant.Bus, *countingLoader, *tenant.Cache) {
	t.Helper()
	bus := &tenant.Bus{Client: testenv.RedisClient(t), Channel: testenv.KeyPrefix(t) + "tenants"}
	l := newLoader(ids...)
	c := tenant.NewCache(l.load, tenant.CacheConfig{})
	c.SetLister(tenant.SliceLister(l.list))
	subscribed(t, bus, c)
	return bus, l, c
}
