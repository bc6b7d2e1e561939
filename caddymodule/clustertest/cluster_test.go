package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/internal/testenv"
)

// fleet describes the gateways of one test: what their `saas` options share.
type fleet struct {
	mongoURI, database string
	redisURL, prefix   string
	onLimiterError     string // "" keeps the default (local)
	plans              string // `plan <id> { ... }` blocks, tab-indented for the saas block
	metrics            bool   // serve Caddy's metrics at /metrics on the API site
	extra              string // more lines of the saas block (e.g. a stripe block), tab-indented
	redisTimeout       string // "" keeps 50ms
}

// newFleet points gateways at a fresh database of this test and at the shared test Redis under
// a key prefix of its own.
func newFleet(t *testing.T, plans string) fleet {
	t.Helper()
	return fleet{
		mongoURI: testenv.Mongo(t),
		database: testenv.DB(t).Database.Name(),
		redisURL: testenv.RedisURL(t),
		prefix:   testenv.KeyPrefix(t),
		plans:    plans,
		metrics:  true,
	}
}

// planBlock is one plan of the catalog; burst 0 leaves the default (the rate's count).
func planBlock(id, rate string, burst int) string {
	s := "\t\tplan " + id + " {\n\t\t\trate " + rate + "\n"
	if burst > 0 {
		s += "\t\t\tburst " + strconv.Itoa(burst) + "\n"
	}
	return s + "\t\t}\n"
}

// gateway is one running replica.
type gateway struct {
	name   string
	proc   *testenv.Process
	saas   *testenv.Saas   // its config
	api    *testenv.Client // the control API site, http://127.0.0.1:<port>
	tenant *testenv.Client // the tenant site, http://*.localhost:<port> dialled on 127.0.0.1
}

// saas is the config of one replica: the control API on apiPort and, on tenantPort, the
// tenant site in front of upstream.
func (f fleet) saas(apiPort, tenantPort int, upstream string) testenv.SaasOptions {
	timeout := f.redisTimeout
	if timeout == "" {
		timeout = "50ms"
	}
	options := "redis_timeout " + timeout + "\n"
	if f.onLimiterError != "" {
		options += "on_limiter_error " + f.onLimiterError + "\n"
	}
	apiSite := "bind 127.0.0.1"
	if f.metrics {
		apiSite += "\nmetrics /metrics"
	}
	return testenv.SaasOptions{
		MongoURI: f.mongoURI, Database: f.database,
		Redis: true, RedisURL: f.redisURL, RedisPrefix: f.prefix,
		Options: options + f.plans + f.extra,
		APIPort: apiPort, APISite: apiSite,
		Sites: []testenv.Site{{Name: "tenant", Port: tenantPort,
			Body: "bind 127.0.0.1\nsaas_tenant\nsaas_auth\nsaas_rate_limit\nreverse_proxy UPSTREAM"}},
		Upstream: upstream,
	}
}

// start runs n gateways and waits until every one is ready. The first starts alone and
// creates the platform admin; the others then start at once. (All starting at once on a fresh
// database is TestReplicas_StartTogetherOnAFreshDatabase's subject.)
func (f fleet) start(t *testing.T, n int) []*gateway {
	t.Helper()
	gws := f.prepare(t, n)
	launch(t, gws[:1], 30*time.Second)
	launch(t, gws[1:], 30*time.Second)
	return gws
}

// prepare gives each of n gateways its ports, its own echoing upstream (whose echo of what it
// received is the body of every admitted response) and its Caddyfile, without starting it.
func (f fleet) prepare(t *testing.T, n int) []*gateway {
	t.Helper()
	gws := make([]*gateway, n)
	upstreams := make([]*testenv.Upstream, n)
	for i := range upstreams {
		upstreams[i] = testenv.EchoUpstream(t)
	}
	// Ports are taken after the upstreams bind theirs, and all at once, so no two of them are
	// the same and none is an upstream's: a gateway whose port an echoing upstream holds would
	// seem ready (the echo answers 200 to anything) while it failed to start.
	ports := testenv.FreePorts(t, 2*n)
	for i := range gws {
		s := testenv.NewSaas(t, f.saas(ports[2*i], ports[2*i+1], upstreams[i].Addr))
		s.HC = client
		gws[i] = &gateway{
			name:   fmt.Sprintf("gateway %d", i+1),
			saas:   s,
			api:    s.Client,
			tenant: &testenv.Client{Base: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]), HC: client},
		}
	}
	return gws
}

