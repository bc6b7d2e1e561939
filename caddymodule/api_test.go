package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/bson"

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

// ---------------------------------------------------------------------------------------------
// 1. Signup

func TestSignup_NewTenantIsCreatedWithTheCallerAsOwner(t *testing.T) {
	s := startAPI(t)

	r := s.signup(t, "Founder@Globex.test", goodPassword, "Globex Corporation", "")
	mustStatus(t, r, http.StatusCreated)
	// The contract's body, plus the role the account got (an allowed extra).
	if _, ok := r.Body["role"]; ok {
		wantKeys(t, r, "message", "user_id", "tenant_id", "role")
	} else {
		wantKeys(t, r, "message", "user_id", "tenant_id")
	}
	if r.str("message") != "User registered successfully." {
		t.Errorf("message %q", r.str("message"))
	}
	if r.str("tenant_id") != "globex-corporation" {
		t.Errorf("tenant_id %q, want the slug globex-corporation", r.str("tenant_id"))
	}
	if role, ok := r.Body["role"]; ok && role != "owner" {
		t.Errorf("role %v, want owner", role)
	}
	userID := r.str("user_id")
	if userID == "" {
		t.Fatal("no user_id")
	}

	pair := s.mustLogin(t, "founder@globex.test", "globex-corporation")
	me := s.do(t, "GET", "/me", pair.Access, nil)
	mustStatus(t, me, http.StatusOK)
	if me.str("user_id") != userID || me.str("role") != "owner" || me.str("tenant_id") != "globex-corporation" ||
		me.str("email") != "founder@globex.test" {
		t.Errorf("GET /me = %s", me.Raw)
	}
	tr := s.do(t, "GET", "/tenants/globex-corporation", pair.Access, nil)
	mustStatus(t, tr, http.StatusOK)
	if tr.str("name") != "Globex Corporation" || tr.str("status") != "active" || tr.str("plan") != "free" {
		t.Errorf("new tenant = %s, want name \"Globex Corporation\", status active, plan free", tr.Raw)
	}
}

func TestSignup_ExistingTenantNeedsAnInvitationForTheCallersEmail(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "initech")
	other := s.newTenant(t, "umbrella")

	wantProblem(t, s.signup(t, "peter@initech.test", goodPassword, "initech", ""), http.StatusForbidden, "invitation_required")
	wantProblem(t, s.signup(t, "peter@initech.test", goodPassword, "initech", "inv_unknown"), http.StatusForbidden, "invalid_invitation")
	wantProblem(t, s.signup(t, "peter@initech.test", goodPassword, "initech", strings.Repeat("x", 200)), http.StatusForbidden, "invalid_invitation")

	inv := s.mustInvite(t, f.OwnerAccess, "initech", "peter@initech.test", "")
	wantProblem(t, s.signup(t, "milton@initech.test", goodPassword, "initech", inv), http.StatusForbidden, "invalid_invitation")
	// An invitation of one tenant does not open another.
	wantProblem(t, s.signup(t, "peter@initech.test", goodPassword, "umbrella", inv), http.StatusForbidden, "invalid_invitation")
	if got := s.users(t, other.OwnerAccess, "umbrella"); len(got) != 2 {
		t.Errorf("umbrella has %d users after a foreign invitation was tried, want 2", len(got))
	}

	// The refused attempts did not spend the invitation.
	r := s.signup(t, "Peter@Initech.test", goodPassword, "initech", inv)
	mustStatus(t, r, http.StatusCreated)
	if r.str("role") != "user" || r.str("tenant_id") != "initech" {
		t.Errorf("invited signup = %s, want role user in initech", r.Raw)
	}
	claims := parseAccess(t, s.mustLogin(t, "peter@initech.test", "initech").Access)
	if claims["role"] != "user" || claims["tid"] != "initech" || claims["sub"] != r.str("user_id") {
		t.Errorf("invited user's token claims %v", claims)
	}

	// An owner invitation makes an owner.
	ownerInv := s.mustInvite(t, f.OwnerAccess, "initech", "bill@initech.test", "owner")
	r = s.signup(t, "bill@initech.test", goodPassword, "initech", ownerInv)
	mustStatus(t, r, http.StatusCreated)
	if r.str("role") != "owner" {
		t.Errorf("signup through an owner invitation gave role %q", r.str("role"))
	}
	if got := s.users(t, f.OwnerAccess, "initech"); len(got) != 4 || got[r.str("user_id")] != "owner" {
		t.Errorf("initech users %v, want 4 with %s an owner", got, r.str("user_id"))
	}
	// Owners may only invite users or owners.
	wantProblem(t, s.do(t, "POST", "/tenants/initech/invitations", f.OwnerAccess,
		map[string]string{"email": "x@initech.test", "role": "admin"}), http.StatusUnprocessableEntity, "invalid_role")
}

func TestSignup_InvitationIsSingleUse(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "hooli")
	db := s.store(t)

	inv := s.mustInvite(t, f.OwnerAccess, "hooli", "gavin@hooli.test", "user")
	mustStatus(t, s.signup(t, "gavin@hooli.test", goodPassword, "hooli", inv), http.StatusCreated)
	// The same email comes back with the same invitation: it is spent, and no second account
	// appears.
	wantProblem(t, s.signup(t, "gavin@hooli.test", "another-password", "hooli", inv), http.StatusForbidden, "invalid_invitation")
	if got := s.users(t, f.OwnerAccess, "hooli"); len(got) != 3 {
		t.Errorf("hooli has %d users, want 3", len(got))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := db.C("t_hooli_invitations").CountDocuments(ctx, bson.D{{Key: "email", Value: "gavin@hooli.test"}, {Key: "used_at", Value: nil}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d unused invitations for gavin@hooli.test remain after the signup, want 0", n)
	}

	// Two signups racing on one invitation: exactly one account.
	for round := range 3 {
		email := fmt.Sprintf("racer%d@hooli.test", round)
		inv := s.mustInvite(t, f.OwnerAccess, "hooli", email, "user")
		var wg sync.WaitGroup
		results := make([]apiResponse, 2)
		errs := make([]error, 2)
		for i := range results {
			wg.Go(func() {
				results[i], errs[i] = s.send("POST", "/auth/signup", "", signupBody(email, goodPassword, "hooli", inv))
			})
		}
		wg.Wait()
		created := 0
		for i, r := range results {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			switch {
			case r.Status == http.StatusCreated:
				created++
			case r.Status == http.StatusForbidden && r.str("code") == "invalid_invitation",
				r.Status == http.StatusConflict && r.str("code") == "email_taken":
			default:
				t.Errorf("racing signup: %v", r)
			}
		}
		if created != 1 {
			t.Errorf("round %d: %d racing signups on one invitation succeeded, want 1", round, created)
		}
	}
}

func TestSignup_EmailAlreadyInTheTenantIsAConflict(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "pied-piper")

	// Inviting an email that already has an account is refused by the invite call itself.
	for _, email := range []string{f.OwnerEmail, f.UserEmail, strings.ToUpper(f.UserEmail)} {
		wantProblem(t, s.do(t, "POST", "/tenants/pied-piper/invitations", f.OwnerAccess,
			map[string]string{"email": email, "role": "user"}), http.StatusConflict, "email_taken")
	}
	// Two invitations for one new email: the second signup meets the existing account.
	first := s.mustInvite(t, f.OwnerAccess, "pied-piper", "jared@pied-piper.test", "user")
	second := s.mustInvite(t, f.OwnerAccess, "pied-piper", "jared@pied-piper.test", "owner")
	mustStatus(t, s.signup(t, "jared@pied-piper.test", goodPassword, "pied-piper", first), http.StatusCreated)
	wantProblem(t, s.signup(t, "Jared@Pied-Piper.test", goodPassword, "pied-piper", second), http.StatusConflict, "email_taken")
	users := s.users(t, f.OwnerAccess, "pied-piper")
	if len(users) != 3 {
		t.Errorf("pied-piper users %v, want 3", users)
	}
	// The owner's own email in its own tenant, without an invitation, is told to get one.
	wantProblem(t, s.signup(t, f.OwnerEmail, goodPassword, "pied-piper", ""), http.StatusForbidden, "invitation_required")
}

