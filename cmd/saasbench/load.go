package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The closed-loop load: every worker keeps one keep-alive connection and sends its next
// request when the last one answered.

// target is a running gateway the load drives.
type target struct {
	name        string
	port        int
	pid         int
	profilePort int             // its admin endpoint's, with -cpuprofile or -memprofile
	exited      <-chan struct{} // closed when its process has exited
}

func (t target) addr() string { return "127.0.0.1:" + strconv.Itoa(t.port) }

type result struct {
	rps, cpuPer1k float64 // cpuPer1k: the gateway's CPU seconds per 1,000 requests
	loadPer1k     float64 // this process's (the load's and the upstream's) CPU seconds per 1,000
	redisPer1k    float64 // the Redis server's CPU seconds per 1,000
	scriptsPer1k  float64 // limiter scripts Redis ran per 1,000
	requests      int64   // requests answered
	scripts       int64   // limiter scripts Redis ran meanwhile
	p50, p99      time.Duration
	errors        int64
}

// rounds drives every target o.rounds times for o.duration each, alternating, and returns
// each target's results by name.
func rounds(o options, targets []target, reqs [][]byte, meter redisMeter) map[string][]result {
	results := map[string][]result{}
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
				go func() { profiled <- saveProfile(t.profilePort, o.duration-time.Second, o.profile+"."+t.name) }()
			}
			res := drive(t, o.conns, o.duration, reqs, meter)
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
	return results
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
	res := result{rps: float64(len(all)) / elapsed.Seconds(), errors: errs.Load(), requests: int64(len(all)), scripts: calls - callsBefore}
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

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}
