package control_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/internal/testenv"
)

// recorded keeps what the service publishes. It stands for nothing external (the outbox is
// notify's): only the calls matter here.
type recorded struct {
	mu     sync.Mutex
	events []notify.Event
}

func (r *recorded) Publish(_ context.Context, ev notify.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

func (r *recorded) all() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Event(nil), r.events...)
}

// settle waits until r holds n events (published from the service's queue), then a moment
// more, and returns them: a surplus would show.
func (r *recorded) settle(t *testing.T, n int) []notify.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.all()) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	return r.all()
}

// usageService is a running service whose plan "metered" has the given rate and quota, a
// tenant "meterco" on it, and the clock and publisher the test drives.
func usageService(t *testing.T, rate plan.Rate, quota int64, thresholds []int, clock *testenv.Clock) (*control.Service, *recorded) {
	t.Helper()
	plans, err := plan.NewCatalog([]*plan.Plan{{ID: "metered", Rate: rate, Burst: rate.Count, Quota: quota}}, "metered")
	if err != nil {
		t.Fatal(err)
	}
	pub := &recorded{}
	svc, _ := newService(t, control.Config{Plans: plans, Now: clock.Now, UsageAlerts: thresholds, Events: pub})
	if _, err := svc.Tenants.Create(context.Background(), identity.Actor{UserID: "usr_test"}, "meterco"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go svc.Run(ctx, time.Hour)
	return svc, pub
}

// admit sends n requests of meterco through the service's limiter and counts those allowed.
func admit(t *testing.T, svc *control.Service, n int) int {
	t.Helper()
	snap, err := svc.LookupTenant(context.Background(), "meterco")
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	for range n {
		if _, out := svc.Admit(context.Background(), snap, nil); out.Allowed {
			allowed++
		}
	}
	return allowed
}

// Requests through the limiter cross 50, 80 and 100 % of a quota of 10: one
// usage.threshold_reached each, whatever the number of requests past them, with ids named by
// the tenant, the period and the threshold; the next period alerts again, with new ids.
func TestUsageEvents_EachThresholdOncePerPeriod(t *testing.T) {
	start := time.Date(2030, 5, 10, 12, 0, 0, 0, time.UTC)
	clock := testenv.NewClock(start)
	svc, pub := usageService(t, plan.Rate{Count: 1000, Period: time.Minute}, 10, []int{50, 80, 100}, clock)
	snap, err := svc.LookupTenant(context.Background(), "meterco")
	if err != nil {
		t.Fatal(err)
	}
	period := svc.QuotaPeriod(snap, start)

	if got := admit(t, svc, 4); got != 4 {
		t.Fatalf("%d of 4 requests allowed", got)
	}
	if evs := pub.settle(t, 0); len(evs) != 0 {
		t.Fatalf("below 50 %%: published %+v", evs)
	}
	admit(t, svc, 30) // 10 allowed in all, the rest refused for the quota
	evs := pub.settle(t, 3)
	if len(evs) != 3 {
		t.Fatalf("published %d events %+v, want 3", len(evs), evs)
	}
	periodEnd := period.End.UTC().Format(time.RFC3339)
	for i, pct := range []int{50, 80, 100} {
		ev := evs[i]
		wantID := notify.EventID("meterco", periodEnd, strconv.Itoa(pct), notify.EventUsageThresholdReached)
		if ev.Type != notify.EventUsageThresholdReached || ev.ID != wantID || ev.TenantID != "meterco" {
			t.Errorf("event %d: %+v, want %s with id %s", i, ev, notify.EventUsageThresholdReached, wantID)
		}
		if ev.Data["threshold"] != pct || ev.Data["quota_limit"] != int64(10) || ev.Data["plan"] != "metered" ||
			ev.Data["period_end"] != periodEnd || ev.Data["quota_used"].(int64)*100 < int64(10*pct) {
			t.Errorf("event %d data %v", i, ev.Data)
		}
	}

	clock.Set(period.End.Add(time.Minute))
	admit(t, svc, 6)
	next := pub.settle(t, 4)[3:]
	if len(next) != 1 || next[0].Data["threshold"] != 50 || next[0].ID == evs[0].ID {
		t.Fatalf("in the next period: %+v, want one 50 %% event with a new id", next)
	}
}

// A tenant refused for its rate publishes rate_limit.exceeded at most once an hour, however
// many requests are refused.
func TestUsageEvents_RateLimitExceededAtMostHourly(t *testing.T) {
	start := time.Date(2030, 5, 10, 10, 0, 0, 0, time.UTC)
	clock := testenv.NewClock(start)
	svc, pub := usageService(t, plan.Rate{Count: 1, Period: 24 * time.Hour}, 0, nil, clock)

	if got := admit(t, svc, 20); got != 1 {
		t.Fatalf("%d of 20 requests allowed, want 1", got)
	}
	clock.Set(start.Add(30 * time.Minute))
	admit(t, svc, 20)
	clock.Set(start.Add(59 * time.Minute))
	admit(t, svc, 20)
	evs := pub.settle(t, 1)
	if len(evs) != 1 || evs[0].Type != notify.EventRateLimitExceeded ||
		evs[0].ID != notify.EventID("meterco", start.Format(time.RFC3339), notify.EventRateLimitExceeded) ||
		evs[0].Data["tenant_id"] != "meterco" || evs[0].Data["plan"] != "metered" {
		t.Fatalf("within the hour: %+v, want one rate_limit.exceeded", evs)
	}
	clock.Set(start.Add(61 * time.Minute))
	admit(t, svc, 20)
	evs = pub.settle(t, 2)
	if len(evs) != 2 || evs[1].Type != notify.EventRateLimitExceeded || evs[1].ID == evs[0].ID {
		t.Fatalf("after the hour: %+v, want a second rate_limit.exceeded", evs)
	}
}