func TestSignup_BadInvitationAnswersAlikeForTakenAndFreeEmails(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "vandelay")
	foreign := s.mustInvite(t, f.OwnerAccess, "vandelay", "art@vandelay.test", "user")
	invites := []struct{ name, token string }{
		{"Unknown", "inv_unknown"}, {"AnotherEmails", foreign}, {"Oversized", strings.Repeat("x", 200)}}
	emails := []struct{ name, email string }{{"Taken", f.UserEmail}, {"Free", "free@vandelay.test"}}
	for _, inv := range invites {
		for _, e := range emails {
			t.Run(inv.name+"Invitation/"+e.name+"Email", func(t *testing.T) {
				wantProblem(t, s.signup(t, e.email, goodPassword, "vandelay", inv.token), http.StatusForbidden, "invalid_invitation")
			})
		}
	}
}

func TestSignup_PasswordLengthIsEightToOneHundredTwentyEightCharacters(t *testing.T) {
	s := startAPI(t)
	tests := []struct {
		name     string
		password string
		want     int
	}{
		{"SevenCharacters", "1234567", http.StatusUnprocessableEntity},
		{"SevenMultiByteCharacters", "ääääääää"[:14], http.StatusUnprocessableEntity},
		{"EightCharacters", "12345678", http.StatusCreated},
		{"EightMultiByteCharacters", "pässwörd", http.StatusCreated},
		{"OneHundredTwentyEight", strings.Repeat("p", 128), http.StatusCreated},
		{"OneHundredTwentyNine", strings.Repeat("p", 129), http.StatusUnprocessableEntity},
		{"Empty", "", http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := "pw-" + strings.ToLower(tt.name)
			r := s.signup(t, "someone@pw.test", tt.password, tenant, "")
			if tt.want == http.StatusCreated {
				wantStatus(t, r, http.StatusCreated)
				pairOf(t, s.login(t, "someone@pw.test", tt.password, tenant))
				return
			}
			wantProblem(t, r, tt.want, "weak_password")
			wantProblem(t, s.do(t, "GET", "/tenants/"+tenant, s.adminToken(t), nil), http.StatusNotFound, "tenant_not_found")
		})
	}
}

func TestSignup_InvalidOrReservedTenantIsRefused(t *testing.T) {
	s := startAPI(t)
	tests := []struct{ tenant, code string }{
		{"api", "tenant_reserved"},
		{"www", "tenant_reserved"},
		{"admin", "tenant_reserved"},
		{"system", "tenant_reserved"},
		{"mail", "tenant_reserved"},
		{"API", "tenant_reserved"},
		{"a", "invalid_tenant"},
		{"ab", "invalid_tenant"},
		{"", "invalid_tenant"},
		{"---", "invalid_tenant"},
		{"日本語", "invalid_tenant"},
		{strings.Repeat("a", 64), "invalid_tenant"},
		{strings.Repeat("abcdefgh-", 8), "invalid_tenant"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.tenant), func(t *testing.T) {
			wantProblem(t, s.signup(t, "x@bad-names.test", goodPassword, tt.tenant, ""), http.StatusUnprocessableEntity, tt.code)
		})
	}
	if ids := s.tenantIDs(t, s.adminToken(t)); len(ids) != 0 {
		t.Errorf("tenants after refused signups: %v, want none", ids)
	}
	// The longest valid id is fine.
	long := strings.Repeat("z", 63)
	r := s.signup(t, "x@long.test", goodPassword, long, "")
	if wantStatus(t, r, http.StatusCreated) && r.str("tenant_id") != long {
		t.Errorf("tenant_id %q, want %q", r.str("tenant_id"), long)
	}
}

// A signup's tenant is a display name whose slug is the id, like POST /tenants' tenant_name:
// leading and trailing separators go, inner runs become one dash. So "-bad-" is not refused:
// it names the tenant "bad".
func TestSignup_TenantIsTheSlugOfTheGivenName(t *testing.T) {
	s := startAPI(t)
	for _, tt := range []struct{ name, id string }{
		{"-bad-", "bad"},
		{"  Wayne   Enterprises!! ", "wayne-enterprises"},
		{"Stark_Industries", "stark-industries"},
	} {
		r := s.signup(t, "x@slug.test", goodPassword, tt.name, "")
		if wantStatus(t, r, http.StatusCreated) && r.str("tenant_id") != tt.id {
			t.Errorf("signup with tenant %q: tenant_id %q, want %q", tt.name, r.str("tenant_id"), tt.id)
		}
	}
	// Another spelling of an existing tenant's name reaches that tenant: joining needs an invitation.
	wantProblem(t, s.signup(t, "y@slug.test", goodPassword, "Wayne Enterprises", ""), http.StatusForbidden, "invitation_required")
}

func TestSignup_MalformedBodyIsABadRequestAndStoresNothing(t *testing.T) {
	s := startAPI(t)
	valid := func(name string) string {
		return fmt.Sprintf(`"email":"%s@bad.test","password":"password-123","tenant":"%s-co"`, name, name)
	}
	tests := []struct {
		name string // also the email local part and the tenant prefix the body would create
		body string
	}{
		{"unknown", `{` + valid("unknown") + `,"is_admin":true}`},
		{"wrongtype", `{` + valid("wrongtype") + `,"invite_token":5}`},
		{"operator", `{"email":"operator@bad.test","password":{"$ne":""},"tenant":"operator-co"}`},
		{"operatoremail", `{"email":{"$gt":""},"password":"password-123","tenant":"operatoremail-co"}`},
		{"truncated", `{` + valid("truncated")},
		{"syntax", `{` + valid("syntax") + `,}`},
		{"twoobjects", `{` + valid("twoobjects") + `}{"email":"x@y.test"}`},
		{"trailing", `{` + valid("trailing") + `} garbage`},
		{"array", `[{` + valid("array") + `}]`},
		{"toolarge", `{` + valid("toolarge") + `,"invite_token":"` + strings.Repeat("a", 1<<20) + `"}`},
		{"empty", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, s.do(t, "POST", "/auth/signup", "", tt.body), http.StatusBadRequest, "bad_request")
		})
	}

	admin := s.adminToken(t)
	if ids := s.tenantIDs(t, admin); len(ids) != 0 {
		t.Errorf("tenants after malformed signups: %v, want none", ids)
	}
	for _, tt := range tests {
		wantProblem(t, s.do(t, "GET", "/tenants/"+tt.name+"-co", admin, nil), http.StatusNotFound, "tenant_not_found")
		wantProblem(t, s.login(t, tt.name+"@bad.test", "password-123", ""), http.StatusUnauthorized, "invalid_credentials")
	}
}

func TestSignup_BodyOfExactlyOneMebibyteIsAccepted(t *testing.T) {
	s := startAPI(t)
	obj := `{"email":"big@big.test","password":"password-123","tenant":"big-co"}`
	pad := (1 << 20) - len(obj)
	mustStatus(t, s.do(t, "POST", "/auth/signup", "", strings.Repeat(" ", pad)+obj), http.StatusCreated)
	wantProblem(t, s.do(t, "POST", "/auth/signup", "", strings.Repeat(" ", pad+1)+
		`{"email":"big@big2.test","password":"password-123","tenant":"big2-co"}`), http.StatusBadRequest, "bad_request")
}

