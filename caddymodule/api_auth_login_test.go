package caddymodule_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
)

// ---------------------------------------------------------------------------------------------
// 2. Login

func TestLogin_ReturnsABearerPairWhoseAccessTokenVerifies(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "tyrell")

	before := time.Now().Add(-2 * time.Second)
	r := s.Login(t, f.UserEmail, testenv.Password, "tyrell")
	mustStatus(t, r, http.StatusOK)
	wantKeys(t, r, "access_token", "token_type", "expires_in", "refresh_token")
	if r.Str("token_type") != "bearer" {
		t.Errorf("token_type %q, want bearer", r.Str("token_type"))
	}
	if r.Body["expires_in"] != float64(3600) {
		t.Errorf("expires_in %v, want 3600", r.Body["expires_in"])
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on a token answer, want no-store", cc)
	}
	if !strings.HasPrefix(r.Str("refresh_token"), "rt_") {
		t.Errorf("refresh_token %q", r.Str("refresh_token"))
	}

	claims := parseAccess(t, r.Str("access_token"))
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
	other := parseAccess(t, s.MustLogin(t, f.UserEmail, "tyrell").Access)
	if other["jti"] == claims["jti"] {
		t.Errorf("two logins share jti %v", claims["jti"])
	}

	me := s.Do(t, "GET", "/me", r.Str("access_token"), nil)
	if wantStatus(t, me, http.StatusOK) && (me.Str("user_id") != f.UserID || me.Str("role") != "user") {
		t.Errorf("GET /me = %s", me.Raw)
	}
}

func TestLogin_WrongPasswordAndUnknownAccountAnswerIdentically(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "cyberdyne")

	reference := s.Login(t, f.UserEmail, "wrong-password", "cyberdyne")
	if !wantProblem(t, reference, http.StatusUnauthorized, "invalid_credentials") {
		t.FailNow()
	}
	for _, tt := range []struct{ name, email, password, tenant string }{
		{"UnknownEmailInTenant", "nobody@cyberdyne.test", "wrong-password", "cyberdyne"},
		{"UnknownEmailNoTenant", "nobody@nowhere.test", "wrong-password", ""},
		{"UnknownTenant", f.UserEmail, testenv.Password, "no-such-tenant"},
		{"InvalidTenantHint", f.UserEmail, testenv.Password, "-x-"},
		{"OtherTenantsAccount", f.OwnerEmail, testenv.Password, "other-tenant"},
		{"MalformedEmail", "not-an-email", testenv.Password, "cyberdyne"},
		{"WrongPasswordOfOwner", f.OwnerEmail, "wrong-password", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Login(t, tt.email, tt.password, tt.tenant)
			if r.Status != reference.Status || !bytes.Equal(r.Raw, reference.Raw) ||
				r.Header.Get("Content-Type") != reference.Header.Get("Content-Type") {
				t.Errorf("answer differs from a wrong password's:\n got %v\nwant %v", r, reference)
			}
		})
	}
}

func TestLogin_RepeatedFailuresLockTheAccount(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "wonka")
	// The same email in another tenant is another account, with its own counter.
	s.MustSignup(t, f.UserEmail, "wonka-two", "")

	for i := 1; i < 5; i++ {
		wantProblem(t, s.Login(t, f.UserEmail, "wrong-password", "wonka"), http.StatusUnauthorized, "invalid_credentials")
	}
	// The fifth failure reaches LockAfter and already answers with the lock; every further
	// attempt, even with the right password, meets it.
	for i, password := range []string{"wrong-password", "wrong-password", testenv.Password} {
		r := s.Login(t, f.UserEmail, password, "wonka")
		if !wantProblem(t, r, http.StatusTooManyRequests, "login_locked") {
			t.Errorf("attempt %d after four failures was not locked", i+5)
		}
		ra := r.Header.Get("Retry-After")
		if n, err := strconv.Atoi(ra); err != nil || n <= 0 {
			t.Errorf("Retry-After %q, want a positive integer of seconds", ra)
		}
	}
	// The lock is per account.
	testenv.PairOf(t, s.Login(t, f.OwnerEmail, testenv.Password, "wonka"))
	testenv.PairOf(t, s.Login(t, f.UserEmail, testenv.Password, "wonka-two"))
}

