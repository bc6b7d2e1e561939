package main

import (
	"fmt"
	"slices"
	"time"
)

// memory is the full gateway's memory in MB: RSS with no tenant (base), after caching the
// seeded tenants and a request to each (warm), and after the load; and the live heap with no
// tenant and after the load. Base and load are read alike (settledMemory); warm straight away.
type memory struct{ base, warm, load, baseHeap, loadHeap float64 }

func report(o options, results map[string][]result, serial map[string]result, mem memory) {
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
		printRatio(results, "full", "headers", "   (the modules' own work; target >= 0.95 with 100,000 cached, 10,000 in the load)")
	}
	if rs := results["full"]; len(rs) > 0 {
		var reqs, scripts int64
		for _, r := range rs {
			reqs, scripts = reqs+r.requests, scripts+r.scripts
		}
		fmt.Printf("limiter scripts in the full rounds: %d for %d requests, %.1f per 1,000   target <= 100 with 100,000 cached, 10,000 in the load\n",
			scripts, reqs, float64(scripts)/float64(max(reqs, 1))*1000)
	}
	added := serial["full"].p50 - serial["bare"].p50
	fmt.Printf("p50 at concurrency 1: bare %.0fµs, full %.0fµs, added %.0fµs   target <= 100µs (<= 50µs with 100,000 cached, 10,000 in the load)\n",
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
	fmt.Printf("full gateway RSS: %.0f MB with no tenant, %.0f MB after caching %d tenants, %.0f MB after the load   target <= 200 MB with 100,000\n",
		mem.base, mem.warm, o.tenants, mem.load)
	fmt.Printf("full gateway live heap: %.1f MB with no tenant, %.1f MB after the load\n", mem.baseHeap, mem.loadHeap)
	if o.tenants > 0 {
		fmt.Printf("full gateway memory per cached tenant beyond the base, after the load: %.2f KB of RSS, %.2f KB of live heap   target <= 1 KB with 100,000 (fewer share the fixed costs: tokens, leases)\n",
			(mem.load-mem.base)*1024/float64(o.tenants), (mem.loadHeap-mem.baseHeap)*1024/float64(o.tenants))
	}
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
