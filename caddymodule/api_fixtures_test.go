package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

const (
	testJWTSecret = "api-test-signing-secret-0123456789abcdef"
	testIssuer    = "saasgate"
	adminEmail    = "root@platform.test"
	adminPassword = "platform-admin-password"
	goodPassword  = "correct-horse-42"
)

// ---------------------------------------------------------------------------------------------
// HTTP client

type apiClient struct {
	base string
	hc   *http.Client
}

func newClient(t testing.TB, base string) *apiClient {
	c := &apiClient{base: base, hc: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

type reqOption func(*http.Request)

func withHeader(key, value string) reqOption {
	return func(r *http.Request) { r.Header.Set(key, value) }
}

func withHost(host string) reqOption { return func(r *http.Request) { r.Host = host } }

// apiResponse is an answer with its JSON object body decoded (Body is nil for other bodies).
type apiResponse struct {
	Method, Path string
	Status       int
	Header       http.Header
	Raw          []byte
	Body         map[string]any
}

func (r apiResponse) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.Path, r.Status, bytes.TrimSpace(r.Raw))
}

func (r apiResponse) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

func (r apiResponse) obj(key string) map[string]any {
	m, _ := r.Body[key].(map[string]any)
	return m
}

// send performs one request. body is nil (no body), a string or []byte (sent as is), or a
// value marshalled as JSON.
func (c *apiClient) send(method, path, token string, body any, opts ...reqOption) (apiResponse, error) {
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
			return apiResponse{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return apiResponse{}, err
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
	resp, err := c.hc.Do(req)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	out := apiResponse{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			return out, fmt.Errorf("%s %s: %s body is not a JSON object: %v: %s", method, path, ct, err, raw)
		}
	}
	return out, nil
}

func (c *apiClient) do(t testing.TB, method, path, token string, body any, opts ...reqOption) apiResponse {
	t.Helper()
	r, err := c.send(method, path, token, body, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitReady polls /readyz until the control plane answers 200.
func (c *apiClient) waitReady(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := c.send("GET", "/readyz", "", nil)
		if err == nil && r.Status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the control plane is not ready after %s: %v %v", within, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------------------------
// Assertions

func wantStatus(t testing.TB, r apiResponse, status int) bool {
	t.Helper()
	if r.Status != status {
		t.Errorf("%v; want status %d", r, status)
		return false
	}
	return true
}

func mustStatus(t testing.TB, r apiResponse, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%v; want status %d", r, status)
	}
}

// wantProblem checks an RFC 9457 problem answer with saasgate's code.
func wantProblem(t testing.TB, r apiResponse, status int, code string) bool {
	t.Helper()
	if r.Status != status || r.str("code") != code {
		t.Errorf("%v; want %d %s", r, status, code)
		return false
	}
	ok := true
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("%s %s: Content-Type %q, want application/problem+json", r.Method, r.Path, ct)
		ok = false
	}
	for _, field := range []string{"type", "title", "detail", "code"} {
		if r.str(field) == "" {
			t.Errorf("%s %s: problem field %q missing or empty: %s", r.Method, r.Path, field, r.Raw)
			ok = false
		}
	}
	if got, _ := r.Body["status"].(float64); int(got) != status {
		t.Errorf("%s %s: problem status field %v, want %d", r.Method, r.Path, r.Body["status"], status)
		ok = false
	}
	if r.str("title") != "" && r.str("title") != http.StatusText(status) {
		t.Errorf("%s %s: problem title %q, want %q", r.Method, r.Path, r.str("title"), http.StatusText(status))
		ok = false
	}
	return ok
}

// wantUnauthenticated checks a 401 invalid_token that invites a bearer token.
func wantUnauthenticated(t testing.TB, r apiResponse) {
	t.Helper()
	wantProblem(t, r, http.StatusUnauthorized, "invalid_token")
	if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
		t.Errorf("%s %s: WWW-Authenticate %q, want a Bearer challenge", r.Method, r.Path, h)
	}
}

func wantKeys(t testing.TB, r apiResponse, keys ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(r.Body))
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, want) {
		t.Errorf("%s %s: body keys %v, want exactly %v: %s", r.Method, r.Path, got, want, r.Raw)
	}
}

// ---------------------------------------------------------------------------------------------
// Server and fixtures

type apiServer struct {
	*apiClient
	port     int
	mongoURI string
	database string
}

// startAPI runs Caddy with the saas app on a fresh database, serving saas_api on
// http://127.0.0.1:<port> and http://*.localhost:<port> (for subdomain tenant hints). options
// are more lines of the saas option (a stripe block, more plans, ...).
func startAPI(t *testing.T, options ...string) *apiServer {
	t.Helper()
	s := &apiServer{mongoURI: testenv.Mongo(t), database: testenv.Database(t), port: testenv.FreePort(t)}
	s.apiClient = newClient(t, fmt.Sprintf("http://127.0.0.1:%d", s.port))
	// Registered before StartCaddy, so it runs after Caddy has stopped.
	t.Cleanup(func() { s.dropDatabase(t) })
	caddyfile := fmt.Sprintf(`{
%s	saas {
		mongo_uri %q
		database %s
		jwt_secret %s
		admin_email %s
		admin_password %s
		plan free {
			name "Free"
			rate 60/1m
		}
		plan pro {
			name "Pro"
			rate 20/1s
			burst 50
			quota 100000/month
		}%s
	}
}

http://127.0.0.1:%d, http://*.localhost:%d {
	saas_api
}
`, testenv.CaddyGlobal(), s.mongoURI, s.database, testJWTSecret, adminEmail, adminPassword, indentOptions(options), s.port, s.port)
	testenv.StartCaddy(t, caddyfile)
	s.waitReady(t, 10*time.Second)
	return s
}

