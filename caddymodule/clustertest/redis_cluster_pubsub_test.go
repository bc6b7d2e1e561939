package clustertest

import (
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/internal/testenv"
)

// go-redis's ClusterClient subscribes through the master of the channel name's slot
// (`<prefix>tenants`); PUBLISH goes to a random master, which broadcasts. With no replica,
// killing that master loses the channel until the node comes back: the gateways keep retrying
// it, and on resubscribing flush their tenant caches and list every tenant again, so a change
// made meanwhile is seen at the latest then.
func TestRedisCluster_InvalidationResumesWhenTheChannelsNodeReturns(t *testing.T) {
	t.Parallel()
	nodes := startRedisCluster(t)
	f := newFleet(t, planBlock("free", "6000/1m", 0))
	f.redisURL = clusterURL(nodes)
	gws := f.start(t, 2)
	one, two := gws[0], gws[1]
	admin := one.api.AdminToken(t)
	token := one.newTenant(t, "watched")
	for _, g := range gws {
		if r := g.mustTenantRequest(t, "watched", token); r.Status != http.StatusOK {
			t.Fatalf("%s before the kill: %s, want 200", g.name, r)
		}
	}

	opts, err := redis.ParseClusterURL(f.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	cluster := redis.NewClusterClient(opts)
	defer cluster.Close()
	channel := f.prefix + "tenants"
	master, err := cluster.MasterForKey(ctx(t), channel)
	if err != nil {
		t.Fatalf("the master of %s: %v", channel, err)
	}
	var subscribed *redisServer
	for _, n := range nodes {
		if n.addr() == master.Options().Addr {
			subscribed = n
		}
	}
	if subscribed == nil {
		t.Fatalf("the master of %s is %s, none of the test's nodes", channel, master.Options().Addr)
	}
	t.Logf("channel %s lives on %s; killing it", channel, subscribed.addr())
	subscribed.kill()

	r := one.api.Do(t, http.MethodPatch, "/tenants/watched", admin, map[string]string{"status": "suspended"})
	t.Logf("PATCH /tenants/watched while the channel's node is down: %s", r)
	time.Sleep(2 * time.Second)
	before, _ := two.tenantRequest("watched", token)
	t.Logf("%s 2 s later, the node still down: %s", two.name, before)

	startNodeProcess(t, lookRedisServer(t), subscribed)
	back := time.Now()
	if r.Status != http.StatusOK {
		// The change was refused, not lost: make it again now the node is back.
		one.api.PatchTenant(t, admin, "watched", map[string]string{"status": "suspended"})
	}
	took, err := eventually(back, 15*time.Second, 50*time.Millisecond, func() (bool, string) {
		r, err := two.tenantRequest("watched", token)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusPaymentRequired && r.Code() == "tenant_suspended", r.String()
	})
	if err != nil {
		t.Fatalf("%s still answers %v 15 s after the channel's node came back", two.name, err)
	}
	t.Logf("the suspension reached %s %s after the node came back", two.name, took.Round(time.Millisecond))
}

// The anonymous auth routes' limits are counted in the cluster too: three signups spread over
// two gateways use up 3/1h on both.
func TestRedisCluster_AuthRouteLimitIsOneBudgetAcrossGateways(t *testing.T) {
	t.Parallel()
	nodes := startRedisCluster(t)
	f := newFleet(t, "")
	f.redisURL = clusterURL(nodes)
	f.extra = "\t\tauth_rate signup 3/1h\n"
	gws := f.start(t, 2)
	for i, name := range []string{"c-one", "c-two", "c-three"} {
		gws[i%2].newTenant(t, name)
	}
	for _, g := range gws {
		r := g.api.Do(t, http.MethodPost, "/auth/signup", "",
			map[string]string{"email": "owner@c-four.test", "password": testenv.Password, "tenant": "c-four"})
		if r.Status != http.StatusTooManyRequests || r.Code() != "rate_limited" {
			t.Errorf("%s: a fourth signup from the address answered %s, want 429 rate_limited", g.name, r)
		}
	}
	if found := crossSlotErrors(t, nodes); len(found) > 0 {
		t.Errorf("cluster nodes answered CROSSSLOT: %v", found)
	}
}

// The usage alerts on a cluster, over two gateways: the quota counted in the cluster (the
// tenant's hash tag puts its bucket and quota in one slot), each gateway alerting each
// threshold once, the fleet recording each notification once (checkUsageAlerts), and no
// CROSSSLOT.
func TestRedisCluster_UsageAlertsOnceAcrossGateways(t *testing.T) {
	t.Parallel()
	started := time.Now()
	nodes := startRedisCluster(t)
	f := newFleet(t, featurePlans)
	f.redisURL = clusterURL(nodes)
	f.extra = featureOptions
	gws := f.start(t, 2)
	checkUsageAlerts(t, gws, gws[0].api.AdminToken(t))
	wantRedisHealthy(t, gws)
	// The count the alerts came from is the cluster's.
	opts, err := redis.ParseClusterURL(f.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	cluster := redis.NewClusterClient(opts)
	defer cluster.Close()
	_, quota := (&limit.Redis{Prefix: f.prefix}).Keys("metered", limit.Policy{Name: "metered"}, limit.MonthOf(time.Now()))
	if n, err := cluster.Exists(ctx(t), quota).Result(); err != nil || n != 1 {
		t.Errorf("the metered tenant's quota count %s is not in the cluster (exists %d, %v)", quota, n, err)
	}
	if found := crossSlotErrors(t, nodes); len(found) > 0 {
		t.Errorf("cluster nodes answered CROSSSLOT: %v", found)
	}
	t.Logf("whole test: %s", time.Since(started).Round(time.Millisecond))
}
