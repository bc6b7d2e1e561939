package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/internal/testenv"
)

const (
	// Every gateway of a test signs and verifies with this secret, so a token issued by one
	// replica is accepted by all.
	jwtSecret     = "clustertest-shared-signing-secret-0123456789"
	adminEmail    = "root@cluster.test"
	adminPassword = "cluster-admin-password"
	password      = "correct-horse-42"
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
	name       string
	proc       *testenv.Process
	api        string // base URL of the control API site, http://127.0.0.1:<port>
	tenantPort int    // port of the tenant site, http://*.localhost:<port>
	caddyfile  string
}

func (f fleet) caddyfile(apiPort, tenantPort int, upstream string) string {
	var b strings.Builder
	b.WriteString("{\n" + testenv.CaddyGlobal() + "\tsaas {\n")
	fmt.Fprintf(&b, "\t\tmongo_uri %s\n\t\tdatabase %s\n", f.mongoURI, f.database)
	timeout := f.redisTimeout
	if timeout == "" {
		timeout = "50ms"
	}
	fmt.Fprintf(&b, "\t\tredis_url %s\n\t\tredis_prefix %s\n\t\tredis_timeout %s\n", f.redisURL, f.prefix, timeout)
	if f.onLimiterError != "" {
		fmt.Fprintf(&b, "\t\ton_limiter_error %s\n", f.onLimiterError)
	}
	fmt.Fprintf(&b, "\t\tjwt_secret %s\n\t\tadmin_email %s\n\t\tadmin_password %s\n", jwtSecret, adminEmail, adminPassword)
	b.WriteString(f.plans)
	b.WriteString(f.extra)
	b.WriteString("\t}\n}\n\n")
	fmt.Fprintf(&b, "http://127.0.0.1:%d {\n\tbind 127.0.0.1\n", apiPort)
	if f.metrics {
		b.WriteString("\tmetrics /metrics\n")
	}
	b.WriteString("\tsaas_api\n}\n\n")
	fmt.Fprintf(&b, "http://*.localhost:%d {\n\tbind 127.0.0.1\n\tsaas_tenant\n\tsaas_auth\n\tsaas_rate_limit\n\treverse_proxy %s\n}\n",
		tenantPort, upstream)
	return b.String()
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
		apiPort, tenantPort, up := ports[2*i], ports[2*i+1], upstreams[i]
		gws[i] = &gateway{
			name:       fmt.Sprintf("gateway %d", i+1),
			api:        fmt.Sprintf("http://127.0.0.1:%d", apiPort),
			tenantPort: tenantPort,
			caddyfile:  f.caddyfile(apiPort, tenantPort, up.Addr),
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
		g.proc = testenv.StartSaasgate(t, g.caddyfile)
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
	resp, err := hc.Get(g.api + "/readyz")
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
	resp, err = hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", g.tenantPort))
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

// response is one answer, read in full.
type response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Latency time.Duration // from sending the request to the last byte of the body
}

// code is the `code` of a problem+json body, "" for any other body.
func (r response) code() string {
	var p struct {
		Code string `json:"code"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		_ = json.Unmarshal(r.Body, &p)
	}
	return p.Code
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// json decodes the body into a map, failing the test if it is not a JSON object.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object (%v): %s", err, r.Body)
	}
	return m
}

func send(method, url, host, token string, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	if host != "" {
		req.Host = host
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s (Host %s): %w", method, url, host, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s (Host %s): reading the body: %w", method, url, host, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: raw, Latency: time.Since(start)}, nil
}

// apiCall is a request to the control API of g; it fails the test on a transport error.
func (g *gateway) apiCall(t testing.TB, method, path, token string, body any) response {
	t.Helper()
	r, err := send(method, g.api+path, "", token, body)
	if err != nil {
		t.Fatalf("%s: %v", g.name, err)
	}
	return r
}

// tenantRequest is a request through g's tenant site (saas_tenant, saas_auth, saas_rate_limit,
// reverse_proxy) for tenant, dialling 127.0.0.1 with Host <tenant>.localhost:<port>.
func (g *gateway) tenantRequest(tenant, token string) (response, error) {
	return send(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/work", g.tenantPort),
		fmt.Sprintf("%s.localhost:%d", tenant, g.tenantPort), token, nil)
}

func (g *gateway) mustTenantRequest(t testing.TB, tenant, token string) response {
	t.Helper()
	r, err := g.tenantRequest(tenant, token)
	if err != nil {
		t.Fatalf("%s: %v", g.name, err)
	}
	return r
}

// upstreamSaw decodes what the echoing upstream received, as it wrote it in the body.
func upstreamSaw(t testing.TB, r response) testenv.Request {
	t.Helper()
	var got testenv.Request
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("the body is not the upstream's echo (%v): %s", err, r.Body)
	}
	return got
}

// ---------------------------------------------------------------------------------------------
// Accounts

// adminToken logs the platform admin in (created at start from admin_email/admin_password).
func (g *gateway) adminToken(t testing.TB) string {
	t.Helper()
	return g.login(t, adminEmail, "")
}

func (g *gateway) login(t testing.TB, email, tenant string) string {
	t.Helper()
	body := map[string]string{"email": email, "password": password}
	if email == adminEmail {
		body["password"] = adminPassword
	}
	if tenant != "" {
		body["tenant"] = tenant
	}
	r := g.apiCall(t, http.MethodPost, "/auth/login", "", body)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: login %s: %s", g.name, email, r)
	}
	tok, _ := r.json(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("%s: login %s: no access_token in %s", g.name, email, r)
	}
	return tok
}

// newTenant signs an owner up for a new tenant named name (a valid slug, so it is also the
// id) and returns the owner's access token.
func (g *gateway) newTenant(t testing.TB, name string) string {
	t.Helper()
	email := "owner@" + name + ".test"
	r := g.apiCall(t, http.MethodPost, "/auth/signup", "", map[string]string{"email": email, "password": password, "tenant": name})
	if r.Status != http.StatusCreated {
		t.Fatalf("%s: signup for tenant %s: %s", g.name, name, r)
	}
	if id, _ := r.json(t)["tenant_id"].(string); id != name {
		t.Fatalf("%s: signup for tenant %s created tenant %q", g.name, name, id)
	}
	return g.login(t, email, name)
}

// patchTenant changes a tenant as the platform admin.
func (g *gateway) patchTenant(t testing.TB, admin, id string, body map[string]string) {
	t.Helper()
	r := g.apiCall(t, http.MethodPatch, "/tenants/"+id, admin, body)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: PATCH /tenants/%s %v: %s", g.name, id, body, r)
	}
}

// ---------------------------------------------------------------------------------------------
// Metrics

// metric returns the value of one series on g's /metrics, e.g.
// `saasgate_limiter_breaker_open` or `saasgate_limiter_decisions_total{plan="free",result="allowed"}`
// (labels in the exposition's alphabetical order); false when the series is absent.
func (g *gateway) metric(t testing.TB, series string) (float64, bool) {
	t.Helper()
	r := g.apiCall(t, http.MethodGet, "/metrics", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("%s: GET /metrics: %d", g.name, r.Status)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: metric line %q: %v", g.name, line, err)
			}
			return v, true
		}
	}
	return 0, false
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
func fire(targets []func() (response, error)) tally {
	results := make([]response, len(targets))
	errs := make([]error, len(targets))
	testenv.AtOnce(len(targets), func(i int) { results[i], errs[i] = targets[i]() })
	var tl tally
	for i, r := range results {
		switch {
		case errs[i] != nil:
			tl.other = append(tl.other, errs[i].Error())
		case r.Status == http.StatusOK:
			tl.admitted++
		case r.Status == http.StatusTooManyRequests && r.code() == "rate_limited":
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
func spread(gws []*gateway, n int, tenant, token string) []func() (response, error) {
	targets := make([]func() (response, error), n)
	for i := range targets {
		g := gws[i%len(gws)]
		targets[i] = func() (response, error) { return g.tenantRequest(tenant, token) }
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
