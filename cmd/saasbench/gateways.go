package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/saasgate/saasgate/internal/proc"
)

// The three gateways the bench compares: bare (reverse_proxy only), full (the saas pipeline)
// and headers (bare plus the nine headers the contract adds, set by Caddy's own directives).

// benchGlobal is the global options block of every bench gateway; admin is "admin off" or, to
// take profiles, "admin 127.0.0.1:<port>".
func benchGlobal(admin, more string) string {
	return "{\n\t" + admin + "\n\tpersist_config off\n\tauto_https off\n" + more + "}\n"
}

func bareCaddyfile(admin string, port int, upstream string) string {
	return benchGlobal(admin, "") + fmt.Sprintf(`http://*.localhost:%d {
	reverse_proxy %s
}
`, port, upstream)
}

// fullCaddyfile runs the directives of pipeline (comma-separated) before reverse_proxy, with
// every tenant on plan bench, whose limits the load never reaches. redisLines is "" (the
// in-process limiter) or the saas option's redis_url and redis_prefix lines.
func fullCaddyfile(admin string, port int, upstream, mongoURI, redisLines, pipeline string) string {
	saas := fmt.Sprintf(`	saas {
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
`, mongoURI, redisLines, secret)
	return benchGlobal(admin, saas) + fmt.Sprintf(`http://*.localhost:%d {
	%s
	reverse_proxy %s
}
`, port, strings.ReplaceAll(pipeline, ",", "\n\t"), upstream)
}

// headersCaddyfile is the control: bare plus the contract's nine headers with values of the
// same length, four to the upstream (header_up, inside reverse_proxy) and five to the client
// (one header handler), and none of the modules' work.
func headersCaddyfile(admin string, port int, upstream string) string {
	return benchGlobal(admin, "") + fmt.Sprintf(`http://*.localhost:%d {
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
`, port, upstream)
}

// startGateways starts bare, full and (with o.control) headers, in that order, and waits until
// each answers. stop stops those that started, also after an error.
func startGateways(o options, dir, upstream, mongoURI, redisLines string) (targets []target, stop func(), err error) {
	var started []*gateway
	stop = func() {
		for _, g := range started {
			g.stop()
		}
	}
	ports, err := proc.FreePorts(6)
	if err != nil {
		return nil, stop, err
	}
	configs := []struct {
		name              string
		port, profilePort int
		caddyfile         func(admin string) string
	}{
		{"bare", ports[0], ports[3], func(admin string) string { return bareCaddyfile(admin, ports[0], upstream) }},
		{"full", ports[1], ports[4], func(admin string) string {
			return fullCaddyfile(admin, ports[1], upstream, mongoURI, redisLines, o.pipeline)
		}},
		{"headers", ports[2], ports[5], func(admin string) string { return headersCaddyfile(admin, ports[2], upstream) }},
	}
	if !o.control {
		configs = configs[:2]
	}
	for _, c := range configs {
		admin := "admin off"
		if o.profile != "" || c.name == "full" { // the full gateway's memory is read through it
			admin = fmt.Sprintf("admin 127.0.0.1:%d", c.profilePort)
		}
		g, err := startGateway(o.bin, filepath.Join(dir, c.name), c.caddyfile(admin))
		if err != nil {
			return nil, stop, err
		}
		started = append(started, g)
		targets = append(targets, target{name: c.name, port: c.port, pid: g.Pid(), profilePort: c.profilePort, exited: g.Done()})
	}
	for _, t := range targets {
		if err := waitUp(t); err != nil {
			return nil, stop, err
		}
	}
	return targets, stop, nil
}

// gateway is one bench gateway: the binary as a child process, its output in dir/log.
type gateway struct {
	*proc.Gateway
	log *os.File
}

func startGateway(bin, dir, caddyfile string) (*gateway, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return nil, err
	}
	g, err := proc.Start(bin, dir, caddyfile, log)
	if err != nil {
		log.Close()
		return nil, err
	}
	return &gateway{Gateway: g, log: log}, nil
}

func (g *gateway) stop() {
	_ = g.Stop()
	_ = g.log.Close()
}

// waitUp waits until the gateway of t answers HTTP on its port.
func waitUp(t target) error {
	if err := proc.WaitHTTP("http://"+t.addr()+"/", 20*time.Second, t.exited); err != nil {
		return fmt.Errorf("the %s gateway: %w", t.name, err)
	}
	return nil
}

// saveProfile fetches a CPU profile (path) and a heap profile (path.heap) from the gateway's
// admin endpoint.
func saveProfile(port int, d time.Duration, path string) error {
	if err := fetch(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap", port), path+".heap"); err != nil {
		return err
	}
	return fetch(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, max(int(d.Seconds()), 1)), path)
}

// saveHeap fetches the gateway's heap profile, taken after a collection (path), and the same
// as text with the runtime's memory statistics (path.txt).
func saveHeap(port int, path string) error {
	if err := fetch(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", port), path); err != nil {
		return err
	}
	return fetch(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?debug=1", port), path+".txt")
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

// baseRSS is the full gateway's memory with no tenant in its store (settledMemory): started
// on the empty database, sent a few requests (for a tenant it does not know), and stopped. Its
// memory after the load, less this, is what the tenants cost.
func baseRSS(o options, dir, upstream, mongoURI, redisLines string) (rss, heap float64, err error) {
	ports, err := proc.FreePorts(2)
	if err != nil {
		return 0, 0, err
	}
	admin := fmt.Sprintf("admin 127.0.0.1:%d", ports[1])
	g, err := startGateway(o.bin, filepath.Join(dir, "base"), fullCaddyfile(admin, ports[0], upstream, mongoURI, redisLines, o.pipeline))
	if err != nil {
		return 0, 0, err
	}
	defer g.stop()
	t := target{name: "base", port: ports[0], pid: g.Pid(), exited: g.Done()}
	if err := waitUp(t); err != nil {
		return 0, 0, err
	}
	for range 100 {
		resp, err := http.Get("http://" + t.addr() + "/")
		if err != nil {
			return 0, 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return settledMemory(ports[1], t.pid)
}