func TestLogin_TenantComesFromBodyHeaderSubdomainOrDirectory(t *testing.T) {
	s := startAPI(t)
	alpha := s.NewTenant(t, "alpha")
	s.MustSignup(t, "solo@solo.test", "solo", "")

	// One tenant: the directory finds it.
	if c := parseAccess(t, s.MustLogin(t, "solo@solo.test", "").Access); c["tid"] != "solo" {
		t.Errorf("directory login tid %v, want solo", c["tid"])
	}
	// The same email in two tenants needs a tenant.
	bravoOwner := s.MustSignup(t, alpha.UserEmail, "bravo", "")
	wantProblem(t, s.Login(t, alpha.UserEmail, testenv.Password, ""), http.StatusBadRequest, "tenant_required")

	tests := []struct {
		name, tenant string
		opts         []testenv.Option
		wantTID      string
		wantSub      string
	}{
		{"Body", "alpha", nil, "alpha", alpha.UserID},
		{"BodyOther", "bravo", nil, "bravo", bravoOwner},
		{"Header", "", []testenv.Option{testenv.WithHeader("X-Tenant-ID", "bravo")}, "bravo", bravoOwner},
		{"HeaderUpperCase", "", []testenv.Option{testenv.WithHeader("X-Tenant-ID", " ALPHA ")}, "alpha", alpha.UserID},
		{"Subdomain", "", []testenv.Option{testenv.WithHost(fmt.Sprintf("bravo.localhost:%d", s.Opts.APIPort))}, "bravo", bravoOwner},
		{"BodyWinsOverHeader", "alpha", []testenv.Option{testenv.WithHeader("X-Tenant-ID", "bravo")}, "alpha", alpha.UserID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseAccess(t, testenv.PairOf(t, s.Login(t, alpha.UserEmail, testenv.Password, tt.tenant, tt.opts...)).Access)
			if c["tid"] != tt.wantTID || c["sub"] != tt.wantSub {
				t.Errorf("tid %v sub %v, want %s %s", c["tid"], c["sub"], tt.wantTID, tt.wantSub)
			}
		})
	}
	// A reserved subdomain (the API's own host) names no tenant.
	wantProblem(t, s.Login(t, alpha.UserEmail, testenv.Password, "", testenv.WithHost(fmt.Sprintf("api.localhost:%d", s.Opts.APIPort))),
		http.StatusBadRequest, "tenant_required")
}

func TestLogin_WithoutTenantAnotherAccountOfTheEmailStandsNotInTheWay(t *testing.T) {
	s := startAPI(t)
	victim := s.NewTenant(t, "victim-co")
	// Someone opens a tenant of their own with the victim's email and another password.
	mustStatus(t, s.Signup(t, victim.UserEmail, "attacker-password", "attacker-co", ""), http.StatusCreated)

	c := parseAccess(t, s.MustLogin(t, victim.UserEmail, "").Access)
	if c["tid"] != "victim-co" || c["sub"] != victim.UserID {
		t.Errorf("victim's login without a tenant: tid %v sub %v, want victim-co %s", c["tid"], c["sub"], victim.UserID)
	}
	wantProblem(t, s.Login(t, victim.UserEmail, "wrong-password", ""), http.StatusUnauthorized, "invalid_credentials")
}

// ---------------------------------------------------------------------------------------------
// 3. Refresh and logout

