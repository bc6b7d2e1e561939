package clustertest

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
)

// Bounds of the outage tests. SPEC §4: a Redis call is bounded (redis_timeout, 50 ms here) and
// a circuit breaker (3 failures → open 1 s → one probe) stops calling a dead Redis, so a
// request never waits much longer than one timeout; once Redis is back, the next probe closes
// the breaker.
//
// outageLatency is redis_timeout plus a wide margin: a request through this gateway takes
// well under a millisecond, so 200 ms of slack covers a busy machine, yet a request that
// waits for several Redis attempts instead of one bounded call does not hide under it.
const (
	outageLatency = 50*time.Millisecond + 200*time.Millisecond
	resumeWithin  = 3 * time.Second // 1 s cooldown, one probe, and polling slack
)

// During an outage each mode answers a fresh tenant's requests its own way. A tenant's first
// requests meet a dead Redis; the rest find the breaker open, and one of them (the requests are
// spaced to outlast the 1 s cooldown) is the probe that fails and opens it again.
func TestRedisOutage_LimiterFollowsOnLimiterErrorAndRecovers(t *testing.T) {
	lookRedisServer(t)
	const outageRequests = 30
	for _, tt := range []struct {
		mode string
		// during says what request i (from 0) of a fresh tenant must get while Redis is down.
		during func(i int) (status int, code string)
		// degradedResult is the limiter_decisions_total result the mode counts while Redis is
		// down; "" when decisions are ordinary ones (local: allowed, rate_limited).
		degradedResult string
	}{
		{
			mode: "local", // the in-process limiter carries on at the plan's rate: 5, then 429
			during: func(i int) (int, string) {
				if i < 5 {
					return http.StatusOK, ""
				}
				return http.StatusTooManyRequests, "rate_limited"
			},
		},
		{
			mode:           "allow",
			during:         func(int) (int, string) { return http.StatusOK, "" },
			degradedResult: "error_allowed",
		},
		{
			mode:           "deny",
			during:         func(int) (int, string) { return http.StatusServiceUnavailable, "limiter_unavailable" },
			degradedResult: "error_denied",
		},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			rs := startRedisServer(t, testenv.FreePort(t))
			rc := rs.client(t)
			f := fleet{
				mongoURI:       testenv.Mongo(t),
				database:       testenv.DB(t).Database.Name(),
				redisURL:       rs.url(),
				prefix:         "clustertest:",
				onLimiterError: tt.mode,
				plans:          planBlock("free", "5/1h", 5),
				metrics:        true,
			}
			g := f.start(t, 1)[0]
			// Tenants are made while Redis is up: a signup announces the new tenant on Redis.
			tokens := map[string]string{}
			for _, name := range []string{"before", "during", "after", "probe"} {
				tokens[name] = g.newTenant(t, name)
			}
			rateKey := func(tenant string) string { return bucketKey(f.prefix, tenant, "free") }
			errorsBefore := g.mustMetric(t, "saasgate_limiter_redis_errors_total")

			// Redis up: the plan's burst of 5, then 429, decided in Redis.
			wantBurstThenLimited(t, g, "before", tokens["before"], 5, 1)
			if n, err := rc.Exists(ctx(t), rateKey("before")).Result(); err != nil || n != 1 {
				t.Errorf("with Redis up, no bucket %s in Redis (exists %d, %v)", rateKey("before"), n, err)
			}
			if v := g.mustMetric(t, "saasgate_limiter_breaker_open"); v != 0 {
				t.Errorf("with Redis up, saasgate_limiter_breaker_open = %v, want 0", v)
			}

			// Redis dies.
			rs.kill()
			down := time.Now()
			var worst time.Duration
			for i := range outageRequests {
				r := g.mustTenantRequest(t, "during", tokens["during"])
				worst = max(worst, r.Latency)
				if r.Latency >= outageLatency {
					t.Errorf("request %d during the outage took %s, want under %s", i+1, r.Latency, outageLatency)
				}
				if status, code := tt.during(i); r.Status != status || r.Code() != code {
					t.Errorf("request %d during the outage: %s, want %d %s", i+1, r, status, code)
				}
				if tt.mode == "allow" && r.Header.Get("X-RateLimit-Remaining") != "" {
					t.Errorf("request %d during the outage shows X-RateLimit-Remaining %s; with allow there is no count to show",
						i+1, r.Header.Get("X-RateLimit-Remaining"))
				}
				time.Sleep(50 * time.Millisecond)
			}
			outage := time.Since(down)
			t.Logf("on_limiter_error %s: slowest of %d requests during the outage took %s", tt.mode, outageRequests, worst.Round(time.Microsecond))
			if v := g.mustMetric(t, "saasgate_limiter_breaker_open"); v != 1 {
				t.Errorf("during the outage saasgate_limiter_breaker_open = %v, want 1", v)
			}
			// Calls that reached the dead Redis: the 3 that open the breaker, then one probe per
			// cooldown (1 s) gone by; with the outage longer than a cooldown, at least one probe.
			errorsDuring := g.mustMetric(t, "saasgate_limiter_redis_errors_total")
			failed := int(errorsDuring - errorsBefore)
			t.Logf("saasgate_limiter_redis_errors_total: %v before the outage, %v after %s of it", errorsBefore, errorsDuring, outage.Round(time.Millisecond))
			if most := 3 + int(outage/time.Second); failed < 4 || failed > most {
				t.Errorf("%d limiter calls failed over %s of outage, want 3 to open the breaker and one probe per second after: 4 to %d",
					failed, outage.Round(time.Millisecond), most)
			}
			if tt.degradedResult != "" {
				series := `saasgate_limiter_decisions_total{plan="free",result="` + tt.degradedResult + `"}`
				if v, _ := g.metric(t, series); v < outageRequests {
					t.Errorf("%s = %v after %d requests during the outage, want at least %d", series, v, outageRequests, outageRequests)
				}
			}

			// Redis comes back on the same port, empty. The gateway decides in Redis again once
			// a request of a tenant it had not seen before leaves that tenant's bucket there: while
			// the breaker is open, no mode writes to Redis (local decides in process, allow and
			// deny decide nothing).
			rs.restart(t)
			restarted := time.Now()
			took, err := eventually(restarted, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
				r := g.mustTenantRequest(t, "probe", tokens["probe"])
				n, err := rc.Exists(ctx(t), rateKey("probe")).Result()
				return err == nil && n == 1, fmt.Sprintf("%s; bucket %s exists %d (%v)", r, rateKey("probe"), n, err)
			})
			if err != nil {
				t.Fatalf("10 s after Redis came back the gateway still does not decide in Redis: %v", err)
			}
			t.Logf("on_limiter_error %s: limiting through Redis resumed %s after the restart", tt.mode, took.Round(time.Millisecond))
			if took > resumeWithin {
				t.Errorf("limiting through Redis resumed %s after Redis came back, want within %s", took, resumeWithin)
			}
			if v := g.mustMetric(t, "saasgate_limiter_breaker_open"); v != 0 {
				t.Errorf("after recovery saasgate_limiter_breaker_open = %v, want 0", v)
			}

			// A fresh tenant gets exactly its burst again, counted in Redis: the bucket is there,
			// its expiry says 5 requests' worth of the hour were taken, and GET /rate-limit (which
			// reads Redis) agrees.
			wantBurstThenLimited(t, g, "after", tokens["after"], 5, 2)
			pttl, err := rc.PTTL(ctx(t), rateKey("after")).Result()
			if err != nil || pttl < 59*time.Minute || pttl > time.Hour+2*time.Second {
				t.Errorf("after recovery the bucket %s has PTTL %s (%v), want about 1h (5 × 12 min)", rateKey("after"), pttl, err)
			}
			st := g.api.Do(t, http.MethodGet, "/rate-limit", tokens["after"], nil)
			if st.Status != http.StatusOK {
				t.Fatalf("GET /rate-limit after recovery: %s", st)
			}
			body := st.Body
			reset, _ := body["reset_seconds"].(float64)
			if body["limit"] != float64(5) || body["requests_remaining"] != float64(0) || reset < 3540 || reset > 3601 {
				t.Errorf("GET /rate-limit after recovery = %s, want limit 5, requests_remaining 0, reset_seconds about 3600", st.Raw)
			}
		})
	}
}

