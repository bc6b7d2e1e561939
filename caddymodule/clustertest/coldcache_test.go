package clustertest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/token"
	"github.com/saasgate/saasgate/internal/testenv"
)

// coldTenants is how many tenants the cold-cache test creates after the gateways started:
// thousands, as many as a CI run makes in about a minute on a 2-core machine (31 a second;
// the test store spreads its tenants over 64 files, as every FerretDB store does).
// SAASGATE_TEST_COLD_TENANTS asks for another number (the issue's 6,000, say).
const coldTenants = 2000

// coldTenantCount is coldTenants, or the number SAASGATE_TEST_COLD_TENANTS asks for.
func coldTenantCount(t *testing.T) int {
	t.Helper()
	v := os.Getenv("SAASGATE_TEST_COLD_TENANTS")
	if v == "" {
		return coldTenants
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100000 {
		t.Fatalf("SAASGATE_TEST_COLD_TENANTS=%q: want a number of tenants from 1 to 100000", v)
	}
	return n
}

// Tenants created through one gateway after both started are in both caches at once: the
// announcement of each carries its state, so the other gateway serves load spread over all of
// them from memory, with no store read per tenant (before, each tenant's first request on the
// other gateway read the store: 31 req/s with timeouts over 6,000 tenants on the embedded
// store). saasgate_tenant_cache_loads_total{kind="miss"} proves it; a bare id announced as a
// replica of the previous version announces it shows that the counter counts.
func TestColdCache_TenantsCreatedAfterStartAreServedEverywhereWithoutStoreReads(t *testing.T) {
	f := newFleet(t, planBlock("free", "100000/1m", 0))
	gws := f.start(t, 2)
	a, b := gws[0], gws[1]
	admin := a.api.AdminToken(t)
	misses := func(g *gateway) float64 { return g.mustMetric(t, `saasgate_tenant_cache_loads_total{kind="miss"}`) }
	missesA, missesB := misses(a), misses(b)

	ids := make([]string, coldTenantCount(t))
	for i := range ids {
		ids[i] = fmt.Sprintf("cold-%05d", i)
	}
	began := time.Now()
	created := createTenants(t, a, admin, ids)
	took := time.Since(began)
	t.Logf("created %d tenants through %s in %s (%.0f a second)", created, a.name, took.Round(time.Millisecond), float64(created)/took.Seconds())
	if created != len(ids) {
		t.FailNow()
	}

	keys, err := token.NewKeys([]byte(testenv.JWTSecret), control.DefaultIssuer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, len(ids))
	for i, id := range ids {
		if tokens[i], err = keys.Issue(identity.Principal{UserID: "usr_" + id, TenantID: id, Role: identity.RoleUser}); err != nil {
			t.Fatal(err)
		}
	}

	// Every tenant gets two requests through B and one through A, in a shuffled order: the
	// load spreads over all of them from the first request on.
	type target struct {
		g      *gateway
		tenant int
	}
	var targets []target
	for i := range ids {
		targets = append(targets, target{b, i}, target{a, i}, target{b, i})
	}
	rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	const workers = 16
	latencies := make([]time.Duration, len(targets))
	failures := make([]string, len(targets))
	var next atomic.Int64
	var wg sync.WaitGroup
	began = time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= len(targets) {
					return
				}
				tg := targets[n]
				start := time.Now()
				r, err := tg.g.tenantRequest(ids[tg.tenant], tokens[tg.tenant])
				latencies[n] = time.Since(start)
				switch {
				case err != nil:
					failures[n] = fmt.Sprintf("%s, %s: %v", tg.g.name, ids[tg.tenant], err)
				case r.Status != http.StatusOK:
					failures[n] = fmt.Sprintf("%s, %s: %s", tg.g.name, ids[tg.tenant], r)
				}
			}
		}()
	}
	wg.Wait()
	took = time.Since(began)
	slices.Sort(latencies)
	t.Logf("%d requests over %d tenants, %d at once: %.0f a second, latency p50 %s, p99 %s, max %s", len(targets), len(ids), workers,
		float64(len(targets))/took.Seconds(), latencies[len(latencies)/2].Round(time.Microsecond),
		latencies[len(latencies)*99/100].Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond))
	var failed []string
	for _, f := range failures {
		if f != "" {
			failed = append(failed, f)
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d requests were not 200; the first: %v", len(failed), len(targets), failed[:min(5, len(failed))])
	}

	// Announcements that cross a request may cost a read now and then; one per tenant is
	// what the announcements replace.
	gotA, gotB := misses(a)-missesA, misses(b)-missesB
	t.Logf("store reads for misses during creation and load: %s %v, %s %v; refreshes: %v, %v", a.name, gotA, b.name, gotB,
		a.mustMetric(t, `saasgate_tenant_cache_loads_total{kind="refresh"}`), b.mustMetric(t, `saasgate_tenant_cache_loads_total{kind="refresh"}`))
	if gotA > 5 || gotB > 5 {
		t.Errorf("tenant cache misses that read the store: %s %v, %s %v; want about none for %d tenants created after start",
			a.name, gotA, b.name, gotB, len(ids))
	}

	// The counter counts: the bare id a replica of the previous version announces makes B
	// read that tenant from the store once.
	before := misses(b)
	if err := testenv.RedisClient(t).Publish(ctx(t), f.prefix+"tenants", ids[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := eventually(time.Now(), 5*time.Second, 20*time.Millisecond, func() (bool, string) {
		r, err := b.tenantRequest(ids[0], tokens[0])
		if err != nil || r.Status != http.StatusOK {
			return false, fmt.Sprintf("%v %v", r, err)
		}
		return misses(b) > before, fmt.Sprintf("misses still %v", misses(b))
	}); err != nil {
		t.Fatalf("%s did not read %s after its bare id was announced: %v", b.name, ids[0], err)
	}
}

// createTenants creates a tenant per id through g's API as the platform admin (POST /tenants,
// four at a time: the embedded store gains little from more) and returns how many it created,
// reporting each failure.
func createTenants(t *testing.T, g *gateway, admin string, ids []string) int {
	t.Helper()
	// A creation is slow on a busy machine (seconds, once the store holds many collections),
	// and it is not what this test measures: wait for it longer than the shared client does.
	api := &testenv.Client{Base: g.api.Base, HC: &http.Client{Timeout: 2 * time.Minute}}
	t.Cleanup(api.HC.CloseIdleConnections)
	var next, created atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1)) - 1
				if n >= len(ids) {
					return
				}
				r, err := api.Send(http.MethodPost, "/tenants", admin,
					map[string]string{"tenant_name": ids[n], "admin_email": "owner@" + ids[n] + ".test"})
				if err == nil && r.Status == http.StatusCreated && r.Str("tenant_id") == ids[n] {
					created.Add(1)
					continue
				}
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s: %v %v", ids[n], r, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("%d tenants not created; the first: %v", len(failed), failed[:min(5, len(failed))])
	}
	return int(created.Load())
}
