package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The upstream is checked with net/http's client: what it sends must be what a net/http
// backend would, and it must keep connections alive.
func TestUpstreamAnswersLikeAnHTTPServer(t *testing.T) {
	u, err := startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	client := &http.Client{Transport: &http.Transport{}}
	reused := 0
	for i := 0; i < 3; i++ {
		var body io.Reader
		if i == 1 {
			body = strings.NewReader("a body the upstream must read past") // sent with Content-Length
		}
		req, _ := http.NewRequest("POST", "http://"+u.Addr+"/x", body)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				if info.Reused {
					reused++
				}
			},
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != upstreamBody || resp.ContentLength != int64(len(upstreamBody)) {
			t.Fatalf("request %d: %d %q (length %d)", i, resp.StatusCode, got, resp.ContentLength)
		}
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		if d, err := http.ParseTime(resp.Header.Get("Date")); err != nil || time.Since(d) > time.Minute {
			t.Errorf("Date %q: %v", resp.Header.Get("Date"), err)
		}
	}
	if reused != 2 {
		t.Errorf("%d of 2 later requests reused the connection", reused)
	}
}

func TestUpstreamRefusesWhatItCannotRead(t *testing.T) {
	u, err := startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for name, req := range map[string]string{
		"chunked body":    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"not HTTP/1.1":    "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
		"bad header line": "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
		"bad length":      "POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n",
		"extra space":     "GET  / HTTP/1.1\r\n\r\n",
	} {
		c, err := net.Dial("tcp", u.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() { _, _ = io.WriteString(c, req) }()
		resp, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.HasPrefix(string(resp), "HTTP/1.1 400 ") {
			t.Errorf("%s: answered %q, %v; want a 400 and a close", name, resp, err)
		}
	}
}

// wireConn is checked against net/http's server: every framing of a response body must be
// read to its end, or the next response on the connection would be misread.
func TestWireConnReadsEveryFraming(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Write([]byte("twelve bytes"))
		case "/chunked":
			w.Write([]byte("first part "))
			w.(http.Flusher).Flush() // after a flush without a length, the body is chunked
			w.Write([]byte("second part"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusTeapot)
			w.Write([]byte("bye"))
		default:
			http.NotFound(w, r)
		}
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := &wireConn{addr: srv.Listener.Addr().String()}
	defer c.close()
	for _, step := range []struct {
		path   string
		status int
	}{
		{"/length", 200}, {"/chunked", 200}, {"/empty", 204}, {"/missing", 404}, {"/length", 200},
		{"/close", 418}, {"/length", 200},
	} {
		status, err := c.roundTrip(buildRequest(step.path, "t.localhost", "token"))
		if err != nil || status != step.status {
			t.Fatalf("%s: %d, %v; want %d", step.path, status, err, step.status)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (one, then one more after Connection: close)", n)
	}
}

func TestWireConnBodyToEndOfConnection(t *testing.T) {
	got, err := readOne("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this until the close")
	if err != nil || got.status != 200 || got.keepAlive {
		t.Fatalf("%+v, %v; want 200 and the connection closed", got, err)
	}
}

func TestWireConnRejectsMalformedResponses(t *testing.T) {
	for name, resp := range map[string]string{
		"not HTTP":               "SSH-2.0-OpenSSH\r\n\r\n",
		"short status":           "HTTP/1.1 20\r\n\r\n",
		"status not a number":    "HTTP/1.1 2x0 OK\r\n\r\n",
		"header without colon":   "HTTP/1.1 200 OK\r\nbroken\r\n\r\n",
		"two lengths":            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"length not a number":    "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
		"unknown coding":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"bad chunk size":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk without CRLF":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n",
		"body cut short":         "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"headers cut short":      "HTTP/1.1 200 OK\r\nContent-Len",
		"header line too long":   "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxLine) + "\r\n\r\n",
		"nothing":                "",
		"chunked body cut short": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	} {
		got, err := readOne(resp)
		if err == nil {
			t.Errorf("%s: read as %+v; want an error", name, got)
		}
	}
	if _, err := readOne("HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxLine) + "\r\n\r\n"); !errors.Is(err, errLineTooLong) {
		t.Errorf("too long a line: %v", err)
	}
}

type response struct {
	status    int
	keepAlive bool
}

func readOne(raw string) (response, error) {
	status, keepAlive, err := readResponse(bufio.NewReaderSize(strings.NewReader(raw), maxLine))
	return response{status, keepAlive}, err
}

// The load must not allocate per request, or its garbage collections would be charged to
// whichever gateway it drives at the time.
func TestWireRoundTripDoesNotAllocate(t *testing.T) {
	u, err := startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c := &wireConn{addr: u.Addr}
	defer c.close()
	req := buildRequest("/bench", "t.localhost", "token")
	if _, err := c.roundTrip(req); err != nil { // dials
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if status, err := c.roundTrip(req); err != nil || status != 200 {
			t.Fatalf("%d, %v", status, err)
		}
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per round trip (client and upstream); want 0", allocs)
	}
}
