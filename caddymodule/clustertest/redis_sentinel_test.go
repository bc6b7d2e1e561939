package clustertest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/saasgate/saasgate/internal/proc"
	"github.com/saasgate/saasgate/internal/testenv"
)

// Bounds of the Sentinel failover test. Sentinel declares the master down after 1 s
// (down-after-milliseconds), agrees on it, elects a leader and promotes the replica; the
// gateway's breaker then needs its 1 s cooldown before the probe that finds the new master.
// Measured here: 2.4–3.3 s. failoverResume is a generous bound on a 2-core machine shared with
// other builds. failoverLatency is redis_timeout (50 ms) plus a wide margin for that machine:
// asking a sentinel for the master is one more bounded call, and a gateway whose calls were
// not bounded waits seconds on a hung master (seen with redis_timeout 3s: 2 s), which fails it.
const (
	failoverResume  = 15 * time.Second
	failoverLatency = 50*time.Millisecond + time.Second
)

// A master, its replica and three sentinels; the gateway reaches Redis through the sentinels.
// The master is SIGKILLed (or SIGSTOPped) while a tenant's traffic flows: meanwhile the
// gateway limits in process (on_limiter_error local, no 5xx, no request slower than the
// bound), and once the sentinels have promoted the replica it decides in Redis again, on the
// new master.
//
// SIGKILL is a crash: the kernel closes the master's sockets, so calls fail at once. SIGSTOP is
// a hung master (or a partition): calls get no answer, and only redis_timeout bounds them.
func TestRedisSentinel_GatewayFollowsTheFailover(t *testing.T) {
	lookRedisServer(t)
	for _, tt := range []struct {
		name string
		sig  syscall.Signal
	}{{"killed", syscall.SIGKILL}, {"hung", syscall.SIGSTOP}} {
		t.Run(tt.name, func(t *testing.T) { testSentinelFailover(t, tt.sig) })
	}
}

func testSentinelFailover(t *testing.T, sig syscall.Signal) {
	master, replica, url := startSentinelSet(t)
	f := fleet{
		mongoURI:       testenv.Mongo(t),
		database:       testenv.DB(t).Database.Name(),
		redisURL:       url,
		prefix:         "sentinel:",
		onLimiterError: "local",
		plans:          planBlock("free", "5/1h", 5) + planBlock("busy", "100000/1m", 0),
		metrics:        true,
	}
	g := f.start(t, 1)[0]
	tokens := map[string]string{}
	for _, name := range []string{"traffic", "during", "probe", "after"} {
		tokens[name] = g.newTenant(t, name)
	}
	// The traffic tenant is never limited: a limited tenant is turned away in process until its
	// Retry-After, so its requests would not reach Redis.
	g.api.PatchTenant(t, g.api.AdminToken(t), "traffic", map[string]string{"plan": "busy"})
	newMaster := replica.client(t)

	// Traffic flows through the whole test: each request is timed, and none may be a 5xx.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	var sent int
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, err := g.tenantRequest("traffic", tokens["traffic"])
			mu.Lock()
			sent++
			switch {
			case err != nil:
				bad = append(bad, err.Error())
			case r.Status != http.StatusOK:
				bad = append(bad, r.String())
			default:
				worst = max(worst, r.Latency)
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var once sync.Once
	stopTraffic := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer stopTraffic()

	time.Sleep(300 * time.Millisecond)
	if err := master.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// Sentinel waits a second before it even suspects the master: requests in that second meet
	// the dead master, and the local limiter decides at the plan's rate, 5 then 429.
	for i := range 7 {
		r := g.mustTenantRequest(t, "during", tokens["during"])
		want, code := http.StatusOK, ""
		if i >= 5 {
			want, code = http.StatusTooManyRequests, "rate_limited"
		}
		if r.Status != want || r.Code() != code {
			t.Errorf("request %d right after the master died: %s, want %d %s (on_limiter_error local)", i+1, r, want, code)
		}
	}
	if time.Since(killed) > 900*time.Millisecond {
		t.Logf("the requests right after the kill took %s: the failover may have begun meanwhile", time.Since(killed))
	}

	// The probe tenant had no bucket anywhere: its bucket appearing on the promoted replica is
	// a decision made in Redis, through the new master (a replica refuses writes).
	probeKey := bucketKey(f.prefix, "probe", "free")
	took, err := eventually(killed, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
		r := g.mustTenantRequest(t, "probe", tokens["probe"])
		n, err := newMaster.Exists(ctx(t), probeKey).Result()
		return err == nil && n == 1, fmt.Sprintf("%s; bucket %s on the replica: exists %d (%v)", r, probeKey, n, err)
	})
	if err != nil {
		t.Fatalf("30 s after the master was killed the gateway still does not decide in Redis: %v", err)
	}
	t.Logf("Sentinel failover: limiting through Redis resumed %s after the master got %s", took.Round(time.Millisecond), sig)
	if took > failoverResume {
		t.Errorf("limiting through Redis resumed %s after the master died, want within %s", took, failoverResume)
	}
	if role, err := newMaster.Do(ctx(t), "ROLE").Slice(); err != nil || len(role) == 0 || role[0] != "master" {
		t.Errorf("the replica's ROLE is %v (%v), want master after the failover", role, err)
	}

	// From now on every decision is made in Redis: a fresh tenant gets exactly its burst,
	// counted on the new master, and no limiter call fails any more.
	errorsAfter := g.mustMetric(t, "saasgate_limiter_redis_errors_total")
	wantBurstThenLimited(t, g, "after", tokens["after"], 5, 2)
	if pttl, err := newMaster.PTTL(ctx(t), bucketKey(f.prefix, "after", "free")).Result(); err != nil || pttl < 59*time.Minute {
		t.Errorf("after the failover the bucket of tenant after has PTTL %s (%v) on the new master, want about 1h", pttl, err)
	}
	time.Sleep(500 * time.Millisecond) // the traffic goes on meanwhile
	if v := g.mustMetric(t, "saasgate_limiter_redis_errors_total"); v != errorsAfter {
		t.Errorf("saasgate_limiter_redis_errors_total went from %v to %v after the failover, want no more errors", errorsAfter, v)
	}
	if v := g.mustMetric(t, "saasgate_limiter_breaker_open"); v != 0 {
		t.Errorf("after the failover saasgate_limiter_breaker_open = %v, want 0", v)
	}

	stopTraffic()
	t.Logf("traffic: %d requests, the slowest took %s", sent, worst.Round(time.Microsecond))
	for _, b := range bad[:min(len(bad), 5)] {
		t.Errorf("a request during the failover failed: %s", b)
	}
	if worst >= failoverLatency {
		t.Errorf("the slowest request during the failover took %s, want under %s", worst, failoverLatency)
	}
}

