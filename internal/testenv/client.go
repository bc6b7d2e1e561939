package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Client sends requests to one gateway address (Base, e.g. http://127.0.0.1:<port>) and reads
// every answer in full. Clients of several addresses may share one HC.
type Client struct {
	Base string
	HC   *http.Client
}

// NewClient returns a client of base with its own connections, closed when the test ends, and
// a timeout that turns a hung gateway into a failure rather than a hung test.
func NewClient(t testing.TB, base string) *Client {
	c := &Client{Base: base, HC: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(c.HC.CloseIdleConnections)
	return c
}

// Option changes a request before it is sent.
type Option func(*http.Request)

// WithHeader sets a request header.
func WithHeader(key, value string) Option {
	return func(r *http.Request) { r.Header.Set(key, value) }
}

// WithHost sets the request's Host, e.g. "<tenant>.localhost:<port>" while dialling 127.0.0.1.
func WithHost(host string) Option { return func(r *http.Request) { r.Host = host } }

// Response is one answer, read in full, with a JSON object body decoded into Body (nil for
// any other body).
type Response struct {
	Method, Path string
	Status       int
	Header       http.Header
	Raw          []byte
	Body         map[string]any
	Latency      time.Duration // from sending the request to the last byte of the body
}

func (r Response) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.Path, r.Status, bytes.TrimSpace(r.Raw))
}

// Str is the string at key of the body; "" when absent or not a string.
func (r Response) Str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// Obj is the object at key of the body; nil when absent or not an object.
func (r Response) Obj(key string) map[string]any {
	m, _ := r.Body[key].(map[string]any)
	return m
}

// Code is the `code` of a problem+json answer, "" for any other answer.
func (r Response) Code() string {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		return ""
	}
	return r.Str("code")
}

// Send performs one request. body is nil (no body), a string or []byte (sent as is), or a value
// marshalled as JSON; a token is sent as a bearer token. A JSON answer that is not an object is
// an error.
func (c *Client) Send(method, path, token string, body any, opts ...Option) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return Response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, o := range opts {
		o(req)
	}
	start := time.Now()
	resp, err := c.HC.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s (Host %s): %w", method, c.Base+path, req.Host, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s (Host %s): reading the body: %w", method, c.Base+path, req.Host, err)
	}
	out := Response{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Raw: raw, Latency: time.Since(start)}
	// NDJSON (the audit export) is lines of objects, read from Raw.
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") && !strings.Contains(ct, "ndjson") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			return out, fmt.Errorf("%s %s: %s body is not a JSON object: %v: %s", method, path, ct, err, raw)
		}
	}
	return out, nil
}

// Do is Send that fails the test on a transport error.
func (c *Client) Do(t testing.TB, method, path, token string, body any, opts ...Option) Response {
	t.Helper()
	r, err := c.Send(method, path, token, body, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// WaitReady polls /readyz until the control plane answers 200, for at most within.
func (c *Client) WaitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := c.Send("GET", "/readyz", "", nil)
		if err == nil && r.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the control plane is not ready after %s: %v %v", within, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
