package caddymodule_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// The JWT part of the attack suite (issue 14). Every forged token is tried where a token is
// read: the gateway (saas_auth in front of the upstream), a user route (/me) and an owner route
// of the control API (which re-reads the stored role). Each must be refused with 401
// invalid_token and a Bearer challenge, and none may reach the upstream. A new kind of forgery
// is one more row of attackTokens.

// attackTenant is the tenant whose owner the forged tokens impersonate.
const attackTenant = "gruber"

// attackGateway runs the control API and a tenant site ("gw") of the full pipeline.
func attackGateway(t *testing.T) (*gateway, *testenv.TenantFixture) {
	t.Helper()
	g := startGateway(t, gatewayConfig{sites: []gatewaySite{{"gw", pipeline}}})
	return g, g.NewTenant(t, attackTenant)
}

// ownerClaims are the claims of a valid access token of f's owner; change alters them.
func ownerClaims(f *testenv.TenantFixture, change func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": testIssuer, "sub": f.OwnerID, "tid": f.ID, "role": "owner", "typ": "access",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "attack-" + unique(),
	}
	if change != nil {
		change(c)
	}
	return c
}

// signWithHeader signs claims with HS256 and our secret, adding header parameters.
func signWithHeader(t *testing.T, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	raw, err := tok.SignedString([]byte(testenv.JWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// algConfusion is a token whose header names alg over an HS256 signature with our secret: a
// verifier that trusted the header's alg, not an allow-list, could be led to check it wrongly.
func algConfusion(t *testing.T, alg string, claims jwt.MapClaims) string {
	t.Helper()
	parts := strings.Split(signWithHeader(t, claims, nil), ".")
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))
	sig, err := jwt.SigningMethodHS256.Sign(header+"."+parts[1], []byte(testenv.JWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return header + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// connRecorder is a TCP listener that counts every connection made to it: a URL in a token
// header points here, so any fetch the verifier makes is seen.
type connRecorder struct {
	ln    net.Listener
	conns atomic.Int64
}

func recordConnections(t *testing.T) *connRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &connRecorder{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return r
}

func (r *connRecorder) url(path string) string { return "http://" + r.ln.Addr().String() + path }

// attackTokens are the forged or misused tokens of f's owner, each by its name.
func attackTokens(t *testing.T, f *testenv.TenantFixture, fetch *connRecorder) []struct{ name, token string } {
	secret := []byte(testenv.JWTSecret)
	ago := func(d time.Duration) int64 { return time.Now().Add(-d).Unix() }
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims { return ownerClaims(f, change) }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return []struct{ name, token string }{
		{"AlgNone", mintToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))},
		{"AlgNoneUnsigned", strings.Join(strings.Split(mintToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), ".")[:2], ".") + "."},
		{"HS256OtherKey", mintToken(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), claims(nil))},
		{"HS384", mintToken(t, jwt.SigningMethodHS384, secret, claims(nil))},
		{"HS512", mintToken(t, jwt.SigningMethodHS512, secret, claims(nil))},
		{"RS256", mintToken(t, jwt.SigningMethodRS256, rsaKey, claims(nil))},
		{"RS256HeaderHMACSignature", algConfusion(t, "RS256", claims(nil))},
		{"KidPath", signWithHeader(t, claims(nil), map[string]any{"kid": "../../../../dev/null"})},
		{"KidURL", signWithHeader(t, claims(nil), map[string]any{"kid": fetch.url("/kid")})},
		{"JKU", signWithHeader(t, claims(nil), map[string]any{"jku": fetch.url("/jwks.json")})},
		{"X5U", signWithHeader(t, claims(nil), map[string]any{"x5u": fetch.url("/cert.pem")})},
		{"EmbeddedJWK", signWithHeader(t, claims(nil), map[string]any{"jwk": map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString(secret)}})},
		{"NoExp", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"ExpPastLeeway", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = ago(2*time.Hour), ago(time.Minute)
		}))},
		{"NbfInTheFuture", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = ago(-10 * time.Minute) }))},
		{"IatInTheFuture", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iat"] = ago(-10 * time.Minute) }))},
		{"WrongIssuer", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
		{"TypRefresh", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["typ"] = "refresh" }))},
		{"TypMFA", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["typ"] = "mfa" }))},
		{"TypInvitation", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["typ"] = "invitation" }))},
		// Over Verify's 4 KiB cap but under Caddy's 16 KiB header limit: refused unparsed.
		{"Payload8KB", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("A", 8<<10) }))},
	}
}