// startSentinelSet runs a master, its replica and three sentinels watching it as "m"
// (quorum 2, down after 1 s), waits until the sentinels know each other and the replica is in
// sync, and returns the master, the replica and the redis_url of the Sentinel form.
func startSentinelSet(t *testing.T) (master, replica *redisProc, url string) {
	t.Helper()
	ports := testenv.FreePorts(t, 5)
	masterPort, replicaPort := ports[0], ports[1]
	// No delay before the replica's first full sync (Redis waits 5 s for more replicas).
	master = startRedisProc(t, "master", masterPort, "--repl-diskless-sync-delay", "0")
	replica = startRedisProc(t, "replica", replicaPort, "--replicaof", "127.0.0.1", strconv.Itoa(masterPort))
	var sentinels []*redisProc
	for i, port := range ports[2:] {
		// Sentinel rewrites its config file, so each has a writable one of its own.
		conf := filepath.Join(t.TempDir(), "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor m 127.0.0.1 %d 2\nsentinel down-after-milliseconds m 1000\n"+
			"sentinel failover-timeout m 5000\n", masterPort)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		sentinels = append(sentinels, startRedisProc(t, fmt.Sprintf("sentinel %d", i+1), port, conf, "--sentinel"))
	}
	waitSentinelsReady(t, sentinels, replica)
	url = fmt.Sprintf("redis://%s?master_name=m&addr=%s&addr=%s", sentinels[0].addr(), sentinels[1].addr(), sentinels[2].addr())
	return master, replica, url
}

// waitSentinelsReady waits until every sentinel knows the replica and the two other
// sentinels, and the replica is in sync: before that, a kill would find no one to promote.
func waitSentinelsReady(t *testing.T, sentinels []*redisProc, replica *redisProc) {
	t.Helper()
	rc := replica.client(t)
	clients := make([]*redis.Client, len(sentinels))
	for i, s := range sentinels {
		clients[i] = s.client(t)
	}
	_, err := eventually(time.Now(), 20*time.Second, 100*time.Millisecond, func() (bool, string) {
		info, err := rc.Info(ctx(t), "replication").Result()
		if err != nil || !strings.Contains(info, "master_link_status:up") {
			return false, fmt.Sprintf("replica not in sync: %v %s", err, info)
		}
		for i, s := range sentinels {
			m, err := clients[i].Do(ctx(t), "SENTINEL", "MASTER", "m").Result()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", s.name, err)
			}
			state := fmt.Sprint(m)
			if !strings.Contains(state, "num-slaves:1") && !strings.Contains(state, "num-slaves 1") {
				return false, fmt.Sprintf("%s does not know the replica yet: %s", s.name, state)
			}
			if !strings.Contains(state, "num-other-sentinels:2") && !strings.Contains(state, "num-other-sentinels 2") {
				return false, fmt.Sprintf("%s does not know the other sentinels yet: %s", s.name, state)
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("the sentinels are not ready after 20 s: %v", err)
	}
}

// redisProc is a redis-server (or sentinel) process of one test, killed when the test ends.
type redisProc struct {
	name string
	port int
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startRedisProc runs redis-server with args (a config file first, when there is one) on
// 127.0.0.1:port and waits until it answers PING.
func startRedisProc(t *testing.T, name string, port int, args ...string) *redisProc {
	t.Helper()
	base := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--daemonize", "no"}
	if len(args) > 0 && strings.HasSuffix(args[0], ".conf") {
		base = append(args[:1:1], base...)
		args = args[1:]
	}
	p := &redisProc{name: name, port: port, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(lookRedisServer(t), append(base, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = proc.SysProcAttr()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s on port %d: %v", name, port, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s (port %d) output:\n%s", name, port, p.out)
		}
	})
	c := p.client(t)
	_, err := eventually(time.Now(), 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("%s on port %d exited at start:\n%s", name, port, p.out)
		default:
		}
		err := c.Ping(ctx(t)).Err()
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		t.Fatalf("%s on port %d does not answer PING after 10 s: %v\n%s", name, port, err, p.out)
	}
	return p
}

// kill sends SIGKILL (a crash: no goodbye to clients, no failover handshake; it also ends a
// stopped process) and waits.
func (p *redisProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *redisProc) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
