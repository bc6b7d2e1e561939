package testenv

import (
	"net/http"
	"testing"
)

// The accounts of every gateway StartSaas and NewSaas configure: the platform admin the saas
// app creates at start, the signing secret (shared by replicas, so a token issued by one is
// accepted by all) and the password the account fixtures give every user.
const (
	JWTSecret     = "api-test-signing-secret-0123456789abcdef"
	AdminEmail    = "root@platform.test"
	AdminPassword = "platform-admin-password"
	Password      = "correct-horse-42"
)

// SignupBody is the body of POST /auth/signup; invite "" signs up for a new tenant.
func SignupBody(email, password, tenant, invite string) map[string]string {
	b := map[string]string{"email": email, "password": password, "tenant": tenant}
	if invite != "" {
		b["invite_token"] = invite
	}
	return b
}

// Signup is POST /auth/signup.
func (c *Client) Signup(t testing.TB, email, password, tenant, invite string) Response {
	t.Helper()
	return c.Do(t, "POST", "/auth/signup", "", SignupBody(email, password, tenant, invite))
}

// MustSignup signs up with Password and returns the new user's id.
func (c *Client) MustSignup(t testing.TB, email, tenant, invite string) string {
	t.Helper()
	r := c.Signup(t, email, Password, tenant, invite)
	if r.Status != http.StatusCreated {
		t.Fatalf("%v; want status %d", r, http.StatusCreated)
	}
	return r.Str("user_id")
}

// Login is POST /auth/login; tenant "" leaves it to the directory.
func (c *Client) Login(t testing.TB, email, password, tenant string, opts ...Option) Response {
	t.Helper()
	body := map[string]string{"email": email, "password": password}
	if tenant != "" {
		body["tenant"] = tenant
	}
	return c.Do(t, "POST", "/auth/login", "", body, opts...)
}

// TokenPair is what a login or a refresh returns.
type TokenPair struct{ Access, Refresh string }

// PairOf reads the token pair of a 200 answer, failing the test on any other.
func PairOf(t testing.TB, r Response) TokenPair {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%v; want status %d", r, http.StatusOK)
	}
	p := TokenPair{Access: r.Str("access_token"), Refresh: r.Str("refresh_token")}
	if p.Access == "" || p.Refresh == "" {
		t.Fatalf("%v: no token pair", r)
	}
	return p
}

// MustLogin logs in with Password.
func (c *Client) MustLogin(t testing.TB, email, tenant string) TokenPair {
	t.Helper()
	return PairOf(t, c.Login(t, email, Password, tenant))
}

// AdminToken logs the platform admin in and returns its access token.
func (c *Client) AdminToken(t testing.TB) string {
	t.Helper()
	return PairOf(t, c.Login(t, AdminEmail, AdminPassword, "")).Access
}

// MustInvite creates an invitation and returns its token.
func (c *Client) MustInvite(t testing.TB, token, tenantID, email, role string) string {
	t.Helper()
	r := c.Do(t, "POST", "/tenants/"+tenantID+"/invitations", token, map[string]string{"email": email, "role": role})
	if r.Status != http.StatusCreated {
		t.Fatalf("%v; want status %d", r, http.StatusCreated)
	}
	tok, _ := r.Obj("invitation")["token"].(string)
	if tok == "" {
		t.Fatalf("%v: no invitation token", r)
	}
	return tok
}

// NewOwner signs owner@<id>.test up for a new tenant id (a valid slug, so it is also the
// tenant's id) and logs the owner in.
func (c *Client) NewOwner(t testing.TB, id string) (userID string, tokens TokenPair) {
	t.Helper()
	email := "owner@" + id + ".test"
	r := c.Signup(t, email, Password, id, "")
	if r.Status != http.StatusCreated {
		t.Fatalf("%v; want status %d", r, http.StatusCreated)
	}
	if got := r.Str("tenant_id"); got != id {
		t.Fatalf("signup for tenant %s created tenant %q", id, got)
	}
	return r.Str("user_id"), c.MustLogin(t, email, id)
}

// TenantFixture is a tenant with an owner and a user, both logged in.
type TenantFixture struct {
	ID                                             string
	OwnerEmail, OwnerID, OwnerAccess, OwnerRefresh string
	UserEmail, UserID, UserAccess, UserRefresh     string
}

// NewTenant makes tenant id with its owner (NewOwner) and a user invited by the owner.
func (c *Client) NewTenant(t testing.TB, id string) *TenantFixture {
	t.Helper()
	f := &TenantFixture{ID: id, OwnerEmail: "owner@" + id + ".test", UserEmail: "user@" + id + ".test"}
	var owner TokenPair
	f.OwnerID, owner = c.NewOwner(t, id)
	f.OwnerAccess, f.OwnerRefresh = owner.Access, owner.Refresh
	inv := c.MustInvite(t, f.OwnerAccess, id, f.UserEmail, "user")
	f.UserID = c.MustSignup(t, f.UserEmail, id, inv)
	user := c.MustLogin(t, f.UserEmail, id)
	f.UserAccess, f.UserRefresh = user.Access, user.Refresh
	return f
}

// PatchTenant changes a tenant as the platform admin (admin is its token).
func (c *Client) PatchTenant(t testing.TB, admin, id string, body map[string]string) {
	t.Helper()
	r := c.Do(t, "PATCH", "/tenants/"+id, admin, body)
	if r.Status != http.StatusOK {
		t.Fatalf("%v; want status %d", r, http.StatusOK)
	}
}
