package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Request is what an Upstream received: it is both the JSON body the upstream answers with and
// the record kept of each request.
type Request struct {
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawQuery string      `json:"query"`
	Host     string      `json:"host"`
	Header   http.Header `json:"headers"` // every header received, canonical keys
	Body     string      `json:"body"`
}

// Upstream is a loopback HTTP backend for gateway tests. It answers every request with 200 and
// the Request as JSON, and records the requests so tests can assert what reached it.
type Upstream struct {
	URL  string // http://127.0.0.1:<port>
	Addr string // 127.0.0.1:<port>, for reverse_proxy

	srv  *httptest.Server
	mu   sync.Mutex
	reqs []Request
}

// EchoUpstream starts an Upstream, closed when the test ends.
func EchoUpstream(t testing.TB) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	u.URL = u.srv.URL
	u.Addr = strings.TrimPrefix(u.srv.URL, "http://")
	return u
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Host:     r.Host,
		Header:   r.Header.Clone(),
		Body:     string(body),
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, rec)
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rec)
}

// Requests returns a copy of the requests received so far, oldest first.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

// Last returns the most recent request; the test fails if none arrived.
func (u *Upstream) Last(t testing.TB) Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatalf("testenv: the upstream at %s received no request", u.Addr)
	}
	return u.reqs[len(u.reqs)-1]
}

// Count returns how many requests have arrived.
func (u *Upstream) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// Reset forgets the requests received so far.
func (u *Upstream) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reqs = nil
}