// indentOptions puts lines of the saas option at its depth in startAPI's Caddyfile, each
// preceded by a newline ("" for none), so that the Caddyfile stays formatted.
func indentOptions(options []string) string {
	var b strings.Builder
	for _, o := range options {
		for _, line := range strings.Split(o, "\n") {
			b.WriteString("\n\t\t" + line)
		}
	}
	return b.String()
}

func (s *apiServer) dropDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Connect(ctx, s.mongoURI, s.database, 10*time.Second)
	if err != nil {
		t.Errorf("dropping the test database: %v", err)
		return
	}
	defer db.Close(ctx)
	if err := db.Database.Drop(ctx); err != nil {
		t.Errorf("dropping database %s: %v", s.database, err)
	}
}

// store connects to the server's database, to check what the API stored.
func (s *apiServer) store(t *testing.T) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Connect(ctx, s.mongoURI, s.database, 10*time.Second)
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

func signupBody(email, password, tenant, invite string) map[string]string {
	b := map[string]string{"email": email, "password": password, "tenant": tenant}
	if invite != "" {
		b["invite_token"] = invite
	}
	return b
}

func (s *apiServer) signup(t testing.TB, email, password, tenant, invite string) apiResponse {
	t.Helper()
	return s.do(t, "POST", "/auth/signup", "", signupBody(email, password, tenant, invite))
}

// mustSignup signs up with goodPassword and returns the new user's id.
func (s *apiServer) mustSignup(t testing.TB, email, tenant, invite string) string {
	t.Helper()
	r := s.signup(t, email, goodPassword, tenant, invite)
	mustStatus(t, r, http.StatusCreated)
	return r.str("user_id")
}

func (s *apiServer) login(t testing.TB, email, password, tenant string, opts ...reqOption) apiResponse {
	t.Helper()
	body := map[string]string{"email": email, "password": password}
	if tenant != "" {
		body["tenant"] = tenant
	}
	return s.do(t, "POST", "/auth/login", "", body, opts...)
}

type tokenPair struct{ Access, Refresh string }

func pairOf(t testing.TB, r apiResponse) tokenPair {
	t.Helper()
	mustStatus(t, r, http.StatusOK)
	p := tokenPair{Access: r.str("access_token"), Refresh: r.str("refresh_token")}
	if p.Access == "" || p.Refresh == "" {
		t.Fatalf("%v: no token pair", r)
	}
	return p
}

func (s *apiServer) mustLogin(t testing.TB, email, tenant string) tokenPair {
	t.Helper()
	return pairOf(t, s.login(t, email, goodPassword, tenant))
}

func (s *apiServer) adminToken(t testing.TB) string {
	t.Helper()
	return pairOf(t, s.login(t, adminEmail, adminPassword, "")).Access
}

// mustInvite creates an invitation and returns its token.
func (s *apiServer) mustInvite(t testing.TB, token, tenantID, email, role string) string {
	t.Helper()
	r := s.do(t, "POST", "/tenants/"+tenantID+"/invitations", token, map[string]string{"email": email, "role": role})
	mustStatus(t, r, http.StatusCreated)
	inv := r.obj("invitation")
	tok, _ := inv["token"].(string)
	if tok == "" {
		t.Fatalf("%v: no invitation token", r)
	}
	return tok
}

// tenantFixture is a tenant with an owner and a user, both logged in.
type tenantFixture struct {
	ID                                             string
	OwnerEmail, OwnerID, OwnerAccess, OwnerRefresh string
	UserEmail, UserID, UserAccess, UserRefresh     string
}

func (s *apiServer) newTenant(t testing.TB, id string) *tenantFixture {
	t.Helper()
	f := &tenantFixture{ID: id, OwnerEmail: "owner@" + id + ".test", UserEmail: "user@" + id + ".test"}
	f.OwnerID = s.mustSignup(t, f.OwnerEmail, id, "")
	owner := s.mustLogin(t, f.OwnerEmail, id)
	f.OwnerAccess, f.OwnerRefresh = owner.Access, owner.Refresh
	inv := s.mustInvite(t, f.OwnerAccess, id, f.UserEmail, "user")
	f.UserID = s.mustSignup(t, f.UserEmail, id, inv)
	user := s.mustLogin(t, f.UserEmail, id)
	f.UserAccess, f.UserRefresh = user.Access, user.Refresh
	return f
}

// tenantIDs lists the tenants an admin sees.
func (s *apiServer) tenantIDs(t testing.TB, token string) []string {
	t.Helper()
	r := s.do(t, "GET", "/tenants", token, nil)
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
	r := s.do(t, "GET", "/tenants/"+tenantID+"/users", token, nil)
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
	return parseWith(t, raw, []byte(testJWTSecret))
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
