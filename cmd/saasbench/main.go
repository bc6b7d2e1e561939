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
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/saasgate/saasgate/control/store"
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
	memProf  string
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
	flag.IntVar(&o.active, "active", 1000, "tenants the load is spread over, at most -tenants (the issue's measure with 10,000 in the load: -active 10000)")
	flag.DurationVar(&o.serial, "serial", 3*time.Second, "time at concurrency 1 per configuration (one request to each in turn)")
	flag.StringVar(&o.pipeline, "pipeline", "saas_tenant,saas_auth,saas_rate_limit", "the directives of the full configuration, to see what each costs")
	flag.BoolVar(&o.control, "control", true, "also drive a control gateway: bare plus the nine headers the contract adds, set by Caddy's own header directives, to tell the headers' cost from the modules'")
	flag.StringVar(&o.profile, "cpuprofile", "", "write CPU profiles of both gateways, taken during their second round, to this file with .bare and .full appended")
	flag.StringVar(&o.memProf, "memprofile", "", "write the full gateway's heap profile after the load to this file, and its memory statistics to this file with .txt appended")
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
	if o.active > o.tenants {
		return fmt.Errorf("-active %d is more than -tenants %d: the load can only use seeded tenants", o.active, o.tenants)
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
	base, baseHeap, err := baseRSS(o, dir, upstream.Addr, mongoURI, redisLines)
	if err != nil {
		return err
	}
	fmt.Printf("seeding %d tenants...\n", o.tenants)
	if err := seedTenants(db, o.tenants); err != nil {
		return err
	}
	reqs, err := requests(o.tenants)
	if err != nil {
		return err
	}

	targets, stop, err := startGateways(o, dir, upstream.Addr, mongoURI, redisLines)
	defer stop()
	if err != nil {
		return err
	}
	full := targets[1]

	started := time.Now()
	fmt.Printf("warming: one request per tenant (%d) through the full pipeline...\n", o.tenants)
	if errs := warm(full, reqs); errs > 0 {
		return fmt.Errorf("%d warm-up requests failed", errs)
	}
	rssAfterWarm := rssMB(full.pid)
	warmed := time.Now()
	fmt.Printf("  warmed in %v\n", warmed.Sub(started).Round(time.Millisecond))

	fmt.Printf("load: %d rounds × %v per configuration, %d connections, tokens of %d tenants, GOMAXPROCS %d\n",
		o.rounds, o.duration, o.conns, o.active, runtime.GOMAXPROCS(0))
	for _, t := range targets {
		// Warm-up, not counted: every tenant of the load once (each round starts from the
		// first tenant, so a short round would leave the last ones to the first counted round
		// with their first lease), then a round.
		if errs := warm(t, reqs[:o.active]); errs > 0 {
			return fmt.Errorf("%d warm-up requests to the %s gateway failed", errs, t.name)
		}
		drive(t, o.conns, time.Second, reqs[:o.active], meter)
	}
	// The warm-up leased a block for each of the tenants; the full gateway hands back those
	// of the tenants the load does not use one lease and one sweep later (about 10,000
	// pipelined scripts): a one-time cost that would otherwise fall on whichever round runs.
	if wait := time.Until(warmed.Add(o.settle)); wait > 0 {
		fmt.Printf("settling %v: the full gateway hands back the warm-up's leases\n", wait.Round(time.Second))
		time.Sleep(wait)
	}
	// A last pass over the load's tenants: their warm-up leases have ended by now, so this
	// pass takes the leases a gateway serving them steadily holds (a quiet tenant's lasts up
	// to a minute), and the rounds measure that rather than the one-time round of new leases
	// (about one script per tenant) that falls when thousands of first leases end together.
	for _, t := range targets {
		if errs := warm(t, reqs[:o.active]); errs > 0 {
			return fmt.Errorf("%d warm-up requests to the %s gateway failed", errs, t.name)
		}
	}
	results := rounds(o, targets, reqs[:o.active], meter)
	serial := driveSerial(targets, o.serial*time.Duration(len(targets)), reqs[:o.active])
	rssAfterLoad, heapAfterLoad, err := settledMemory(full.profilePort, full.pid)
	if err != nil {
		return fmt.Errorf("reading the full gateway's memory: %w", err)
	}
	if o.memProf != "" {
		if err := saveHeap(full.profilePort, o.memProf); err != nil {
			fmt.Printf("  (heap profile not saved: %v)\n", err)
		}
	}
	report(o, results, serial, memory{base: base, warm: rssAfterWarm, load: rssAfterLoad, baseHeap: baseHeap, loadHeap: heapAfterLoad})
	return nil
}