// wantBurstThenLimited sends burst+extra requests for tenant through g one after another:
// the first burst are admitted, the last of them with X-RateLimit-Remaining 0, and the rest
// get 429 rate_limited with a Retry-After. (The countdown's first step has a test of its own,
// TestRedisLimiter_FullBucketShowsBurstMinusOneRemaining.)
func wantBurstThenLimited(t *testing.T, g *gateway, tenant, token string, burst, extra int) {
	t.Helper()
	for i := range burst + extra {
		r := g.mustTenantRequest(t, tenant, token)
		switch {
		case i < burst-1 && r.Status != http.StatusOK:
			t.Errorf("%s request %d: %s, want 200", tenant, i+1, r)
		case i == burst-1 && (r.Status != http.StatusOK || r.Header.Get("X-RateLimit-Remaining") != "0"):
			t.Errorf("%s request %d: %s, X-RateLimit-Remaining %q; want 200, 0", tenant, i+1, r, r.Header.Get("X-RateLimit-Remaining"))
		case i >= burst && (r.Status != http.StatusTooManyRequests || r.Code() != "rate_limited" || r.Header.Get("Retry-After") == ""):
			t.Errorf("%s request %d: %s, Retry-After %q; want 429 rate_limited with Retry-After", tenant, i+1, r, r.Header.Get("Retry-After"))
		}
	}
}

