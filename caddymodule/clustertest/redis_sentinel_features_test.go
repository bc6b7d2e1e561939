package clustertest

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/saasgate/saasgate/internal/testenv"
)

// Every Redis feature through Sentinel, with two gateway subprocesses on one master, its
// replica and three sentinels: the leased and the exact limiter each admit a plan's burst
// exactly across both gateways, the refresh route's budget is one for both, the usage alerts
// are recorded once for the fleet, and a suspension made on one gateway reaches the other
// through the master's pub/sub. Then the master is SIGKILLed and the replica promoted: both
// gateways' subscriptions move to the new master, a suspension made after the failover still
// reaches the other gateway, and the limiter (both modes) and the MFA route's budget are
// counted on the new master, exactly across both gateways again.
func TestRedisSentinel_EveryFeatureAcrossTwoGatewaysAndAFailover(t *testing.T) {
	started := time.Now()
	master, replica, url := startSentinelSet(t)
	t.Logf("master, replica and 3 sentinels ready in %s", time.Since(started).Round(time.Millisecond))
	f := fleet{
		mongoURI:       testenv.Mongo(t),
		database:       testenv.DB(t).Database.Name(),
		redisURL:       url,
		prefix:         "sentinel-all:",
		onLimiterError: "local",
		// Not 50ms: this test counts exact bursts on a shared 2-core machine, and a limiter
		// call that times out is decided in process (TestRedisSentinel_GatewayFollowsTheFailover
		// holds the bound on waiting).
		redisTimeout: "500ms",
		plans:        featurePlans,
		extra:        featureOptions,
		metrics:      true,
	}
	gws := f.start(t, 2)
	one, two := gws[0], gws[1]
	admin := one.api.AdminToken(t)
	channel := f.prefix + "tenants"
	oldMaster, newMaster := master.client(t), replica.client(t)

	step := func(name string, check func(t *testing.T)) {
		t.Helper()
		began := time.Now()
		t.Run(name, check)
		t.Logf("%s: %s", name, time.Since(began).Round(time.Millisecond))
	}

	step("limiter, leased and exact", func(t *testing.T) {
		checkLimiterModes(t, gws, admin, "-before")
		wantRedisHealthy(t, gws)
		for _, key := range []string{bucketKey(f.prefix, "leased-before", "free"), bucketKey(f.prefix, "exact-before", "strict")} {
			if n, err := oldMaster.Exists(ctx(t), key).Result(); err != nil || n != 1 {
				t.Errorf("bucket %s is not on the master (exists %d, %v)", key, n, err)
			}
		}
	})
	step("auth route budget", func(t *testing.T) {
		checkAuthRouteBudget(t, gws, "/auth/refresh", map[string]string{"refresh_token": "not-a-refresh-token"})
	})
	step("usage alerts", func(t *testing.T) { checkUsageAlerts(t, gws, admin) })
	step("invalidation", func(t *testing.T) {
		wantSubscribers(t, oldMaster, "the master", channel, 2)
		suspendAndWatch(t, one, two, admin, "watched-before", one.newTenant(t, "watched-before"))
	})

	// The failover: the master dies; the sentinels promote the replica.
	watchedToken := one.newTenant(t, "watched-after")
	if r := two.mustTenantRequest(t, "watched-after", watchedToken); r.Status != http.StatusOK {
		t.Fatalf("%s: %s before the failover, want 200", two.name, r)
	}
	master.kill()
	killed := time.Now()
	if _, err := eventually(killed, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		role, err := newMaster.Do(ctx(t), "ROLE").Slice()
		return err == nil && len(role) > 0 && role[0] == "master", fmt.Sprintf("ROLE %v (%v)", role, err)
	}); err != nil {
		t.Fatalf("the replica was not promoted within 30 s of the master's death: %v", err)
	}
	promoted := time.Since(killed)
	// Both gateways' subscriptions follow to the new master.
	took, err := eventually(killed, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		n, err := subscribers(t, newMaster, channel)
		return err == nil && n == 2, fmt.Sprintf("%d subscribers (%v)", n, err)
	})
	if err != nil {
		t.Fatalf("the gateways did not subscribe on the new master within 30 s: %v", err)
	}
	t.Logf("failover: replica promoted %s after the kill, both gateways subscribed to it after %s",
		promoted.Round(time.Millisecond), took.Round(time.Millisecond))
	// Both gateways decide in Redis again once their breakers let a call through: a probe
	// tenant's bucket appears on the new master.
	for i, g := range gws {
		probe := fmt.Sprintf("probe-%d", i+1)
		token := g.newTenant(t, probe)
		key := bucketKey(f.prefix, probe, "free")
		_, err := eventually(time.Now(), 30*time.Second, 50*time.Millisecond, func() (bool, string) {
			r := g.mustTenantRequest(t, probe, token)
			n, err := newMaster.Exists(ctx(t), key).Result()
			return err == nil && n == 1, fmt.Sprintf("%s; bucket %s: exists %d (%v)", r, key, n, err)
		})
		if err != nil {
			t.Fatalf("%s does not decide in Redis after the failover: %v", g.name, err)
		}
		t.Logf("%s decides on the new master %s after the kill", g.name, (time.Since(killed)).Round(time.Millisecond))
	}

	step("invalidation after the failover", func(t *testing.T) {
		// watched-after was cached active on gateway two before the failover (and listed again
		// when it resubscribed): only the new master's pub/sub tells it of the suspension.
		suspendAndWatch(t, one, two, admin, "watched-after", watchedToken)
	})
	step("limiter after the failover, leased and exact", func(t *testing.T) {
		errorsBefore := []float64{one.mustMetric(t, "saasgate_limiter_redis_errors_total"), two.mustMetric(t, "saasgate_limiter_redis_errors_total")}
		checkLimiterModes(t, gws, admin, "-after")
		for i, g := range gws {
			if v := g.mustMetric(t, "saasgate_limiter_redis_errors_total"); v != errorsBefore[i] {
				t.Errorf("%s: saasgate_limiter_redis_errors_total went from %v to %v after the failover", g.name, errorsBefore[i], v)
			}
			if v := g.mustMetric(t, "saasgate_limiter_breaker_open"); v != 0 {
				t.Errorf("%s: saasgate_limiter_breaker_open = %v after the failover", g.name, v)
			}
		}
		for _, key := range []string{bucketKey(f.prefix, "leased-after", "free"), bucketKey(f.prefix, "exact-after", "strict")} {
			if n, err := newMaster.Exists(ctx(t), key).Result(); err != nil || n != 1 {
				t.Errorf("bucket %s is not on the new master (exists %d, %v)", key, n, err)
			}
		}
	})
	step("auth route budget after the failover", func(t *testing.T) {
		checkAuthRouteBudget(t, gws, "/auth/mfa/verify", map[string]string{"mfa_token": "not-an-mfa-token", "code": "123456"})
	})
	t.Logf("whole test: %s", time.Since(started).Round(time.Millisecond))
}

