// Command saasbench measures what the gateway costs: in one run it starts a real upstream,
// bin/saasgate as a bare reverse_proxy, and bin/saasgate with the full pipeline (saas_tenant +
// saas_auth + saas_rate_limit against real Redis + reverse_proxy), drives them in alternating
// rounds with the same closed-loop load, and prints req/s, p50, p99, CPU per 1,000 requests
// and the full/bare ratio. It exits non-zero only when it could not run: the figures are for
// people, not assertions.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/token"
)

type options struct {
	bin      string
	redisURL string
	rounds   int
	duration time.Duration
	conns    int
	tenants  int
	active   int
	serial   time.Duration
	settle   time.Duration
	profile  string
	pipeline string
	control  bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/saasgate", "the gateway binary")
	flag.StringVar(&o.redisURL, "redis", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis for the full pipeline (none: the in-process limiter)")
	flag.IntVar(&o.rounds, "rounds", 33, "rounds per configuration (alternating)")
	flag.DurationVar(&o.duration, "duration", 600*time.Millisecond, "length of one round")
	flag.DurationVar(&o.settle, "settle", 21*time.Second, "time from the end of the warm-up to the first round: a lease TTL and a sweep period, after which the warm-up's leases are back in Redis")
	flag.IntVar(&o.conns, "conns", 16, "concurrent keep-alive connections of the closed-loop load")
	flag.IntVar(&o.tenants, "tenants", 10000, "tenants created and cached before the load")
	flag.IntVar(&o.active, "active", 1000, "tenants the load is spread over")
	flag.DurationVar(&o.serial, "serial", 3*time.Second, "time at concurrency 1 per configuration (one request to each in turn)")
	flag.StringVar(&o.pipeline, "pipeline", "saas_tenant,saas_auth,saas_rate_limit", "the directives of the full configuration, to see what each costs")
	flag.BoolVar(&o.control, "control", true, "also drive a control gateway: bare plus the nine headers the contract adds, set by Caddy's own header directives, to tell the headers' cost from the modules'")
	flag.StringVar(&o.profile, "cpuprofile", "", "write CPU profiles of both gateways, taken during their second round, to this file with .bare and .full appended")
	flag.Parse()
	log.SetFlags(0)
	if err := run(o); err != nil {
		log.Fatalf("saasbench: %v", err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

const secret = "bench-secret-bench-secret-bench-secret!!"

func run(o options) error {
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", o.bin, err)
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	o.bin = bin
	redisLines := ""
	var meter redisMeter
	prefix := "bench:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	if o.redisURL != "none" {
		rdb, err := store.OpenRedis(store.RedisOptions{URL: o.redisURL})
		if err != nil {
			return err
		}
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			return fmt.Errorf("redis at %s does not answer (start one: redis-server --daemonize yes): %w", o.redisURL, err)
		}
		defer cleanRedis(rdb, prefix)
		meter = redisMeter{rdb}
		redisLines = "redis_url " + o.redisURL + "\n\t\tredis_prefix " + prefix
	}
	dir, err := os.MkdirTemp("", "saasbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	upstream, err := startUpstream()
	if err != nil {
		return err
	}
	defer upstream.Close()

	db, mongoURI, stopDB, err := startDatabase(dir)
	if err != nil {
		return err
	}
	defer stopDB()
	fmt.Printf("seeding %d tenants...\n", o.tenants)
	if err := seedTenants(db, o.tenants); err != nil {
		return err
	}
	keys, err := token.NewKeys([]byte(secret), "saasgate", 24*time.Hour)
	if err != nil {
		return err
	}
	// Every tenant's request is built once: the load sends bytes, it does not build requests.
	reqs := make([][]byte, o.tenants)
	for i := range reqs {
		tok, err := keys.Issue(identity.Principal{UserID: "usr_bench" + strconv.Itoa(i), TenantID: tenantID(i), Role: identity.RoleUser})
		if err != nil {
			return err
		}
		reqs[i] = buildRequest("/bench", tenantID(i)+".localhost", tok)
	}

	barePort, fullPort, controlPort := freePort(), freePort(), freePort()
	admin, bareAdmin, controlAdmin := "admin off", "admin off", "admin off"
	adminPorts := map[string]int{}
	if o.profile != "" {
		adminPorts["bare"], adminPorts["full"], adminPorts["headers"] = freePort(), freePort(), freePort()
		bareAdmin = fmt.Sprintf("admin 127.0.0.1:%d", adminPorts["bare"])
		admin = fmt.Sprintf("admin 127.0.0.1:%d", adminPorts["full"])
		controlAdmin = fmt.Sprintf("admin 127.0.0.1:%d", adminPorts["headers"])
	}
	bare, err := startGateway(o.bin, filepath.Join(dir, "bare"), fmt.Sprintf(`{
	%s
	persist_config off
	auto_https off
}
http://*.localhost:%d {
	reverse_proxy %s
}
`, bareAdmin, barePort, upstream.Addr))
	if err != nil {
		return err
	}
	defer bare.stop()
	full, err := startGateway(o.bin, filepath.Join(dir, "full"), fmt.Sprintf(`{
	%s
	persist_config off
	auto_https off
	saas {
		mongo_uri %s
		database bench
		%s
		jwt_secret %s
		default_plan bench
		plan bench {
			rate 1000000/1s
			quota 1000000000000/month
		}
	}
}
http://*.localhost:%d {
	%s
	reverse_proxy %s
}
`, admin, mongoURI, redisLines, secret, fullPort, strings.ReplaceAll(o.pipeline, ",", "\n\t"), upstream.Addr))
	if err != nil {
		return err
	}
	defer full.stop()

	bareTarget := target{name: "bare", port: barePort, pid: bare.pid()}
	fullTarget := target{name: "full", port: fullPort, pid: full.pid()}
	targets := []target{bareTarget, fullTarget}
	if o.control {
		// The control: bare plus the contract's nine headers with values of the same length,
		// four to the upstream (header_up, inside reverse_proxy) and five to the client (one
		// header handler), and none of the modules' work.
		control, err := startGateway(o.bin, filepath.Join(dir, "headers"), fmt.Sprintf(`{
	%s
	persist_config off
	auto_https off
}
http://*.localhost:%d {
	header {
		RateLimit-Policy `+"`"+`"bench";q=1000000;w=1`+"`"+`
		RateLimit `+"`"+`"bench";r=999999;t=1`+"`"+`
		X-RateLimit-Limit 1000000
		X-RateLimit-Remaining 999999
		X-RateLimit-Reset 1
	}
	reverse_proxy %s {
		header_up X-Tenant-Id bench-123
		header_up X-Tenant-Plan bench
		header_up X-User-Id usr_bench123
		header_up X-User-Role user
	}
}
`, controlAdmin, controlPort, upstream.Addr))
		if err != nil {
			return err
		}
		defer control.stop()
		targets = append(targets, target{name: "headers", port: controlPort, pid: control.pid()})
	}
	for _, t := range targets {
		if err := waitUp(t); err != nil {
			return err
		}
	}

	started := time.Now()
	fmt.Printf("warming: one request per tenant (%d) through the full pipeline...\n", o.tenants)
	if errs := warm(fullTarget, reqs); errs > 0 {
		return fmt.Errorf("%d warm-up requests failed", errs)
	}
	rssAfterWarm := rssMB(full.pid())
	warmed := time.Now()
	fmt.Printf("  warmed in %v\n", warmed.Sub(started).Round(time.Millisecond))

	fmt.Printf("load: %d rounds × %v per configuration, %d connections, tokens of %d tenants, GOMAXPROCS %d\n",
		o.rounds, o.duration, o.conns, o.active, runtime.GOMAXPROCS(0))
	results := map[string][]result{}
	for _, t := range targets {
		drive(t, o.conns, time.Second, reqs[:o.active], meter) // warm-up round, not counted
	}
	// The warm-up leased a block for each of the tenants; the full gateway hands back those
	// of the tenants the load does not use one lease and one sweep later (about 10,000
	// pipelined scripts): a one-time cost that would otherwise fall on whichever round runs.
	if wait := time.Until(warmed.Add(o.settle)); wait > 0 {
		fmt.Printf("settling %v: the full gateway hands back the warm-up's leases\n", wait.Round(time.Second))
		time.Sleep(wait)
	}
	for r := 0; r < o.rounds; r++ {
		// Change which goes first every round: the second of a pair runs on a machine the
		// first has just warmed (and left garbage on), a bias of several percent.
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			var profiled chan error
			if o.profile != "" && r == 1 {
				profiled = make(chan error, 1)
				go func() { profiled <- saveProfile(adminPorts[t.name], o.duration-time.Second, o.profile+"."+t.name) }()
			}
			res := drive(t, o.conns, o.duration, reqs[:o.active], meter)
			if profiled != nil {
				if err := <-profiled; err != nil {
					fmt.Printf("  (profile not saved: %v)\n", err)
				}
			}
			results[t.name] = append(results[t.name], res)
			fmt.Printf("  round %d %-7s %8.0f req/s  p50 %6.0fµs  p99 %6.0fµs  cpu %.3fs/1k  load %.3fs/1k  redis %.3fs/1k (%.1f scripts/1k)  errors %d\n",
				r+1, t.name, res.rps, us(res.p50), us(res.p99), res.cpuPer1k, res.loadPer1k, res.redisPer1k, res.scriptsPer1k, res.errors)
		}
	}
	serial := driveSerial(targets, o.serial*time.Duration(len(targets)), reqs[:o.active])
	rssAfterLoad := rssMB(full.pid())
	report(o, results, serial, rssAfterWarm, rssAfterLoad)
	return nil
}

type target struct {
	name string
	port int
	pid  int
}

func (t target) addr() string { return "127.0.0.1:" + strconv.Itoa(t.port) }

type result struct {
	rps, cpuPer1k float64 // cpuPer1k: the gateway's CPU seconds per 1,000 requests
	loadPer1k     float64 // this process's (the load's and the upstream's) CPU seconds per 1,000
	redisPer1k    float64 // the Redis server's CPU seconds per 1,000
	scriptsPer1k  float64 // limiter scripts Redis ran per 1,000
	p50, p99      time.Duration
	errors        int64
}

// drive runs a closed loop: conns workers, each on its own keep-alive connection, sending its
// next request when the last one answered, for d.
func drive(t target, conns int, d time.Duration, reqs [][]byte, redis redisMeter) result {
	cpuBefore, loadBefore := cpuSeconds(t.pid), cpuSeconds(os.Getpid())
	callsBefore, redisBefore := redis.read()
	var (
		wg     sync.WaitGroup
		errs   atomic.Int64
		mu     sync.Mutex
		all    []time.Duration
		stop   atomic.Bool
		starts = time.Now()
	)
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &wireConn{addr: t.addr()}
			defer c.close()
			lat := make([]time.Duration, 0, 1<<16)
			for i := w; !stop.Load(); i += conns {
				begin := time.Now()
				status, err := c.roundTrip(reqs[i%len(reqs)])
				if err == nil {
					lat = append(lat, time.Since(begin))
				}
				if status != http.StatusOK {
					errs.Add(1)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(starts)
	cpu, load := cpuSeconds(t.pid)-cpuBefore, cpuSeconds(os.Getpid())-loadBefore
	calls, redisCPU := redis.read()
	res := result{rps: float64(len(all)) / elapsed.Seconds(), errors: errs.Load()}
	if n := float64(len(all)); n > 0 {
		res.cpuPer1k = cpu / n * 1000
		res.loadPer1k = load / n * 1000
		res.redisPer1k = (redisCPU - redisBefore) / n * 1000
		res.scriptsPer1k = float64(calls-callsBefore) / n * 1000
	}
	res.p50, res.p99 = percentile(all, 50), percentile(all, 99)
	return res
}

// driveSerial measures concurrency 1: one request at a time, to each gateway in turn (the
// order rotating), so that every gateway sees the same moments of the machine: a slow spell
// cannot fall on one configuration only. Each gateway keeps its own keep-alive connection.
func driveSerial(targets []target, d time.Duration, reqs [][]byte) map[string]result {
	conns := make([]*wireConn, len(targets))
	lat := make([][]time.Duration, len(targets))
	cpuBefore := make([]float64, len(targets))
	for i, t := range targets {
		conns[i] = &wireConn{addr: t.addr()}
		defer conns[i].close()
		cpuBefore[i] = cpuSeconds(t.pid)
	}
	deadline := time.Now().Add(d)
	for n := 0; time.Now().Before(deadline); n++ {
		for k := range targets {
			i := (n + k) % len(targets)
			begin := time.Now()
			if _, err := conns[i].roundTrip(reqs[n%len(reqs)]); err == nil {
				lat[i] = append(lat[i], time.Since(begin))
			}
		}
	}
	out := make(map[string]result, len(targets))
	for i, t := range targets {
		r := result{p50: percentile(lat[i], 50), p99: percentile(lat[i], 99)}
		if len(lat[i]) > 0 {
			r.cpuPer1k = (cpuSeconds(t.pid) - cpuBefore[i]) / float64(len(lat[i])) * 1000
		}
		out[t.name] = r
	}
	return out
}

// saveProfile fetches a CPU profile (path) and a heap profile (path.heap) from the gateway's
// admin endpoint.
func saveProfile(port int, d time.Duration, path string) error {
	if err := fetch(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", port), path+".heap"); err != nil {
		return err
	}
	return fetch(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, max(int(d.Seconds()), 1)), path)
}

func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin answered %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func report(o options, results map[string][]result, serial map[string]result, rssWarm, rssLoad float64) {
	fmt.Println()
	fmt.Println("configuration   req/s (median)   p50       p99       CPU s/1k req   load+upstream CPU s/1k req")
	for _, name := range []string{"bare", "headers", "full"} {
		rs := results[name]
		if len(rs) == 0 {
			continue
		}
		fmt.Printf("%-15s %9.0f        %6.0fµs  %6.0fµs  %.3f          %.3f\n", name, median(rs, func(r result) float64 { return r.rps }),
			median(rs, func(r result) float64 { return us(r.p50) }), median(rs, func(r result) float64 { return us(r.p99) }),
			median(rs, func(r result) float64 { return r.cpuPer1k }), median(rs, func(r result) float64 { return r.loadPer1k }))
	}
	fmt.Println()
	printRatio(results, "full", "bare", "   target >= 0.90")
	printRatioOf(results, "bare", "full", "CPU", func(bare, full result) float64 { return bare.cpuPer1k / full.cpuPer1k },
		"   (the gateways' CPU per request: the throughput ratio without the load's share)")
	if len(results["headers"]) > 0 {
		printRatio(results, "headers", "bare", "   (the contract's headers alone)")
		printRatio(results, "full", "headers", "   (the modules' own work)")
	}
	added := serial["full"].p50 - serial["bare"].p50
	fmt.Printf("p50 at concurrency 1: bare %.0fµs, full %.0fµs, added %.0fµs   target <= 100µs\n",
		us(serial["bare"].p50), us(serial["full"].p50), us(added))
	if h, ok := serial["headers"]; ok {
		fmt.Printf("p50 at concurrency 1: headers %.0fµs, added %.0fµs   (the contract's headers alone)\n",
			us(h.p50), us(h.p50-serial["bare"].p50))
	}
	fmt.Printf("gateway CPU per request at concurrency 1: bare %.0fµs, full %.0fµs", serial["bare"].cpuPer1k*1000, serial["full"].cpuPer1k*1000)
	if h, ok := serial["headers"]; ok {
		fmt.Printf(", headers %.0fµs", h.cpuPer1k*1000)
	}
	fmt.Println()
	fmt.Printf("full gateway RSS: %.0f MB after caching %d tenants, %.0f MB after the load   target <= 150 MB\n", rssWarm, o.tenants, rssLoad)
	var errs int64
	for _, rs := range results {
		for _, r := range rs {
			errs += r.errors
		}
	}
	if errs > 0 {
		fmt.Printf("WARNING: %d requests failed or were refused during the load\n", errs)
	}
}

// printRatio prints the throughput of a over b: the median of the rounds' ratios, and their
// spread.
func printRatio(results map[string][]result, a, b, note string) {
	printRatioOf(results, a, b, "throughput", func(x, y result) float64 { return x.rps / y.rps }, note)
}

// printRatioOf prints f over the rounds' pairs of a and b: the median and the spread.
func printRatioOf(results map[string][]result, a, b, what string, f func(a, b result) float64, note string) {
	var ratios []float64
	for i := range results[b] {
		ratios = append(ratios, f(results[a][i], results[b][i]))
	}
	slices.Sort(ratios)
	fmt.Printf("%-21s median %.3f (rounds: min %.3f, max %.3f)%s\n", a+"/"+b+" "+what+":",
		ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1], note)
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func tenantID(i int) string { return "bench-" + strconv.Itoa(i) }

func startDatabase(dir string) (*store.DB, string, func(), error) {
	e, err := store.StartEmbedded(filepath.Join(dir, "db"), nil)
	if err != nil {
		return nil, "", nil, err
	}
	db, err := store.Connect(context.Background(), e.URI(), "bench", 10*time.Second)
	if err != nil {
		e.Stop()
		return nil, "", nil, err
	}
	return db, e.URI(), func() { _ = db.Close(context.Background()); e.Stop() }, nil
}

// seedTenants writes tenant documents directly: the gateway only reads them, and creating
// 10,000 tenants through signup would spend minutes hashing passwords.
func seedTenants(db *store.DB, n int) error {
	now := time.Now().UTC()
	const batch = 500
	for start := 0; start < n; start += batch {
		docs := make([]any, 0, batch)
		for i := start; i < min(start+batch, n); i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: tenantID(i)}, {Key: "name", Value: tenantID(i)},
				{Key: "status", Value: "active"}, {Key: "plan", Value: "bench"}, {Key: "created_at", Value: now}, {Key: "updated_at", Value: now}})
		}
		if _, err := db.C(store.CollTenants).InsertMany(context.Background(), docs); err != nil {
			return err
		}
	}
	return nil
}

