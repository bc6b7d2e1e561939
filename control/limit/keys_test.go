package limit_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
)

// liveHeap is the heap still in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// A burst of one-off tenants leaves nothing behind once Sweep has forgotten them: not their
// state, and not the room their shards' maps grew to hold them (a Go map keeps the room of the
// most entries it held; 100,000 tenants' worth is about 3 MB here).
func TestLocal_ForgottenTenantsGiveTheirMapRoomBack(t *testing.T) {
	ctx := context.Background()
	l := limit.NewLocal()
	p := limit.Policy{Name: "p", Interval: time.Second, Burst: 10, Quota: 1000}
	period := limit.MonthOf(t0)
	before := liveHeap()
	for i := range 100000 {
		if d, _ := l.Take(ctx, "once-"+strconv.Itoa(i), p, period, t0); !d.Allowed {
			t.Fatalf("once-%d refused: %+v", i, d)
		}
	}
	grown := liveHeap() - before
	next := limit.MonthOf(period.End)
	later := next.Start.Add(time.Hour)
	if d, _ := l.Take(ctx, "steady", p, next, later); !d.Allowed {
		t.Fatalf("steady refused: %+v", d)
	}
	l.Sweep(later.Add(time.Minute))
	kept := liveHeap() - before
	t.Logf("100,000 one-off tenants: %d KB while tracked, %d KB after the sweep", grown/1024, kept/1024)
	// Measured: nothing kept, against 3.3 MB when the shards keep their maps.
	if kept > 256<<10 {
		t.Errorf("after the sweep forgot 100,000 tenants the limiter still holds %d KB (%d KB while it tracked them); want their room back", kept/1024, grown/1024)
	}
	// What is left still works: the steady tenant's bucket is the one it had.
	d, _ := l.Peek(ctx, "steady", p, next, later)
	if d.Remaining != p.Burst-1 {
		t.Errorf("the steady tenant has %d left after the sweep, want %d", d.Remaining, p.Burst-1)
	}
	runtime.KeepAlive(l)
}

// The same for the leasing store: tenants leased once and forgotten give back their shards'
// room as well as their state.
func TestLeased_ForgottenTenantsGiveTheirMapRoomBack(t *testing.T) {
	ctx := context.Background()
	l, _, _ := leasedStore(t, time.Second)
	p := limit.Policy{Name: "p", Interval: time.Millisecond, Burst: 16000, Quota: 100000}
	period := limit.MonthOf(t0)
	// The Redis client's connection and buffers are not the tenants': make them first.
	admit(t, ctx, l, "steady", p, period, t0)
	before := liveHeap()
	const n = 20000
	for i := range n {
		admit(t, ctx, l, "once-"+strconv.Itoa(i), p, period, t0)
	}
	grown := liveHeap() - before
	admit(t, ctx, l, "steady", p, period, t0.Add(time.Minute))
	if err := l.Sweep(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := l.Tracked(); n != 1 {
		t.Fatalf("%d tenants tracked after the sweep, want the steady one", n)
	}
	kept := liveHeap() - before
	t.Logf("%d one-off tenants: %d KB while tracked, %d KB after the sweep", n, grown/1024, kept/1024)
	// Measured: 256 KB kept (the Redis client's pipeline buffers, grown by the hand-back of
	// 20,000 leftovers), against 1,070 KB when the shards keep their maps.
	if kept > 512<<10 {
		t.Errorf("after the sweep forgot %d tenants the leasing store still holds %d KB (%d KB while it tracked them); want their room back", n, kept/1024, grown/1024)
	}
	admit(t, ctx, l, "steady", p, period, t0.Add(time.Minute))
	runtime.KeepAlive(l)
}