// subscribers is how many clients the node has subscribed to channel.
func subscribers(t *testing.T, node *redis.Client, channel string) (int64, error) {
	n, err := node.PubSubNumSub(ctx(t), channel).Result()
	return n[channel], err
}

func wantSubscribers(t *testing.T, node *redis.Client, name, channel string, want int64) {
	t.Helper()
	if n, err := subscribers(t, node, channel); err != nil || n != want {
		t.Errorf("%s has %d subscribers of %s (%v), want %d: one per gateway", name, n, channel, err, want)
	}
}

// suspendAndWatch suspends tenant through from's API and wants to refuse its requests
// (token: one of its members') within propagation.
func suspendAndWatch(t *testing.T, from, to *gateway, admin, tenant, token string) {
	t.Helper()
	if r := to.mustTenantRequest(t, tenant, token); r.Status != http.StatusOK {
		t.Fatalf("%s: %s before the suspension, want 200", to.name, r)
	}
	from.api.PatchTenant(t, admin, tenant, map[string]string{"status": "suspended"})
	took, err := eventually(time.Now(), 5*time.Second, 20*time.Millisecond, func() (bool, string) {
		r, err := to.tenantRequest(tenant, token)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusPaymentRequired && r.Code() == "tenant_suspended", r.String()
	})
	if err != nil {
		t.Fatalf("%s still answers %v 5 s after the suspension", to.name, err)
	}
	t.Logf("the suspension of %s reached %s after %s", tenant, to.name, took.Round(time.Millisecond))
	if took >= propagation {
		t.Errorf("the suspension of %s took %s to reach %s, want under %s", tenant, took, to.name, propagation)
	}
}