// launch starts the gateways at once and waits until every one is ready, for at most within.
func launch(t *testing.T, gws []*gateway, within time.Duration) {
	t.Helper()
	spawn(t, gws)
	awaitReady(t, gws, within)
}

// spawn starts the gateways' processes. When the test ends they are killed all at once: the
// test is over, and stopping them one by one would add each one's shutdown to its time
// (TestReplicas_GatewayWithRedisStopsGracefully covers a clean stop).
func spawn(t *testing.T, gws []*gateway) {
	t.Helper()
	for _, g := range gws {
		g.proc = g.saas.StartProcess(t)
	}
	// Registered after StartSaasgate's own cleanups, so it runs before them.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, g := range gws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.proc.Kill()
			}()
		}
		wg.Wait()
	})
}

// awaitReady waits until every gateway is ready (GET /readyz answers 200: MongoDB and Redis
// reachable; and the tenant site listens), for at most within, failing the test otherwise.
func awaitReady(t *testing.T, gws []*gateway, within time.Duration) {
	t.Helper()
	errs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.waitReady(within)
		}()
	}
	wg.Wait()
	failed := false
	for i, err := range errs {
		if err != nil {
			failed = true
			t.Errorf("%s (pid %d) did not become ready: %v\noutput:\n%s", gws[i].name, gws[i].proc.Pid(), err, gws[i].proc.Output())
		}
	}
	if failed {
		t.FailNow()
	}
}