// warm sends one request per tenant over 8 connections and counts those not answered 200.
func warm(t target, reqs [][]byte) int {
	var wg sync.WaitGroup
	var errs atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &wireConn{addr: t.addr()}
			defer c.close()
			for i := w; i < len(reqs); i += 8 {
				if status, _ := c.roundTrip(reqs[i]); status != http.StatusOK {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(errs.Load())
}

type gateway struct{ cmd *exec.Cmd }

func (g *gateway) pid() int { return g.cmd.Process.Pid }

func (g *gateway) stop() {
	_ = g.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
	}
}

func startGateway(bin, dir, caddyfile string) (*gateway, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", config, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &gateway{cmd: cmd}, nil
}

func waitUp(t target) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", t.port))
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the %s gateway did not start listening on %d", t.name, t.port)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cpuSeconds reads a process's user+system CPU time from /proc.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// rssMB reads a process's resident set size from /proc.
func rssMB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// redisMeter reads what the Redis server has done so far: the limiter scripts it ran (EVAL and
// EVALSHA calls) and its CPU seconds. The zero meter (no Redis) reads zeros.
type redisMeter struct{ rdb redis.UniversalClient }

func (m redisMeter) read() (scripts int64, cpu float64) {
	if m.rdb == nil {
		return 0, 0
	}
	info, err := m.rdb.Info(context.Background(), "commandstats", "cpu").Result()
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(info, "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		switch name {
		case "cmdstat_evalsha", "cmdstat_eval":
			calls, _, _ := strings.Cut(strings.TrimPrefix(value, "calls="), ",")
			n, _ := strconv.ParseInt(calls, 10, 64)
			scripts += n
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(value, 64)
			cpu += f
		}
	}
	return scripts, cpu
}

func cleanRedis(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}