func TestAPI_MalformedBodiesOnEveryBodyRouteAreBadRequests(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "soylent")
	admin := s.adminToken(t)
	tests := []struct {
		method, path, token, body string
	}{
		{"POST", "/auth/login", "", `{"email":"owner@soylent.test","password":{"$ne":""}}`},
		{"POST", "/auth/login", "", `{"email":"owner@soylent.test","password":"x","mfa":1}`},
		{"POST", "/auth/refresh", "", `{"refresh_token":{"$ne":""}}`},
		{"POST", "/auth/logout", f.UserAccess, `{"refresh_token":7}`},
		{"POST", "/tenants", admin, `{"tenant_name":"Evil","admin_email":"e@evil.test","plan":"pro"}`},
		{"PATCH", "/tenants/soylent", admin, `{"status":["suspended"]}`},
		{"POST", "/tenants/soylent/invitations", f.OwnerAccess, `{"email":"a@soylent.test","role":"user"}{}`},
		{"PATCH", "/tenants/soylent/users/" + f.UserID, f.OwnerAccess, `{"role":{"$set":"admin"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			wantProblem(t, s.do(t, tt.method, tt.path, tt.token, tt.body), http.StatusBadRequest, "bad_request")
		})
	}
	if got := s.users(t, f.OwnerAccess, "soylent"); got[f.UserID] != "user" || len(got) != 2 {
		t.Errorf("soylent users after malformed requests: %v", got)
	}
	if ids := s.tenantIDs(t, admin); !slices.Equal(ids, []string{"soylent"}) {
		t.Errorf("tenants %v, want [soylent]", ids)
	}
	tr := s.do(t, "GET", "/tenants/soylent", admin, nil)
	if tr.str("status") != "active" {
		t.Errorf("soylent after a malformed PATCH: %s", tr.Raw)
	}
}

// ---------------------------------------------------------------------------------------------
// 2. Login

func TestLogin_ReturnsABearerPairWhoseAccessTokenVerifies(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "tyrell")

	before := time.Now().Add(-2 * time.Second)
	r := s.login(t, f.UserEmail, goodPassword, "tyrell")
	mustStatus(t, r, http.StatusOK)
	wantKeys(t, r, "access_token", "token_type", "expires_in", "refresh_token")
	if r.str("token_type") != "bearer" {
		t.Errorf("token_type %q, want bearer", r.str("token_type"))
	}
	if r.Body["expires_in"] != float64(3600) {
		t.Errorf("expires_in %v, want 3600", r.Body["expires_in"])
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a token answer, want no-store", cc)
	}
	if !strings.HasPrefix(r.str("refresh_token"), "rt_") {
		t.Errorf("refresh_token %q", r.str("refresh_token"))
	}

	claims := parseAccess(t, r.str("access_token"))
	for _, c := range []string{"iss", "sub", "tid", "role", "typ", "iat", "exp", "jti"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("access token lacks claim %q: %v", c, claims)
		}
	}
	want := map[string]any{"iss": testIssuer, "sub": f.UserID, "tid": "tyrell", "role": "user", "typ": "access"}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if iat == nil || exp == nil || iat.Before(before) || iat.After(time.Now().Add(2*time.Second)) || exp.Sub(iat.Time) != time.Hour {
		t.Errorf("iat %v exp %v: want iat now and exp one hour later", iat, exp)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("empty jti")
	}
	other := parseAccess(t, s.mustLogin(t, f.UserEmail, "tyrell").Access)
	if other["jti"] == claims["jti"] {
		t.Errorf("two logins share jti %v", claims["jti"])
	}

	me := s.do(t, "GET", "/me", r.str("access_token"), nil)
	if wantStatus(t, me, http.StatusOK) && (me.str("user_id") != f.UserID || me.str("role") != "user") {
		t.Errorf("GET /me = %s", me.Raw)
	}
}

func TestLogin_WrongPasswordAndUnknownAccountAnswerIdentically(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "cyberdyne")

	reference := s.login(t, f.UserEmail, "wrong-password", "cyberdyne")
	if !wantProblem(t, reference, http.StatusUnauthorized, "invalid_credentials") {
		t.FailNow()
	}
	for _, tt := range []struct{ name, email, password, tenant string }{
		{"UnknownEmailInTenant", "nobody@cyberdyne.test", "wrong-password", "cyberdyne"},
		{"UnknownEmailNoTenant", "nobody@nowhere.test", "wrong-password", ""},
		{"UnknownTenant", f.UserEmail, goodPassword, "no-such-tenant"},
		{"InvalidTenantHint", f.UserEmail, goodPassword, "-x-"},
		{"OtherTenantsAccount", f.OwnerEmail, goodPassword, "other-tenant"},
		{"MalformedEmail", "not-an-email", goodPassword, "cyberdyne"},
		{"WrongPasswordOfOwner", f.OwnerEmail, "wrong-password", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.login(t, tt.email, tt.password, tt.tenant)
			if r.Status != reference.Status || !bytes.Equal(r.Raw, reference.Raw) ||
				r.Header.Get("Content-Type") != reference.Header.Get("Content-Type") {
				t.Errorf("answer differs from a wrong password's:\n got %v\nwant %v", r, reference)
			}
		})
	}
}

func TestLogin_RepeatedFailuresLockTheAccount(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "wonka")
	// The same email in another tenant is another account, with its own counter.
	s.mustSignup(t, f.UserEmail, "wonka-two", "")

	for i := 1; i < 5; i++ {
		wantProblem(t, s.login(t, f.UserEmail, "wrong-password", "wonka"), http.StatusUnauthorized, "invalid_credentials")
	}
	// The fifth failure reaches LockAfter and already answers with the lock; every further
	// attempt, even with the right password, meets it.
	for i, password := range []string{"wrong-password", "wrong-password", goodPassword} {
		r := s.login(t, f.UserEmail, password, "wonka")
		if !wantProblem(t, r, http.StatusTooManyRequests, "login_locked") {
			t.Errorf("attempt %d after four failures was not locked", i+5)
		}
		ra := r.Header.Get("Retry-After")
		if n, err := strconv.Atoi(ra); err != nil || n <= 0 {
			t.Errorf("Retry-After %q, want a positive integer of seconds", ra)
		}
	}
	// The lock is per account.
	pairOf(t, s.login(t, f.OwnerEmail, goodPassword, "wonka"))
	pairOf(t, s.login(t, f.UserEmail, goodPassword, "wonka-two"))
}

func TestLogin_TenantComesFromBodyHeaderSubdomainOrDirectory(t *testing.T) {
	s := startAPI(t)
	alpha := s.newTenant(t, "alpha")
	s.mustSignup(t, "solo@solo.test", "solo", "")

	// One tenant: the directory finds it.
	if c := parseAccess(t, s.mustLogin(t, "solo@solo.test", "").Access); c["tid"] != "solo" {
		t.Errorf("directory login tid %v, want solo", c["tid"])
	}
	// The same email in two tenants needs a tenant.
	bravoOwner := s.mustSignup(t, alpha.UserEmail, "bravo", "")
	wantProblem(t, s.login(t, alpha.UserEmail, goodPassword, ""), http.StatusBadRequest, "tenant_required")

	tests := []struct {
		name, tenant string
		opts         []reqOption
		wantTID      string
		wantSub      string
	}{
		{"Body", "alpha", nil, "alpha", alpha.UserID},
		{"BodyOther", "bravo", nil, "bravo", bravoOwner},
		{"Header", "", []reqOption{withHeader("X-Tenant-ID", "bravo")}, "bravo", bravoOwner},
		{"HeaderUpperCase", "", []reqOption{withHeader("X-Tenant-ID", " ALPHA ")}, "alpha", alpha.UserID},
		{"Subdomain", "", []reqOption{withHost(fmt.Sprintf("bravo.localhost:%d", s.port))}, "bravo", bravoOwner},
		{"BodyWinsOverHeader", "alpha", []reqOption{withHeader("X-Tenant-ID", "bravo")}, "alpha", alpha.UserID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseAccess(t, pairOf(t, s.login(t, alpha.UserEmail, goodPassword, tt.tenant, tt.opts...)).Access)
			if c["tid"] != tt.wantTID || c["sub"] != tt.wantSub {
				t.Errorf("tid %v sub %v, want %s %s", c["tid"], c["sub"], tt.wantTID, tt.wantSub)
			}
		})
	}
	// A reserved subdomain (the API's own host) names no tenant.
	wantProblem(t, s.login(t, alpha.UserEmail, goodPassword, "", withHost(fmt.Sprintf("api.localhost:%d", s.port))),
		http.StatusBadRequest, "tenant_required")
}

func TestLogin_WithoutTenantAnotherAccountOfTheEmailStandsNotInTheWay(t *testing.T) {
	s := startAPI(t)
	victim := s.newTenant(t, "victim-co")
	// Someone opens a tenant of their own with the victim's email and another password.
	mustStatus(t, s.signup(t, victim.UserEmail, "attacker-password", "attacker-co", ""), http.StatusCreated)

	c := parseAccess(t, s.mustLogin(t, victim.UserEmail, "").Access)
	if c["tid"] != "victim-co" || c["sub"] != victim.UserID {
		t.Errorf("victim's login without a tenant: tid %v sub %v, want victim-co %s", c["tid"], c["sub"], victim.UserID)
	}
	wantProblem(t, s.login(t, victim.UserEmail, "wrong-password", ""), http.StatusUnauthorized, "invalid_credentials")
}

// ---------------------------------------------------------------------------------------------
// 3. Refresh and logout

func TestRefresh_RotatesAndReuseRevokesTheFamily(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "oscorp")
	other := s.mustLogin(t, f.UserEmail, "oscorp") // a second session of the same user

	r := s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh})
	mustStatus(t, r, http.StatusOK)
	wantKeys(t, r, "access_token", "token_type", "expires_in", "refresh_token")
	next := pairOf(t, r)
	if next.Refresh == f.UserRefresh || next.Access == f.UserAccess {
		t.Fatal("refresh returned the same tokens")
	}
	if c := parseAccess(t, next.Access); c["sub"] != f.UserID || c["tid"] != "oscorp" || c["role"] != "user" {
		t.Errorf("refreshed access claims %v", c)
	}
	mustStatus(t, s.do(t, "GET", "/me", next.Access, nil), http.StatusOK)

	// The spent token again: refused, and the new token of its family dies with it.
	wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}), http.StatusUnauthorized, "invalid_token")
	wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": next.Refresh}), http.StatusUnauthorized, "invalid_token")
	// Other sessions are another family.
	pairOf(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": other.Refresh}))

	// Concurrent refreshes of one token are a reuse: at most one rotates it, and the family is
	// revoked, the rotated token included.
	racer := s.mustLogin(t, f.OwnerEmail, "oscorp")
	var wg sync.WaitGroup
	results := make([]apiResponse, 4)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = s.send("POST", "/auth/refresh", "", map[string]string{"refresh_token": racer.Refresh})
		})
	}
	wg.Wait()
	rotated := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		switch {
		case r.Status == http.StatusOK:
			rotated++
			wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": pairOf(t, r).Refresh}), http.StatusUnauthorized, "invalid_token")
		case r.Status == http.StatusUnauthorized && r.str("code") == "invalid_token":
		default:
			t.Errorf("racing refresh: %v", r)
		}
	}
	if rotated > 1 {
		t.Errorf("%d of %d concurrent refreshes of one token succeeded, want at most 1", rotated, len(results))
	}

	for _, bad := range []string{"", "rt_unknown", "not-a-refresh-token", f.UserAccess, "rt_" + strings.Repeat("a", 200)} {
		wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": bad}), http.StatusUnauthorized, "invalid_token")
	}
}

func TestLogout_RevokesOneSessionOrAllOfTheCallers(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "aperture")
	second := s.mustLogin(t, f.UserEmail, "aperture")
	third := s.mustLogin(t, f.UserEmail, "aperture")

	r := s.do(t, "POST", "/auth/logout", f.UserAccess, map[string]string{"refresh_token": f.UserRefresh})
	if wantStatus(t, r, http.StatusNoContent) && len(r.Raw) != 0 {
		t.Errorf("204 with a body: %q", r.Raw)
	}
	wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}), http.StatusUnauthorized, "invalid_token")
	// Only that session ended.
	second = pairOf(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": second.Refresh}))

	// Someone else's refresh token cannot be logged out.
	wantProblem(t, s.do(t, "POST", "/auth/logout", f.OwnerAccess, map[string]string{"refresh_token": third.Refresh}), http.StatusForbidden, "forbidden")
	third = pairOf(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": third.Refresh}))

	// No body: every session of the caller ends, nobody else's.
	mustStatus(t, s.do(t, "POST", "/auth/logout", f.UserAccess, nil), http.StatusNoContent)
	for _, rt := range []string{second.Refresh, third.Refresh} {
		wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": rt}), http.StatusUnauthorized, "invalid_token")
	}
	pairOf(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.OwnerRefresh}))
	// An empty JSON object is "no refresh token" too.
	fresh := s.mustLogin(t, f.UserEmail, "aperture")
	mustStatus(t, s.do(t, "POST", "/auth/logout", fresh.Access, `{}`), http.StatusNoContent)
	wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": fresh.Refresh}), http.StatusUnauthorized, "invalid_token")

	wantUnauthenticated(t, s.do(t, "POST", "/auth/logout", "", map[string]string{"refresh_token": f.OwnerRefresh}))
}

// A logout whose body is empty but sent without a Content-Length (chunked, as streaming
// clients and proxies send it) has no refresh token: it ends every session, like no body.
func TestLogout_EmptyChunkedBodyEndsEverySessionLikeNoBody(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "chunky")
	req, err := http.NewRequest("POST", s.base+"/auth/logout", io.NopCloser(strings.NewReader("")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // unknown length: sent chunked
	req.Header.Set("Authorization", "Bearer "+f.UserAccess)
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("POST /auth/logout with an empty chunked body → %d %s; want 204", resp.StatusCode, bytes.TrimSpace(body))
	}
	wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}), http.StatusUnauthorized, "invalid_token")
}

// ---------------------------------------------------------------------------------------------
// 4. Admin and tenant creation

func TestAdmin_BootstrappedAdminLogsInThroughTheDirectory(t *testing.T) {
	s := startAPI(t)
	pair := pairOf(t, s.login(t, adminEmail, adminPassword, ""))
	c := parseAccess(t, pair.Access)
	if c["tid"] != "system" || c["role"] != "admin" {
		t.Errorf("admin token claims %v, want tid system, role admin", c)
	}
	me := s.do(t, "GET", "/me", pair.Access, nil)
	if wantStatus(t, me, http.StatusOK) && (me.str("role") != "admin" || me.str("email") != adminEmail || me.str("tenant_id") != "system") {
		t.Errorf("admin GET /me = %s", me.Raw)
	}
	pairOf(t, s.login(t, adminEmail, adminPassword, "system"))
	wantProblem(t, s.login(t, adminEmail, "wrong-admin-password", ""), http.StatusUnauthorized, "invalid_credentials")
	// "system" is the admins' pseudo-tenant, not a tenant anyone can sign up to.
	wantProblem(t, s.signup(t, "intruder@x.test", goodPassword, "system", ""), http.StatusUnprocessableEntity, "tenant_reserved")
}

func TestAdmin_CreateTenantInvitesItsFirstOwner(t *testing.T) {
	s := startAPI(t)
	admin := s.adminToken(t)

	r := s.do(t, "POST", "/tenants", admin, map[string]string{"tenant_name": "Acme Corp", "admin_email": "boss@acme.test"})
	mustStatus(t, r, http.StatusCreated)
	wantKeys(t, r, "message", "tenant_id", "invitation")
	if r.str("message") != "Tenant created successfully." || r.str("tenant_id") != "acme-corp" {
		t.Errorf("POST /tenants = %s", r.Raw)
	}
	inv := r.obj("invitation")
	token, _ := inv["token"].(string)
	if token == "" || inv["email"] != "boss@acme.test" || inv["role"] != "owner" || inv["tenant_id"] != "acme-corp" || inv["expires_at"] == nil {
		t.Fatalf("invitation %v", inv)
	}
	tr := s.do(t, "GET", "/tenants/acme-corp", admin, nil)
	if wantStatus(t, tr, http.StatusOK) && (tr.str("name") != "Acme Corp" || tr.str("status") != "active" || tr.str("plan") != "free") {
		t.Errorf("GET /tenants/acme-corp = %s", tr.Raw)
	}

	// The invitation is the way in, for its email only.
	wantProblem(t, s.signup(t, "boss@acme.test", goodPassword, "acme-corp", ""), http.StatusForbidden, "invitation_required")
	wantProblem(t, s.signup(t, "mole@acme.test", goodPassword, "acme-corp", token), http.StatusForbidden, "invalid_invitation")
	su := s.signup(t, "boss@acme.test", goodPassword, "acme-corp", token)
	mustStatus(t, su, http.StatusCreated)
	if su.str("role") != "owner" || su.str("tenant_id") != "acme-corp" {
		t.Errorf("boss signup = %s", su.Raw)
	}
	boss := s.mustLogin(t, "boss@acme.test", "")
	if c := parseAccess(t, boss.Access); c["role"] != "owner" || c["tid"] != "acme-corp" {
		t.Errorf("boss claims %v", c)
	}
	if got := s.users(t, boss.Access, "acme-corp"); len(got) != 1 || got[su.str("user_id")] != "owner" {
		t.Errorf("acme-corp users %v", got)
	}
}

func TestAdmin_CreateTenantRefusesBadNamesDuplicatesAndNonAdmins(t *testing.T) {
	s := startAPI(t)
	admin := s.adminToken(t)
	f := s.newTenant(t, "massive-dynamic")

	tests := []struct {
		name, tenantName, email string
		status                  int
		code                    string
	}{
		{"Reserved", "API", "x@x.test", http.StatusUnprocessableEntity, "tenant_reserved"},
		{"ReservedWww", "www", "x@x.test", http.StatusUnprocessableEntity, "tenant_reserved"},
		{"ReservedSystem", "System", "x@x.test", http.StatusUnprocessableEntity, "tenant_reserved"},
		{"TooShort", "a", "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"Empty", "", "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"NoLettersOrDigits", "!!!", "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"SlugTooLong", strings.Repeat("b", 64), "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"NameTooLong", strings.Repeat("!", 99) + "ok-name", "x@x.test", http.StatusUnprocessableEntity, "invalid_tenant"},
		{"BadOwnerEmail", "Fine Name", "not-an-email", http.StatusUnprocessableEntity, "invalid_email"},
		{"Duplicate", "Massive Dynamic", "x@x.test", http.StatusConflict, "tenant_exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, s.do(t, "POST", "/tenants", admin, map[string]string{"tenant_name": tt.tenantName, "admin_email": tt.email}), tt.status, tt.code)
		})
	}
	for _, tok := range []string{f.OwnerAccess, f.UserAccess} {
		wantProblem(t, s.do(t, "POST", "/tenants", tok, map[string]string{"tenant_name": "Rogue", "admin_email": "r@rogue.test"}), http.StatusForbidden, "forbidden")
	}
	if ids := s.tenantIDs(t, admin); !slices.Equal(ids, []string{"massive-dynamic"}) {
		t.Errorf("tenants %v, want only massive-dynamic", ids)
	}
}

// ---------------------------------------------------------------------------------------------
// 5. RBAC: every route by role

// routesGo is the file where every route and its lowest role are listed.
const routesGo = "../control/api/routes.go"

// rbacSignedWebhook is a Stripe event body that the RBAC test sends signed with the
// configured webhook secret.
type rbacSignedWebhook []byte

func TestRBAC_EveryRouteAnswersEachRoleAsItsMinimumRoleSays(t *testing.T) {
	// Billing on (stripe-mock), so that the billing routes answer their role rules rather
	// than 503 billing_disabled; "team" is a plan one can buy.
	s := startAPI(t, fmt.Sprintf(`stripe {
	secret_key %s
	webhook_secret %s
	api_base %s
	success_url https://vandelay.test/billing/done
}
plan team {
	rate 10/1s
	stripe_price price_team
}`, testenv.StripeMockKey, testenv.WebhookSecret, testenv.StripeMock(t)))
	f := s.newTenant(t, "vandelay")
	admin := s.adminToken(t)

	fresh := func(t *testing.T) any {
		return map[string]string{"refresh_token": s.mustLogin(t, f.UserEmail, "vandelay").Refresh}
	}
	const (
		anon = iota
		user
		owner
		adm
	)
	type rbacCase struct {
		route string // as written in routes.go
		path  string
		body  func(t *testing.T) any
		want  [4]int // anonymous, user, owner, admin
	}
	all := func(status int) [4]int { return [4]int{status, status, status, status} }
	cases := []rbacCase{
		{"POST /auth/signup", "/auth/signup", func(*testing.T) any {
			n := unique()
			return signupBody("rbac"+n+"@rbac.test", goodPassword, "rbac-new-"+n, "")
		}, all(http.StatusCreated)},
		{"POST /auth/login", "/auth/login", func(*testing.T) any {
			return map[string]string{"email": f.UserEmail, "password": goodPassword, "tenant": "vandelay"}
		}, all(http.StatusOK)},
		{"POST /auth/refresh", "/auth/refresh", fresh, all(http.StatusOK)},
		{"POST /auth/logout", "/auth/logout", nil, [4]int{401, 204, 204, 204}},
		{"GET /me", "/me", nil, [4]int{401, 200, 200, 200}},
		{"GET /rate-limit", "/rate-limit", nil, [4]int{401, 200, 200, http.StatusBadRequest}},
		{"POST /tenants", "/tenants", func(*testing.T) any {
			n := unique()
			return map[string]string{"tenant_name": "RBAC Made " + n, "admin_email": "o" + n + "@rbac.test"}
		}, [4]int{401, 403, 403, 201}},
		{"GET /tenants", "/tenants", nil, [4]int{401, 403, 200, 200}},
		{"GET /tenants/{id}", "/tenants/vandelay", nil, [4]int{401, 403, 200, 200}},
		{"PATCH /tenants/{id}", "/tenants/vandelay", func(*testing.T) any {
			return map[string]string{"name": "Vandelay Industries " + unique()}
		}, [4]int{401, 403, 200, 200}},
		{"POST /tenants/{id}/invitations", "/tenants/vandelay/invitations", func(*testing.T) any {
			return map[string]string{"email": "invitee" + unique() + "@vandelay.test", "role": "user"}
		}, [4]int{401, 403, 201, 201}},
		{"GET /tenants/{id}/users", "/tenants/vandelay/users", nil, [4]int{401, 403, 200, 200}},
		{"PATCH /tenants/{id}/users/{uid}", "/tenants/vandelay/users/" + f.UserID, func(*testing.T) any {
			return map[string]string{"role": "user"}
		}, [4]int{401, 403, 200, 200}},
		// Admins name no tenant here: the routes that act on the caller's tenant want one.
		{"POST /subscriptions", "/subscriptions", func(*testing.T) any {
			return map[string]string{"tenant_id": "vandelay", "plan_id": "team"}
		}, [4]int{401, 403, 201, 201}},
		{"GET /subscriptions/current", "/subscriptions/current", nil, [4]int{401, 403, 200, http.StatusBadRequest}},
		// After POST /subscriptions above, the tenant has a Stripe customer, so a portal.
		{"POST /subscriptions/portal", "/subscriptions/portal", nil, [4]int{401, 403, 200, http.StatusBadRequest}},
		{"POST /webhooks/stripe", "/webhooks/stripe", func(t *testing.T) any {
			return rbacSignedWebhook(testenv.StripeEvent(t, "evt_rbac_"+unique(), "customer.created", time.Now(),
				map[string]any{"id": "cus_rbac", "object": "customer"}))
		}, all(http.StatusOK)},
		{"GET /plans", "/plans", nil, all(http.StatusOK)},
		{"GET /healthz", "/healthz", nil, all(http.StatusOK)},
		{"GET /readyz", "/readyz", nil, all(http.StatusOK)},
	}

	// The table must cover routes.go exactly, so a new route cannot skip this test.
	src, err := os.ReadFile(routesGo)
	if err != nil {
		t.Fatalf("reading %s: %v", routesGo, err)
	}
	var declared []string
	for _, m := range regexp.MustCompile(`a\.handle\("([A-Z]+ [^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		declared = append(declared, m[1])
	}
	var tested []string
	for _, c := range cases {
		tested = append(tested, c.route)
	}
	if len(declared) == 0 || !slices.Equal(slices.Sorted(slices.Values(declared)), slices.Sorted(slices.Values(tested))) {
		t.Fatalf("routes.go declares %v\nthe RBAC table covers %v", declared, tested)
	}

	tokens := [4]string{"", f.UserAccess, f.OwnerAccess, admin}
	names := [4]string{"anonymous", "user", "owner", "admin"}
	for _, c := range cases {
		method := strings.Fields(c.route)[0]
		for role := anon; role <= adm; role++ {
			t.Run(c.route+"/"+names[role], func(t *testing.T) {
				var body any
				if c.body != nil {
					body = c.body(t)
				}
				var opts []reqOption
				if ev, ok := body.(rbacSignedWebhook); ok {
					body = []byte(ev)
					opts = append(opts, withHeader("Stripe-Signature", testenv.SignStripe(ev, testenv.WebhookSecret, time.Now())))
				}
				r := s.do(t, method, c.path, tokens[role], body, opts...)
				switch want := c.want[role]; want {
				case http.StatusUnauthorized:
					wantUnauthenticated(t, r)
				case http.StatusForbidden:
					wantProblem(t, r, http.StatusForbidden, "forbidden")
				default:
					wantStatus(t, r, want)
				}
			})
		}
	}
	for _, path := range []string{"/", "/nope", "/tenants/vandelay/secrets", "/auth"} {
		for role := anon; role <= adm; role++ {
			wantProblem(t, s.do(t, "GET", path, tokens[role], nil), http.StatusNotFound, "not_found")
		}
	}
}

// ---------------------------------------------------------------------------------------------
// 6. Tenant isolation

func TestIsolation_TenantTokensNeverReachAnotherTenant(t *testing.T) {
	s := startAPI(t)
	a := s.newTenant(t, "north")
	b := s.newTenant(t, "south")
	db := s.store(t)

	bBefore := s.do(t, "GET", "/tenants/south", b.OwnerAccess, nil)
	mustStatus(t, bBefore, http.StatusOK)

	type attempt struct {
		method, path string
		body         any
	}
	attempts := []attempt{
		{"GET", "/tenants/south", nil},
		{"PATCH", "/tenants/south", map[string]string{"name": "Hijacked"}},
		{"POST", "/tenants/south/invitations", map[string]string{"email": "spy@north.test", "role": "owner"}},
		{"GET", "/tenants/south/users", nil},
		{"PATCH", "/tenants/south/users/" + b.UserID, map[string]string{"role": "owner"}},
		{"PATCH", "/tenants/south/users/" + b.OwnerID, map[string]string{"role": "user"}},
	}
	hints := map[string][]reqOption{
		"NoHint":          nil,
		"HeaderNamesB":    {withHeader("X-Tenant-ID", "south")},
		"SubdomainNamesB": {withHost(fmt.Sprintf("south.localhost:%d", s.port))},
	}
	for _, who := range []struct{ name, token string }{{"OwnerOfA", a.OwnerAccess}, {"UserOfA", a.UserAccess}} {
		for hintName, opts := range hints {
			for _, at := range attempts {
				t.Run(who.name+"/"+hintName+"/"+at.method+" "+at.path, func(t *testing.T) {
					wantProblem(t, s.do(t, at.method, at.path, who.token, at.body, opts...), http.StatusForbidden, "forbidden")
				})
			}
		}
	}
	// B's user id through A's own path does not reach B's user.
	wantProblem(t, s.do(t, "PATCH", "/tenants/north/users/"+b.UserID, a.OwnerAccess, map[string]string{"role": "owner"}),
		http.StatusNotFound, "user_not_found")

	// B is unchanged, as B's owner sees it.
	bAfter := s.do(t, "GET", "/tenants/south", b.OwnerAccess, nil)
	if !bytes.Equal(bAfter.Raw, bBefore.Raw) {
		t.Errorf("tenant south changed:\nbefore %s\nafter  %s", bBefore.Raw, bAfter.Raw)
	}
	if got := s.users(t, b.OwnerAccess, "south"); len(got) != 2 || got[b.OwnerID] != "owner" || got[b.UserID] != "user" {
		t.Errorf("south users %v, want its owner and user unchanged", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := db.C("t_south_invitations").CountDocuments(ctx, bson.D{{Key: "email", Value: "spy@north.test"}}); err != nil || n != 0 {
		t.Errorf("south holds %d invitations for the spy (err %v), want 0", n, err)
	}

	// Owners list only their own tenant; users list nothing.
	if ids := s.tenantIDs(t, a.OwnerAccess); !slices.Equal(ids, []string{"north"}) {
		t.Errorf("owner of north lists %v, want [north]", ids)
	}
	if ids := s.tenantIDs(t, b.OwnerAccess); !slices.Equal(ids, []string{"south"}) {
		t.Errorf("owner of south lists %v, want [south]", ids)
	}
	if ids := s.tenantIDs(t, s.adminToken(t)); !slices.Equal(ids, []string{"north", "south"}) {
		t.Errorf("admin lists %v, want [north south]", ids)
	}
}

// ---------------------------------------------------------------------------------------------
// 7. PATCH tenant and user roles

func TestPatchTenant_AdminSetsStatusAndPlanOwnerMayOnlyRename(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "gringotts")
	admin := s.adminToken(t)
	path := "/tenants/gringotts"

	steps := []struct {
		name   string
		token  string
		body   any
		status int
		code   string            // for problems
		want   map[string]string // fields of the tenant afterwards ("" = absent)
	}{
		{"AdminSuspends", admin, map[string]string{"status": "suspended"}, 200, "", map[string]string{"status": "suspended"}},
		{"AdminReactivates", admin, map[string]string{"status": "active"}, 200, "", map[string]string{"status": "active"}},
		{"AdminOverridesPlan", admin, map[string]string{"plan": "pro"}, 200, "", map[string]string{"plan": "free", "plan_override": "pro"}},
		{"AdminUnknownPlan", admin, map[string]string{"plan": "platinum"}, 422, "unknown_plan", map[string]string{"plan_override": "pro"}},
		{"AdminBadStatus", admin, map[string]string{"status": "deleted"}, 422, "invalid_status", map[string]string{"status": "active"}},
		{"AdminBlankName", admin, map[string]string{"name": "   "}, 422, "invalid_tenant", map[string]string{"name": "gringotts"}},
		{"AdminNothingToChange", admin, map[string]string{}, 400, "bad_request", nil},
		{"AdminClearsOverride", admin, map[string]string{"plan": ""}, 200, "", map[string]string{"plan_override": ""}},
		{"OwnerRenames", f.OwnerAccess, map[string]string{"name": "Gringotts Bank"}, 200, "", map[string]string{"name": "Gringotts Bank"}},
		{"OwnerCannotSuspend", f.OwnerAccess, map[string]string{"status": "suspended"}, 403, "forbidden", map[string]string{"status": "active"}},
		{"OwnerCannotSetPlan", f.OwnerAccess, map[string]string{"plan": "pro"}, 403, "forbidden", map[string]string{"plan_override": ""}},
		{"OwnerCannotSneakStatusInARename", f.OwnerAccess, map[string]string{"name": "Sneaky", "status": "active"}, 403, "forbidden", map[string]string{"name": "Gringotts Bank"}},
		{"UserCannotRename", f.UserAccess, map[string]string{"name": "Mine"}, 403, "forbidden", map[string]string{"name": "Gringotts Bank"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := s.do(t, "PATCH", path, st.token, st.body)
			if st.code != "" {
				wantProblem(t, r, st.status, st.code)
			} else if wantStatus(t, r, st.status) && r.str("tenant_id") != "gringotts" {
				t.Errorf("PATCH answer %s", r.Raw)
			}
			got := s.do(t, "GET", path, admin, nil)
			for k, v := range st.want {
				if got.str(k) != v {
					t.Errorf("after %s: %s = %q, want %q (%s)", st.name, k, got.str(k), v, got.Raw)
				}
			}
			owner := s.do(t, "GET", path, f.OwnerAccess, nil)
			if got.str("status") == "suspended" {
				// An admin's suspension shuts the tenant's members out of the API too.
				wantProblem(t, owner, http.StatusPaymentRequired, "tenant_suspended")
			} else if !bytes.Equal(owner.Raw, got.Raw) {
				t.Errorf("owner sees %s, admin sees %s", owner.Raw, got.Raw)
			}
		})
	}
	wantProblem(t, s.do(t, "PATCH", "/tenants/no-such-tenant", admin, map[string]string{"status": "suspended"}), http.StatusNotFound, "tenant_not_found")
	wantProblem(t, s.do(t, "GET", "/tenants/no-such-tenant", admin, nil), http.StatusNotFound, "tenant_not_found")
}

func TestPatchUser_OwnerChangesRolesButATenantKeepsAnOwner(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "dunder")
	userPath := "/tenants/dunder/users/" + f.UserID
	ownerPath := "/tenants/dunder/users/" + f.OwnerID

	wantProblem(t, s.do(t, "PATCH", ownerPath, f.OwnerAccess, map[string]string{"role": "user"}), http.StatusConflict, "last_owner")
	for _, role := range []string{"admin", "", "root", "Owner"} {
		wantProblem(t, s.do(t, "PATCH", userPath, f.OwnerAccess, map[string]string{"role": role}), http.StatusUnprocessableEntity, "invalid_role")
	}
	wantProblem(t, s.do(t, "PATCH", "/tenants/dunder/users/usr_nobody", f.OwnerAccess, map[string]string{"role": "owner"}), http.StatusNotFound, "user_not_found")

	r := s.do(t, "PATCH", userPath, f.OwnerAccess, map[string]string{"role": "owner"})
	if wantStatus(t, r, http.StatusOK) && (r.str("role") != "owner" || r.str("user_id") != f.UserID) {
		t.Errorf("promotion answer %s", r.Raw)
	}
	if _, leaked := r.Body["password_hash"]; leaked {
		t.Errorf("PATCH answer shows password_hash: %s", r.Raw)
	}
	if got := s.users(t, f.OwnerAccess, "dunder"); got[f.UserID] != "owner" {
		t.Errorf("users after promotion %v", got)
	}
	// A refresh carries the new role.
	promoted := pairOf(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}))
	if c := parseAccess(t, promoted.Access); c["role"] != "owner" {
		t.Errorf("refreshed role %v, want owner", c["role"])
	}
	mustStatus(t, s.do(t, "GET", "/tenants/dunder/users", promoted.Access, nil), http.StatusOK)

	// Two owners: either may step down, but not both.
	r = s.do(t, "PATCH", userPath, f.OwnerAccess, map[string]string{"role": "user"})
	if wantStatus(t, r, http.StatusOK) && r.str("role") != "user" {
		t.Errorf("demotion answer %s", r.Raw)
	}
	mustStatus(t, s.do(t, "PATCH", userPath, f.OwnerAccess, map[string]string{"role": "owner"}), http.StatusOK)
	mustStatus(t, s.do(t, "PATCH", ownerPath, promoted.Access, map[string]string{"role": "user"}), http.StatusOK)
	wantProblem(t, s.do(t, "PATCH", userPath, promoted.Access, map[string]string{"role": "user"}), http.StatusConflict, "last_owner")
	if got := s.users(t, promoted.Access, "dunder"); got[f.UserID] != "owner" || got[f.OwnerID] != "user" {
		t.Errorf("users at the end %v, want %s owner and %s user", got, f.UserID, f.OwnerID)
	}
}

