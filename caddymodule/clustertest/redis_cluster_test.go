package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/saasgate/saasgate/internal/proc"
	"github.com/saasgate/saasgate/internal/testenv"
)

// startRedisCluster runs three `redis-server --cluster-enabled yes` nodes of the test's own,
// joins them into one cluster of three masters (no replicas) and waits until every node says
// cluster_state:ok. It returns the nodes' addresses. Every node is killed when the
// test ends, whether it passed or not.
func startRedisCluster(t *testing.T) []*redisServer {
	t.Helper()
	server := lookRedisServer(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not on PATH (%v): the Cluster test joins its nodes with redis-cli --cluster create", err)
	}
	ports := testenv.FreePorts(t, 3)
	addrs := make([]string, len(ports))
	nodes := make([]*redisServer, len(ports))
	for i, port := range ports {
		nodes[i] = startClusterNode(t, server, port)
		addrs[i] = nodes[i].addr()
	}
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create %v: %v\n%s", addrs, err, out)
	}
	for _, addr := range addrs {
		awaitClusterOK(t, addr)
	}
	return nodes
}

// clusterURL is the redis_url of the Cluster form: the first node in the authority, the others
// as addr parameters.
func clusterURL(nodes []*redisServer) string {
	addrs := addrsOf(nodes)
	return "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
}

func addrsOf(nodes []*redisServer) []string {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.addr()
	}
	return addrs
}

// crossSlotErrors is what each node counted of CROSSSLOT replies (INFO errorstats), whatever
// the gateways logged of them.
func crossSlotErrors(t *testing.T, nodes []*redisServer) map[string]string {
	t.Helper()
	found := map[string]string{}
	for _, addr := range addrsOf(nodes) {
		c := redis.NewClient(&redis.Options{Addr: addr})
		stats, err := c.Info(ctx(t), "errorstats").Result()
		_ = c.Close()
		if err != nil {
			t.Fatalf("INFO errorstats on %s: %v", addr, err)
		}
		for _, line := range strings.Split(stats, "\r\n") {
			if strings.HasPrefix(line, "errorstat_CROSSSLOT:") {
				found[addr] = line
			}
		}
	}
	return found
}

// startClusterNode starts one cluster node on port, with its node file in a directory of its
// own (two nodes sharing nodes.conf would take each other's identity), and waits for PING.
func startClusterNode(t *testing.T, server string, port int) *redisServer {
	t.Helper()
	s := &redisServer{port: port, dir: t.TempDir()}
	startNodeProcess(t, server, s)
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("cluster node on port %d output:\n%s", port, s.out)
		}
	})
	return s
}

// startNodeProcess runs s as a cluster node; again after a kill, it rejoins the cluster with
// the identity and slots its nodes file in s.dir records.
func startNodeProcess(t *testing.T, server string, s *redisServer) {
	t.Helper()
	port := s.port
	s.out, s.done = &lockedBuffer{}, make(chan struct{})
	s.cmd = exec.Command(server,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(port)+".conf",
		"--cluster-node-timeout", "2000")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = proc.SysProcAttr()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting cluster node on port %d: %v", port, err)
	}
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: s.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	if _, err := eventually(time.Now(), 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		err := c.Ping(context.Background()).Err()
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("cluster node on port %d does not answer PING: %v\n%s", port, err, s.out)
	}
}

// awaitClusterOK waits until the node at addr sees every slot served (cluster_state:ok).
func awaitClusterOK(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	if _, err := eventually(time.Now(), 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		info, err := c.ClusterInfo(context.Background()).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok"), fmt.Sprintf("%q %v", info, err)
	}); err != nil {
		t.Fatalf("cluster node %s is not ok: %v", addr, err)
	}
}

