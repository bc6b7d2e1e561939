package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// The meter reads Redis's INFO: a script run between two reads must show, or the bench would
// print zeros for Redis without saying so.
func TestRedisMeterCountsScripts(t *testing.T) {
	m := redisMeter{testenv.RedisClient(t)}
	scripts, cpu := m.read()
	for range 3 {
		if err := m.rdb.Eval(context.Background(), "return 1", nil).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after, cpuAfter := m.read()
	if after-scripts < 3 || cpu <= 0 || cpuAfter < cpu {
		t.Fatalf("scripts %d → %d, cpu %.3f → %.3f; want 3 or more scripts more, cpu counted", scripts, after, cpu, cpuAfter)
	}
	if s, c := (redisMeter{}).read(); s != 0 || c != 0 {
		t.Fatalf("the zero meter read %d, %.3f", s, c)
	}
}

// settledMemory asks for a collection and reads the live heap from the runtime's statistics as
// Go's pprof handler writes them (served here by net/http/pprof itself), then the RSS; an
// answer without the statistics is an error, not a zero.
func TestSettledMemoryReadsTheLiveHeap(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/heap", pprof.Index)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	rss, heap, err := settledMemory(port, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if heap <= 0 || heap > float64(ms.HeapSys)/(1<<20) || rss < heap {
		t.Errorf("settledMemory = RSS %.1f MB, heap %.1f MB; the heap must be positive, within the heap's %.1f MB of address space, and under RSS",
			rss, heap, float64(ms.HeapSys)/(1<<20))
	}

	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "heap profile: 0\n") }))
	defer bare.Close()
	if _, _, err := settledMemory(bare.Listener.Addr().(*net.TCPAddr).Port, os.Getpid()); err == nil || !strings.Contains(err.Error(), "HeapAlloc") {
		t.Errorf("an answer without HeapAlloc: %v, want an error naming it", err)
	}
}