func TestRefresh_RotatesAndReuseRevokesTheFamily(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "oscorp")
	other := s.MustLogin(t, f.UserEmail, "oscorp") // a second session of the same user

	r := s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh})
	mustStatus(t, r, http.StatusOK)
	wantKeys(t, r, "access_token", "token_type", "expires_in", "refresh_token")
	next := testenv.PairOf(t, r)
	if next.Refresh == f.UserRefresh || next.Access == f.UserAccess {
		t.Fatal("refresh returned the same tokens")
	}
	if c := parseAccess(t, next.Access); c["sub"] != f.UserID || c["tid"] != "oscorp" || c["role"] != "user" {
		t.Errorf("refreshed access claims %v", c)
	}
	mustStatus(t, s.Do(t, "GET", "/me", next.Access, nil), http.StatusOK)

	// The spent token again: refused, and the new token of its family dies with it.
	wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}), http.StatusUnauthorized, "invalid_token")
	wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": next.Refresh}), http.StatusUnauthorized, "invalid_token")
	// Other sessions are another family.
	testenv.PairOf(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": other.Refresh}))

	// Concurrent refreshes of one token are a reuse: at most one rotates it, and the family is
	// revoked, the rotated token included.
	racer := s.MustLogin(t, f.OwnerEmail, "oscorp")
	var wg sync.WaitGroup
	results := make([]testenv.Response, 4)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = s.Send("POST", "/auth/refresh", "", map[string]string{"refresh_token": racer.Refresh})
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
			wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": testenv.PairOf(t, r).Refresh}), http.StatusUnauthorized, "invalid_token")
		case r.Status == http.StatusUnauthorized && r.Str("code") == "invalid_token":
		default:
			t.Errorf("racing refresh: %v", r)
		}
	}
	if rotated > 1 {
		t.Errorf("%d of %d concurrent refreshes of one token succeeded, want at most 1", rotated, len(results))
	}

	for _, bad := range []string{"", "rt_unknown", "not-a-refresh-token", f.UserAccess, "rt_" + strings.Repeat("a", 200)} {
		wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": bad}), http.StatusUnauthorized, "invalid_token")
	}
}

func TestLogout_RevokesOneSessionOrAllOfTheCallers(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "aperture")
	second := s.MustLogin(t, f.UserEmail, "aperture")
	third := s.MustLogin(t, f.UserEmail, "aperture")

	r := s.Do(t, "POST", "/auth/logout", f.UserAccess, map[string]string{"refresh_token": f.UserRefresh})
	if wantStatus(t, r, http.StatusNoContent) && len(r.Raw) != 0 {
		t.Errorf("204 with a body: %q", r.Raw)
	}
	wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}), http.StatusUnauthorized, "invalid_token")
	// Only that session ended.
	second = testenv.PairOf(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": second.Refresh}))

	// Someone else's refresh token cannot be logged out.
	wantProblem(t, s.Do(t, "POST", "/auth/logout", f.OwnerAccess, map[string]string{"refresh_token": third.Refresh}), http.StatusForbidden, "forbidden")
	third = testenv.PairOf(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": third.Refresh}))

	// No body: every session of the caller ends, nobody else's.
	mustStatus(t, s.Do(t, "POST", "/auth/logout", f.UserAccess, nil), http.StatusNoContent)
	for _, rt := range []string{second.Refresh, third.Refresh} {
		wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": rt}), http.StatusUnauthorized, "invalid_token")
	}
	testenv.PairOf(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.OwnerRefresh}))
	// An empty JSON object is "no refresh token" too.
	fresh := s.MustLogin(t, f.UserEmail, "aperture")
	mustStatus(t, s.Do(t, "POST", "/auth/logout", fresh.Access, `{}`), http.StatusNoContent)
	wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": fresh.Refresh}), http.StatusUnauthorized, "invalid_token")

	wantUnauthenticated(t, s.Do(t, "POST", "/auth/logout", "", map[string]string{"refresh_token": f.OwnerRefresh}))
}

// A logout whose body is empty but sent without a Content-Length (chunked, as streaming
// clients and proxies send it) has no refresh token: it ends every session, like no body.
func TestLogout_EmptyChunkedBodyEndsEverySessionLikeNoBody(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "chunky")
	req, err := http.NewRequest("POST", s.Base+"/auth/logout", io.NopCloser(strings.NewReader("")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // unknown length: sent chunked
	req.Header.Set("Authorization", "Bearer "+f.UserAccess)
	resp, err := s.HC.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("POST /auth/logout with an empty chunked body → %d %s; want 204", resp.StatusCode, bytes.TrimSpace(body))
	}
	wantProblem(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}), http.StatusUnauthorized, "invalid_token")
}
