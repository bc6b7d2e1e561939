package caddymodule_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/saasgate/saasgate/caddymodule"
)

// A reload that changes a plan's rate, made while clients keep sending requests: no request
// fails, the runtime (tenant cache and limiter counters) and the verified-token cache carry
// over (the clients' token is not checked again), and the request after the reload is limited
// by the new rate.
func TestReload_UnderLoad_NoFailedRequestNewPlanApplied(t *testing.T) {
	cfg := gatewayConfig{
		redis:   true,
		options: "plan free {\n rate 100000/1h\n}",
		sites:   []gatewaySite{{"gw", pipeline}},
	}
	g := startGateway(t, cfg)
	f := g.NewTenant(t, "underload")
	mustStatus(t, g.get(t, "gw", "underload", f.UserAccess), http.StatusOK)
	before := activeApp(t).Service()
	tokens, _, checks := caddymodule.TokenCacheOf(activeApp(t))

	url := fmt.Sprintf("http://127.0.0.1:%d/echo", g.Ports["gw"])
	host := fmt.Sprintf("underload.localhost:%d", g.Ports["gw"])
	var served, failed, retried atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = host
				req.Header.Set("Authorization", "Bearer "+f.UserAccess)
				resp, err := hc.Do(req)
				if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
					// The old config's server closes its idle keep-alive connections; one that
					// closes as a request goes out on it fails that request at the transport
					// (the keep-alive race of RFC 9112 §9.3.1). A client may send an idempotent
					// request again, and this one does, once.
					retried.Add(1)
					req, _ = http.NewRequest("GET", url, nil)
					req.Host = host
					req.Header.Set("Authorization", "Bearer "+f.UserAccess)
					resp, err = hc.Do(req)
				}
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				served.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	cfg.options = "plan free {\n rate 200000/1h\n}"
	g.reload(t, cfg)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	n := served.Load()
	t.Logf("%d requests served across the reload, %d sent again after their keep-alive connection closed", n, retried.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed across the reload, the first: %v", failed.Load(), firstFailure.Load())
	}
	if n < 20 {
		t.Fatalf("only %d requests were served: no load to speak of", n)
	}
	after := activeApp(t).Service()
	if after == before {
		t.Fatal("the reload did not build a new service")
	}
	if after.Runtime != before.Runtime {
		t.Error("the reload replaced the runtime (tenant cache, limiter state)")
	}
	if known, _ := after.Runtime.Cache.Len(); known == 0 {
		t.Error("the reload emptied the tenant cache")
	}
	tokensAfter, cached, checksAfter := caddymodule.TokenCacheOf(activeApp(t))
	if tokensAfter != tokens || cached == 0 {
		t.Errorf("the reload replaced the token cache (now %d tokens)", cached)
	} else if checksAfter != checks {
		t.Errorf("the token cache checked %d tokens during the load, want none: the one token was verified before", checksAfter-checks)
	}

	r := g.get(t, "gw", "underload", f.UserAccess)
	mustStatus(t, r, http.StatusOK)
	wantHeader(t, "after the reload", r.Header, "X-RateLimit-Limit", "200000")
	// Counters reset by the reload would leave nearly the whole new burst.
	remaining, err := strconv.ParseInt(r.Header.Get("X-RateLimit-Remaining"), 10, 64)
	if err != nil || remaining > 200000-n/2 {
		t.Errorf("X-RateLimit-Remaining %q after %d requests: the limiter state was not kept", r.Header.Get("X-RateLimit-Remaining"), n)
	}
}