// ---------------------------------------------------------------------------------------------
// 8. Audit

type auditEntry struct {
	TenantID  string    `bson:"tenant_id"`
	Time      time.Time `bson:"time"`
	ActorID   string    `bson:"actor_id"`
	ActorRole string    `bson:"actor_role"`
	Action    string    `bson:"action"`
	Target    string    `bson:"target"`
	IP        string    `bson:"ip"`
	RequestID string    `bson:"request_id"`
	Outcome   string    `bson:"outcome"`
	Detail    bson.M    `bson:"detail"`
}

func readAudit(t *testing.T, db *store.DB, tenantID string) []auditEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cur, err := db.C("t_"+tenantID+"_audit").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEntry
	if err := cur.All(ctx, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAudit_SignupLoginAndRoleChangesAreRecordedInTheTenantsCollection(t *testing.T) {
	s := startAPI(t)
	start := time.Now().Add(-time.Second)
	f := s.newTenant(t, "monarch") // owner signup, owner login, invite, user signup, user login
	wantProblem(t, s.login(t, f.UserEmail, "wrong-password", "monarch"), http.StatusUnauthorized, "invalid_credentials")
	mustStatus(t, s.do(t, "PATCH", "/tenants/monarch/users/"+f.UserID, f.OwnerAccess, map[string]string{"role": "owner"}), http.StatusOK)
	wantProblem(t, s.login(t, "stranger@nowhere.test", "wrong-password", ""), http.StatusUnauthorized, "invalid_credentials")
	next := pairOf(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.OwnerRefresh}))
	wantProblem(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.OwnerRefresh}), http.StatusUnauthorized, "invalid_token")
	mustStatus(t, s.do(t, "POST", "/auth/logout", next.Access, nil), http.StatusNoContent)

	db := s.store(t)
	entries := readAudit(t, db, "monarch")
	find := func(action, outcome, target string) *auditEntry {
		for i := range entries {
			e := &entries[i]
			if e.Action == action && e.Outcome == outcome && e.Target == target {
				return e
			}
		}
		t.Errorf("no %s %s entry for target %s in t_monarch_audit; entries:\n%+v", action, outcome, target, entries)
		return nil
	}
	requestIDs := map[string]string{}
	check := func(name string, e *auditEntry, actorID, actorRole string) {
		if e == nil {
			return
		}
		if e.TenantID != "monarch" || e.ActorID != actorID || e.ActorRole != actorRole || e.IP != "127.0.0.1" || e.RequestID == "" ||
			e.Time.Before(start) || e.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("%s entry %+v: want tenant monarch, actor %q (%s), ip 127.0.0.1, a request id and a recent time", name, *e, actorID, actorRole)
		}
		if prev, dup := requestIDs[e.RequestID]; dup {
			t.Errorf("%s and %s entries share request id %q", prev, name, e.RequestID)
		}
		requestIDs[e.RequestID] = name
	}
	check("owner signup", find("account.signup", "success", f.OwnerID), f.OwnerID, "owner")
	check("user signup", find("account.signup", "success", f.UserID), f.UserID, "user")
	check("owner login", find("auth.login", "success", f.OwnerID), f.OwnerID, "owner")
	check("user login", find("auth.login", "success", f.UserID), f.UserID, "user")
	check("invitation", find("tenant.invite", "success", f.UserEmail), f.OwnerID, "owner")
	// A failed login has no authenticated actor: the account it was aimed at is the target.
	check("failed login", find("auth.login", "failure", f.UserID), "", "")
	check("refresh reuse", find("auth.refresh_reuse", "denied", f.OwnerID), f.OwnerID, "")
	check("logout", find("auth.logout", "success", f.OwnerID), f.OwnerID, "owner")
	if e := find("user.role_change", "success", f.UserID); e != nil {
		check("role change", e, f.OwnerID, "owner")
		if e.Detail["from"] != "user" || e.Detail["to"] != "owner" {
			t.Errorf("role change detail %v, want from user to owner", e.Detail)
		}
	}
	if e := find("tenant.create", "success", "monarch"); e != nil && (e.ActorID != f.OwnerID || e.IP != "127.0.0.1") {
		t.Errorf("tenant.create entry %+v", *e)
	}

	// A login for an email no tenant knows is recorded on the platform's own log.
	found := false
	for _, e := range readAudit(t, db, "system") {
		if e.Action == "auth.login" && e.Outcome == "failure" && e.IP == "127.0.0.1" && e.RequestID != "" && e.Detail["email"] == "stranger@nowhere.test" {
			found = true
		}
	}
	if !found {
		t.Error("no failed-login entry for stranger@nowhere.test in t_system_audit")
	}
	// Nothing of monarch leaked into another tenant's log.
	for _, e := range readAudit(t, db, "system") {
		if e.Target == f.UserID || e.Target == f.OwnerID {
			t.Errorf("t_system_audit holds a monarch entry: %+v", e)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// 9. Access token verification

func mintToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	raw, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAccessToken_ForgedExpiredOrMalformedTokensAreRejected(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "nakatomi")
	secret := []byte(testJWTSecret)
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		now := time.Now()
		c := jwt.MapClaims{
			"iss": testIssuer, "sub": f.UserID, "tid": "nakatomi", "role": "user", "typ": "access",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "test-" + unique(),
		}
		if change != nil {
			change(c)
		}
		return c
	}
	minus := func(d time.Duration) int64 { return time.Now().Add(-d).Unix() }

	// The minting below is right: an untouched token is accepted, as is one within the leeway.
	mustStatus(t, s.do(t, "GET", "/me", mintToken(t, jwt.SigningMethodHS256, secret, claims(nil)), nil), http.StatusOK)
	mustStatus(t, s.do(t, "GET", "/me", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) {
		c["exp"] = minus(10 * time.Second)
	})), nil), http.StatusOK)

	tests := []struct {
		name  string
		token string
	}{
		{"AlgNone", mintToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))},
		{"HS512", mintToken(t, jwt.SigningMethodHS512, secret, claims(nil))},
		{"OtherSecret", mintToken(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), claims(nil))},
		{"ExpiredBeyondLeeway", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = minus(2*time.Hour), minus(time.Minute)
		}))},
		{"NoExp", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"WrongIssuer", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
		{"NoIssuer", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"IssuedInTheFuture", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iat"] = minus(-10 * time.Minute) }))},
		{"NotYetValid", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = minus(-10 * time.Minute) }))},
		{"NotAnAccessToken", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["typ"] = "mfa" }))},
		{"NoType", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "typ") }))},
		{"UnknownRole", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["role"] = "root" }))},
		{"NoSubject", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"NoTenant", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "tid") }))},
		{"TamperedPayload", func() string {
			parts := strings.Split(mintToken(t, jwt.SigningMethodHS256, secret, claims(nil)), ".")
			other := strings.Split(mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["role"] = "admin" })), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}()},
		{"Garbage", "not.a.jwt"},
		{"Oversized", strings.Repeat("a", 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantUnauthenticated(t, s.do(t, "GET", "/me", tt.token, nil))
		})
	}
	t.Run("NotBearer", func(t *testing.T) {
		wantUnauthenticated(t, s.do(t, "GET", "/me", "", nil, withHeader("Authorization", "Basic "+f.UserAccess)))
		wantUnauthenticated(t, s.do(t, "GET", "/me", "", nil, withHeader("Authorization", "Bearer ")))
		wantUnauthenticated(t, s.do(t, "GET", "/me", "", nil, withHeader("Authorization", f.UserAccess)))
	})
	t.Run("ForgedAdminOnAdminRoute", func(t *testing.T) {
		forged := mintToken(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), claims(func(c jwt.MapClaims) {
			c["role"], c["tid"] = "admin", "system"
		}))
		wantUnauthenticated(t, s.do(t, "GET", "/tenants", forged, nil))
	})
}