func TestAttackJWT_ForgedTokensAreRefusedByGatewayAndControlAPI(t *testing.T) {
	g, f := attackGateway(t)
	fetch := recordConnections(t)

	// The minting is right: the owner's untouched token passes all three doors.
	valid := mintToken(t, jwt.SigningMethodHS256, []byte(testenv.JWTSecret), ownerClaims(f, nil))
	mustStatus(t, g.get(t, "gw", attackTenant, valid), http.StatusOK)
	mustStatus(t, g.Do(t, "GET", "/me", valid, nil), http.StatusOK)
	mustStatus(t, g.Do(t, "GET", "/tenants/"+attackTenant, valid, nil), http.StatusOK)
	reached := g.up.Count()

	for _, tt := range attackTokens(t, f, fetch) {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			wantUnauthenticated(t, g.get(t, "gw", attackTenant, tt.token))
			wantUnauthenticated(t, g.Do(t, "GET", "/me", tt.token, nil))
			wantUnauthenticated(t, g.Do(t, "GET", "/tenants/"+attackTenant, tt.token, nil))
			wantUnauthenticated(t, g.Do(t, "POST", "/tenants/"+attackTenant+"/invitations", tt.token,
				map[string]string{"email": "mallory@" + attackTenant + ".test", "role": "owner"}))
			// A refusal is a length check or one HMAC: a generous bound still catches a
			// verifier that waits on a fetch.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refusing the token four times took %v", d)
			}
		})
	}
	// A 100 KiB payload never reaches a handler: Caddy refuses a header block over 16 KiB
	// (max_header_size) while reading it, before any token is parsed.
	t.Run("Payload100KB", func(t *testing.T) {
		huge := mintToken(t, jwt.SigningMethodHS256, []byte(testenv.JWTSecret), ownerClaims(f, func(c jwt.MapClaims) {
			c["pad"] = strings.Repeat("A", 100<<10)
		}))
		for _, r := range []testenv.Response{
			g.get(t, "gw", attackTenant, huge),
			g.Do(t, "GET", "/me", huge, nil),
			g.Do(t, "GET", "/tenants/"+attackTenant, huge, nil),
		} {
			wantStatus(t, r, http.StatusRequestHeaderFieldsTooLarge)
		}
	})
	if n := g.up.Count() - reached; n != 0 {
		t.Errorf("forged tokens reached the upstream %d times", n)
	}
	// kid, jku and x5u pointed at the recorder: nothing may have fetched them.
	if n := fetch.conns.Load(); n != 0 {
		t.Errorf("token headers made the gateway open %d connections to the URLs they named", n)
	}
}

// A deleted user's token is still well signed: the control plane, which reads the account,
// refuses it (the gateway trusts a token for at most access_ttl, SPEC §4).
func TestAttackJWT_DeletedUsersTokenIsRefusedByTheControlPlane(t *testing.T) {
	g, f := attackGateway(t)
	mustStatus(t, g.Do(t, "GET", "/me", f.OwnerAccess, nil), http.StatusOK)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	users := g.apiServer.store(t).C(store.TenantCollection(attackTenant, store.SuffixUsers))
	res, err := users.DeleteOne(ctx, bson.D{{Key: "_id", Value: f.OwnerID}})
	if err != nil || res.DeletedCount != 1 {
		t.Fatalf("deleting the owner: %v, %+v", err, res)
	}
	wantUnauthenticated(t, g.Do(t, "GET", "/me", f.OwnerAccess, nil))
	wantUnauthenticated(t, g.Do(t, "GET", "/tenants/"+attackTenant, f.OwnerAccess, nil))
	wantUnauthenticated(t, g.Do(t, "GET", "/tenants/"+attackTenant+"/users", f.OwnerAccess, nil))
	// The other member is untouched.
	mustStatus(t, g.Do(t, "GET", "/me", f.UserAccess, nil), http.StatusOK)
}

// An admin's suspension stops a tenant's members at the gateway (402) and stops their writes
// on the control plane, whatever their still-valid tokens say.
func TestAttackJWT_SuspendedTenantsTokensAreRefused(t *testing.T) {
	g, f := attackGateway(t)
	admin := g.AdminToken(t)
	g.PatchTenant(t, admin, attackTenant, map[string]string{"status": "suspended"})

	before := g.up.Count()
	for _, tok := range []string{f.OwnerAccess, f.UserAccess} {
		wantProblem(t, g.get(t, "gw", attackTenant, tok), http.StatusPaymentRequired, "tenant_suspended")
	}
	if n := g.up.Count() - before; n != 0 {
		t.Errorf("a suspended tenant's requests reached the upstream %d times", n)
	}
	writes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/tenants/" + attackTenant + "/invitations", map[string]string{"email": "new@" + attackTenant + ".test", "role": "user"}},
		{"PATCH", "/tenants/" + attackTenant + "/users/" + f.UserID, map[string]string{"role": "owner"}},
		{"PATCH", "/tenants/" + attackTenant, map[string]string{"status": "active"}},
		{"POST", "/tenants/" + attackTenant + "/webhook-endpoints", map[string]any{"url": "https://hooks.example/x", "events": []string{"member.joined"}}},
	}
	for _, w := range writes {
		wantProblem(t, g.Do(t, w.method, w.path, f.OwnerAccess, w.body), http.StatusPaymentRequired, "tenant_suspended")
	}
	// Nothing changed: the user is still a user and the tenant still suspended.
	if role := g.users(t, admin, attackTenant)[f.UserID]; role != "user" {
		t.Errorf("the suspended owner's role change went through: the user is now %q", role)
	}
	r := g.Do(t, "GET", "/tenants/"+attackTenant, admin, nil)
	mustStatus(t, r, http.StatusOK)
	if s := r.Str("status"); s != "suspended" {
		t.Errorf("the tenant is %q after its suspended owner patched it, want suspended", s)
	}
}
