package caddymodule_test

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/golang-jwt/jwt/v5"

	_ "github.com/saasgate/saasgate/caddymodule"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// These tests drive the control-plane API (`saas_api`) over real HTTP through an in-process
// Caddy, with the `saas` app on its own fresh database for every top-level test.

// testIssuer is the iss of the gateway's access tokens.
const testIssuer = "saasgate"

// ---------------------------------------------------------------------------------------------
// Assertions

func wantStatus(t testing.TB, r testenv.Response, status int) bool {
	t.Helper()
	if r.Status != status {
		t.Errorf("%v; want status %d", r, status)
		return false
	}
	return true
}

func mustStatus(t testing.TB, r testenv.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%v; want status %d", r, status)
	}
}

// wantProblem checks an RFC 9457 problem answer with saasgate's code.
func wantProblem(t testing.TB, r testenv.Response, status int, code string) bool {
	t.Helper()
	if r.Status != status || r.Str("code") != code {
		t.Errorf("%v; want %d %s", r, status, code)
		return false
	}
	ok := true
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s %s: Content-Type %q, want application/problem+json", r.Method, r.Path, ct)
		ok = false
	}
	for _, field := range []string{"type", "title", "detail", "code"} {
		if r.Str(field) == "" {
			t.Errorf("%s %s: problem field %q missing or empty: %s", r.Method, r.Path, field, r.Raw)
			ok = false
		}
	}
	if got, _ := r.Body["status"].(float64); int(got) != status {
		t.Errorf("%s %s: problem status field %v, want %d", r.Method, r.Path, r.Body["status"], status)
		ok = false
	}
	if r.Str("title") != "" && r.Str("title") != http.StatusText(status) {
		t.Errorf("%s %s: problem title %q, want %q", r.Method, r.Path, r.Str("title"), http.StatusText(status))
		ok = false
	}
	return ok
}

// wantUnauthenticated checks a 401 invalid_token that invites a bearer token.
func wantUnauthenticated(t testing.TB, r testenv.Response) {
	t.Helper()
	wantProblem(t, r, http.StatusUnauthorized, "invalid_token")
	if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Errorf("%s %s: WWW-Authenticate %q, want a Bearer challenge", r.Method, r.Path, h)
	}
}

func wantKeys(t testing.TB, r testenv.Response, keys ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(r.Body))
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, want) {
		t.Errorf("%s %s: body keys %v, want exactly %v: %s", r.Method, r.Path, got, want, r.Raw)
	}
}

// ---------------------------------------------------------------------------------------------
// Server and fixtures

// apiServer is a gateway serving saas_api (testenv.StartSaas), with the checks of what the
// API stored.
type apiServer struct{ *testenv.Saas }

// apiPlans is the catalog of startAPI's gateways.
const apiPlans = `plan free {
	name "Free"
	rate 60/1m
}
plan pro {
	name "Pro"
	rate 20/1s
	burst 50
	quota 100000/month
}`

// startAPI runs Caddy with the saas app on a fresh database, serving saas_api on
// http://127.0.0.1:<port> and http://*.localhost:<port> (for subdomain tenant hints). options
// are more lines of the saas option (a stripe block, more plans, ...).
func startAPI(t *testing.T, options ...string) *apiServer {
	t.Helper()
	return &apiServer{testenv.StartSaas(t, testenv.SaasOptions{Options: apiPlans + "\n" + strings.Join(options, "\n")})}
}

// store connects to the server's database, to check what the API stored.
func (s *apiServer) store(t *testing.T) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Connect(ctx, s.Opts.MongoURI, s.Opts.Database, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = db.Close(ctx)
	})
	return db
}

// tenantIDs lists the tenants an admin sees.
func (s *apiServer) tenantIDs(t testing.TB, token string) []string {
	t.Helper()
	r := s.Do(t, "GET", "/tenants", token, nil)
	mustStatus(t, r, http.StatusOK)
	var ids []string
	list, ok := r.Body["tenants"].([]any)
	if !ok {
		t.Fatalf("%v: no tenants array", r)
	}
	for _, item := range list {
		m, _ := item.(map[string]any)
		id, _ := m["tenant_id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// users returns user id → role of a tenant, as its owner (or an admin) sees it.
func (s *apiServer) users(t testing.TB, token, tenantID string) map[string]string {
	t.Helper()
	r := s.Do(t, "GET", "/tenants/"+tenantID+"/users", token, nil)
	mustStatus(t, r, http.StatusOK)
	list, ok := r.Body["users"].([]any)
	if !ok {
		t.Fatalf("%v: no users array", r)
	}
	out := map[string]string{}
	for _, item := range list {
		m, _ := item.(map[string]any)
		id, _ := m["user_id"].(string)
		role, _ := m["role"].(string)
		out[id] = role
		if _, leaked := m["password_hash"]; leaked {
			t.Errorf("%v: user listing shows password_hash", r)
		}
	}
	return out
}

// parseAccess verifies an access token with the configured secret, as any HS256 verifier would.
func parseAccess(t testing.TB, raw string) jwt.MapClaims {
	t.Helper()
	return parseWith(t, raw, []byte(testenv.JWTSecret))
}

// parseWith verifies an access token with secret (surrounding white space ignored, as in a
// secret file).
func parseWith(t testing.TB, raw string, secret []byte) jwt.MapClaims {
	t.Helper()
	secret = bytes.TrimSpace(secret)
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(testIssuer), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("access token does not verify with the configured secret: %v", err)
	}
	return claims
}

var uniq atomic.Int64

// unique returns a short string never returned before in this process.
func unique() string { return strconv.FormatInt(uniq.Add(1), 10) }
