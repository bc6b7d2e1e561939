package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/saasgate/saasgate/internal/testenv"
)

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
	f := s.NewTenant(t, "nakatomi")
	secret := []byte(testenv.JWTSecret)
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
	mustStatus(t, s.Do(t, "GET", "/me", mintToken(t, jwt.SigningMethodHS256, secret, claims(nil)), nil), http.StatusOK)
	mustStatus(t, s.Do(t, "GET", "/me", mintToken(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) {
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
			wantUnauthenticated(t, s.Do(t, "GET", "/me", tt.token, nil))
		})
	}
	t.Run("NotBearer", func(t *testing.T) {
		wantUnauthenticated(t, s.Do(t, "GET", "/me", "", nil, testenv.WithHeader("Authorization", "Basic "+f.UserAccess)))
		wantUnauthenticated(t, s.Do(t, "GET", "/me", "", nil, testenv.WithHeader("Authorization", "Bearer ")))
		wantUnauthenticated(t, s.Do(t, "GET", "/me", "", nil, testenv.WithHeader("Authorization", f.UserAccess)))
	})
	t.Run("ForgedAdminOnAdminRoute", func(t *testing.T) {
		forged := mintToken(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!!"), claims(func(c jwt.MapClaims) {
			c["role"], c["tid"] = "admin", "system"
		}))
		wantUnauthenticated(t, s.Do(t, "GET", "/tenants", forged, nil))
	})
}

// A token signed with the right secret whose tenant id is not a DNS label must be refused as
// invalid, not reach the store (which builds a collection name from it).
func TestAccessToken_TenantClaimThatIsNotADNSLabelIsRejected(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "weyland")
	for _, tid := range []string{"Not A Label!", "x", "$where"} {
		tok := mintToken(t, jwt.SigningMethodHS256, []byte(testenv.JWTSecret), jwt.MapClaims{
			"iss": testIssuer, "sub": f.UserID, "tid": tid, "role": "user", "typ": "access",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		})
		for _, route := range []struct{ method, path string }{{"GET", "/me"}, {"POST", "/auth/logout"}} {
			r, err := s.Send(route.method, route.path, tok, nil)
			if err != nil {
				t.Errorf("%s %s with tid %q: no HTTP answer (%v)", route.method, route.path, tid, err)
				continue
			}
			wantUnauthenticated(t, r)
		}
	}
	// The real user's sessions were not touched by the forged tokens' logouts.
	testenv.PairOf(t, s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.UserRefresh}))
}