// The invalidation channel is a Redis subscription: when Redis restarts, each replica must
// subscribe again. A change made meanwhile is not lost for good (a new subscription flushes the
// replica's cache; the subscriber retries with a back-off of at most 5 s), and once subscribed
// again, changes reach the other replica within a second as before.
func TestReplicas_SuspensionReachesTheOtherReplicaAfterRedisRestarts(t *testing.T) {
	rs := startRedisServer(t, testenv.FreePort(t))
	f := fleet{
		mongoURI: testenv.Mongo(t),
		database: testenv.DB(t).Database.Name(),
		redisURL: rs.url(),
		prefix:   "clustertest:",
		plans:    planBlock("free", "6000/1m", 0),
	}
	gws := f.start(t, 2)
	one, two := gws[0], gws[1]
	admin := one.api.AdminToken(t)
	token := one.newTenant(t, "comeback")
	for _, g := range gws {
		if r := g.mustTenantRequest(t, "comeback", token); r.Status != http.StatusOK {
			t.Fatalf("%s before the restart: %s, want 200", g.name, r)
		}
	}

	rs.kill()
	time.Sleep(1500 * time.Millisecond) // long enough for the subscribers to notice and back off
	rs.restart(t)

	for _, step := range []struct {
		status string
		want   int
		within time.Duration
	}{
		// Right after the restart the other replica may still be waiting to subscribe again;
		// its new subscription flushes its cache.
		{"suspended", http.StatusPaymentRequired, 5*time.Second + propagation},
		// By now it has subscribed again: the usual bound holds.
		{"active", http.StatusOK, propagation},
	} {
		one.api.PatchTenant(t, admin, "comeback", map[string]string{"status": step.status})
		changed := time.Now()
		took, err := eventually(changed, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
			r, err := two.tenantRequest("comeback", token)
			if err != nil {
				return false, err.Error()
			}
			return r.Status == step.want, r.String()
		})
		if err != nil {
			t.Fatalf("%s still answers %v 10 s after the tenant became %s (Redis restarted before)", two.name, err, step.status)
		}
		t.Logf("after the Redis restart, status %s reached %s after %s", step.status, two.name, took.Round(time.Millisecond))
		if took >= step.within {
			t.Errorf("after the Redis restart, status %s took %s to reach %s, want under %s", step.status, took, two.name, step.within)
		}
	}
}