// waitReady polls until the control API reports ready (its own body, not just any 200) and
// the tenant site answers too.
func (g *gateway) waitReady(within time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(within)
	for {
		ready, err := g.readyOnce(hc)
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s; last check: %v", within, err)
		}
		select {
		case <-g.proc.Done():
			return fmt.Errorf("the process exited; last check: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (g *gateway) readyOnce(hc *http.Client) (bool, error) {
	resp, err := hc.Get(g.api.Base + "/readyz")
	if err != nil {
		return false, err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var st struct {
		Status string `json:"status"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Status != "ready" {
		return false, fmt.Errorf("GET /readyz: %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	// Any answer will do: the tenant site's listener is bound.
	resp, err = hc.Get(g.tenant.Base + "/")
	if err != nil {
		return false, fmt.Errorf("tenant site: %w", err)
	}
	_ = resp.Body.Close()
	return true, nil
}

// ---------------------------------------------------------------------------------------------
// HTTP

// client is shared by the tests: generous connection pools, since tests fire a few hundred
// requests at once, and a timeout that turns a hung gateway into a failure, not a hung test.
var client = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        1000,
		MaxIdleConnsPerHost: 500,
		IdleConnTimeout:     30 * time.Second,
	},
}

// tenantRequest is a request through g's tenant site (saas_tenant, saas_auth, saas_rate_limit,
// reverse_proxy) for tenant, dialling 127.0.0.1 with Host <tenant>.localhost:<port>.
func (g *gateway) tenantRequest(tenant, token string) (testenv.Response, error) {
	return g.tenant.Send(http.MethodGet, "/work", token, nil,
		testenv.WithHost(fmt.Sprintf("%s.localhost:%d", tenant, g.saas.Ports["tenant"])))
}

func (g *gateway) mustTenantRequest(t testing.TB, tenant, token string) testenv.Response {
	t.Helper()
	r, err := g.tenantRequest(tenant, token)
	if err != nil {
		t.Fatalf("%s: %v", g.name, err)
	}
	return r
}

// upstreamSaw decodes what the echoing upstream received, as it wrote it in the body.
func upstreamSaw(t testing.TB, r testenv.Response) testenv.Request {
	t.Helper()
	var got testenv.Request
	if err := json.Unmarshal(r.Raw, &got); err != nil {
		t.Fatalf("the body is not the upstream's echo (%v): %s", err, r.Raw)
	}
	return got
}

// ---------------------------------------------------------------------------------------------
// Accounts

// newTenant signs an owner up for a new tenant named name (a valid slug, so it is also the
// id) and returns the owner's access token.
func (g *gateway) newTenant(t testing.TB, name string) string {
	t.Helper()
	_, owner := g.api.NewOwner(t, name)
	return owner.Access
}

// ---------------------------------------------------------------------------------------------
// Metrics

// metric returns the value of one series on g's /metrics, e.g.
// `saasgate_limiter_breaker_open` or `saasgate_limiter_decisions_total{plan="free",result="allowed"}`
// (labels in the exposition's alphabetical order); false when the series is absent.
func (g *gateway) metric(t testing.TB, series string) (float64, bool) {
	t.Helper()
	return testenv.Scrape(t, g.api, "/metrics").Series(series)
}

func (g *gateway) mustMetric(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := g.metric(t, series)
	if !ok {
		t.Fatalf("%s: no series %s on /metrics", g.name, series)
	}
	return v
}

// ---------------------------------------------------------------------------------------------
// Load

// tally counts what a burst of requests got back.
type tally struct {
	admitted    int
	rateLimited int
	other       []string // anything else, for the failure message
}

// fire sends the requests of all targets at the same instant (each target one request) and
// counts the answers.
func fire(targets []func() (testenv.Response, error)) tally {
	results := make([]testenv.Response, len(targets))
	errs := make([]error, len(targets))
	testenv.AtOnce(len(targets), func(i int) { results[i], errs[i] = targets[i]() })
	var tl tally
	for i, r := range results {
		switch {
		case errs[i] != nil:
			tl.other = append(tl.other, errs[i].Error())
		case r.Status == http.StatusOK:
			tl.admitted++
		case r.Status == http.StatusTooManyRequests && r.Code() == "rate_limited":
			tl.rateLimited++
		default:
			tl.other = append(tl.other, r.String())
		}
	}
	return tl
}

// wantRedisHealthy checks that no limiter call to Redis failed on any of the gateways: with a
// healthy Redis, every decision must have been taken there, none by the on_limiter_error
// fallback (which, in the default mode, limits each replica on its own).
func wantRedisHealthy(t *testing.T, gws []*gateway) {
	t.Helper()
	for _, g := range gws {
		failed := g.mustMetric(t, "saasgate_limiter_redis_errors_total")
		open := g.mustMetric(t, "saasgate_limiter_breaker_open")
		if failed != 0 || open != 0 {
			t.Errorf("%s: %v limiter calls to a healthy Redis failed (saasgate_limiter_redis_errors_total), breaker open %v",
				g.name, failed, open)
		}
	}
}

// spread builds n requests for tenant, dealt round-robin across the gateways.
func spread(gws []*gateway, n int, tenant, token string) []func() (testenv.Response, error) {
	targets := make([]func() (testenv.Response, error), n)
	for i := range targets {
		g := gws[i%len(gws)]
		targets[i] = func() (testenv.Response, error) { return g.tenantRequest(tenant, token) }
	}
	return targets
}

// eventually polls check every interval until it reports done or within has passed since
// start; it returns the time from start to the successful check, and on timeout an error
// holding the last check's note.
func eventually(start time.Time, within, interval time.Duration, check func() (bool, string)) (time.Duration, error) {
	for {
		ok, note := check()
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > within {
			return time.Since(start), errors.New(note)
		}
		time.Sleep(interval)
	}
}

// bucketKey is the Redis key of tenant's rate bucket under plan, as the gateway's limiter names
// it.
func bucketKey(prefix, tenant, plan string) string {
	rate, _ := (&limit.Redis{Prefix: prefix}).Keys(tenant, limit.Policy{Name: plan}, limit.MonthOf(time.Now()))
	return rate
}

// ctx is a context bounded for one Redis check.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}