// Two gateways on a three-master Redis Cluster: the leased and the exact limiter each admit a
// plan's burst exactly across both, a suspension made through one gateway's API reaches the
// other through pub/sub on the cluster, and no Redis call fails with CROSSSLOT (every key of
// one script carries the tenant's hash tag).
func TestRedisCluster_LimitsAndInvalidationAcrossTwoGateways(t *testing.T) {
	t.Parallel()
	started := time.Now()
	nodes := startRedisCluster(t)
	url := clusterURL(nodes)
	t.Logf("3-node cluster up in %s: %s", time.Since(started).Round(time.Millisecond), url)

	f := newFleet(t, planBlock("free", "40/1h", 0)+
		"\t\tplan strict {\n\t\t\trate 30/1h\n\t\t\texact\n\t\t}\n")
	f.redisURL = url
	gws := f.start(t, 2)
	one, two := gws[0], gws[1]
	admin := one.api.AdminToken(t)

	// Two tenants, so their keys (hash tags {leased-t} and {exact-t}) may well land on
	// different nodes; each tenant's keys share one slot.
	leasedToken := one.newTenant(t, "leased-t")
	exactToken := one.newTenant(t, "exact-t")
	one.api.PatchTenant(t, admin, "exact-t", map[string]string{"plan": "strict"})

	for _, c := range []struct {
		tenant, token string
		burst         int
	}{
		{"leased-t", leasedToken, 40},
		{"exact-t", exactToken, 30},
	} {
		// The plan change must have reached the second gateway before the burst is counted.
		if c.tenant == "exact-t" {
			if _, err := eventually(time.Now(), 5*time.Second, 20*time.Millisecond, func() (bool, string) {
				r, err := two.tenantRequest(c.tenant, c.token)
				if err != nil {
					return false, err.Error()
				}
				return r.Header.Get("X-RateLimit-Limit") == "30", r.String()
			}); err != nil {
				t.Fatalf("%s: the strict plan did not apply: %v", two.name, err)
			}
			// That probe spent one request of the bucket.
			c.burst--
		}
		tl := fire(spread(gws, 3*c.burst, c.tenant, c.token))
		t.Logf("%s: %d concurrent requests over 2 gateways: %d admitted, %d rate_limited",
			c.tenant, 3*c.burst, tl.admitted, tl.rateLimited)
		if len(tl.other) > 0 {
			t.Errorf("%s: %d answers neither 200 nor 429 rate_limited, e.g. %s", c.tenant, len(tl.other), tl.other[0])
		}
		if tl.admitted != c.burst {
			t.Errorf("%s: admitted %d across the gateways, want exactly %d", c.tenant, tl.admitted, c.burst)
		}
	}
	wantRedisHealthy(t, gws)

	// The buckets are in the cluster (not in the shared test Redis), each on its slot's node.
	cc, err := redis.ParseClusterURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cluster := redis.NewClusterClient(cc)
	defer cluster.Close()
	for _, c := range []struct{ tenant, plan string }{{"leased-t", "free"}, {"exact-t", "strict"}} {
		key := bucketKey(f.prefix, c.tenant, c.plan)
		if n, err := cluster.Exists(ctx(t), key).Result(); err != nil || n != 1 {
			t.Errorf("bucket %s is not in the cluster (exists %d, %v)", key, n, err)
		}
		slot, _ := cluster.ClusterKeySlot(ctx(t), key).Result()
		t.Logf("%s: bucket %s in slot %d", c.tenant, key, slot)
	}

	// Invalidation through the cluster: suspended on one, refused by the other within 1 s.
	one.api.PatchTenant(t, admin, "leased-t", map[string]string{"status": "suspended"})
	changed := time.Now()
	took, err := eventually(changed, 5*time.Second, 20*time.Millisecond, func() (bool, string) {
		r, err := two.tenantRequest("leased-t", leasedToken)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusPaymentRequired && r.Code() == "tenant_suspended", r.String()
	})
	if err != nil {
		t.Fatalf("%s still answers %v 5 s after the suspension", two.name, err)
	}
	t.Logf("suspension reached %s through the cluster after %s", two.name, took.Round(time.Millisecond))
	if took >= propagation {
		t.Errorf("the suspension took %s to reach %s, want under %s", took, two.name, propagation)
	}

	if found := crossSlotErrors(t, nodes); len(found) > 0 {
		t.Errorf("cluster nodes answered CROSSSLOT: %v", found)
	}
	for _, g := range gws {
		if out := g.proc.Output(); strings.Contains(out, "CROSSSLOT") {
			t.Errorf("%s logged a CROSSSLOT error:\n%s", g.name, out)
		}
	}
	t.Logf("whole test: %s", time.Since(started).Round(time.Millisecond))
}