// A token signed with the right secret whose tenant id is not a DNS label must be refused as
// invalid, not reach the store (which builds a collection name from it).
func TestAccessToken_TenantClaimThatIsNotADNSLabelIsRejected(t *testing.T) {
	s := startAPI(t)
	f := s.newTenant(t, "weyland")
	for _, tid := range []string{"Not A Label!", "x", "$where"} {
		tok := mintToken(t, jwt.SigningMethodHS256, []byte(testJWTSecret), jwt.MapClaims{
			"iss": testIssuer, "sub": f.UserID, "tid": tid, "role": "user", "typ": "access",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		})
		for _, route := range []struct{ method, path string }{{"GET", "/me"}, {"POST", "/auth/logout"}} {
			r, err := s.send(route.method, route.path, tok, nil)
			if err != nil {
				t.Errorf("%s %s with tid %q: no HTTP answer (%v)", route.method, route.path, tid, err)
				continue
			}
			wantUnauthenticated(t, r)
		}
	}
	// The real user's sessions were not touched by the forged tokens' logouts.
	pairOf(t, s.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}))
}

// ---------------------------------------------------------------------------------------------
// 10. Public routes

func TestPublicRoutes_PlansHealthReadinessAndUnknownRoutes(t *testing.T) {
	s := startAPI(t)

	r := s.do(t, "GET", "/plans", "", nil)
	mustStatus(t, r, http.StatusOK)
	var got struct {
		Plans []map[string]any `json:"plans"`
	}
	if err := json.Unmarshal(r.Raw, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": "free", "name": "Free", "rate": "60/1m", "burst": float64(60), "purchasable": false, "default": true},
		{"id": "pro", "name": "Pro", "rate": "20/1s", "burst": float64(50), "quota": float64(100000), "purchasable": false, "default": false},
	}
	if len(got.Plans) != len(want) {
		t.Fatalf("plans %s, want %v", r.Raw, want)
	}
	for i := range want {
		if !maps.Equal(got.Plans[i], want[i]) {
			t.Errorf("plan %d = %v, want %v", i, got.Plans[i], want[i])
		}
	}

	h := s.do(t, "GET", "/healthz", "", nil)
	if wantStatus(t, h, http.StatusOK) && h.str("status") != "ok" {
		t.Errorf("/healthz %s", h.Raw)
	}
	rd := s.do(t, "GET", "/readyz", "", nil)
	if wantStatus(t, rd, http.StatusOK) && (rd.str("status") != "ready" || rd.obj("checks")["mongo"] != "ok") {
		t.Errorf("/readyz %s, want status ready and checks.mongo ok", rd.Raw)
	}

	for _, tt := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/"},
		{"POST", "/plans/extra"},
		{"GET", "/auth/signup/x"},
	} {
		wantProblem(t, s.do(t, tt.method, tt.path, "", nil), http.StatusNotFound, "not_found")
	}
}
