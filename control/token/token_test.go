package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func testKeys(t *testing.T, now time.Time) *Keys {
	t.Helper()
	k, err := NewKeys(secret, "saasgate", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k.Now = func() time.Time { return now }
	return k
}

func TestNewKeys_RejectsShortSecret(t *testing.T) {
	if _, err := NewKeys([]byte("short"), "", 0); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
}

func TestIssue_CarriesEveryClaimAndVerifies(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := testKeys(t, now)
	p := identity.Principal{UserID: "usr_1", TenantID: "acme", Role: identity.RoleOwner}
	raw, err := k.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	var c Claims
	if _, err := jwt.NewParser(jwt.WithTimeFunc(k.Now)).ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return secret, nil }); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "saasgate" || c.Subject != "usr_1" || c.TenantID != "acme" || c.Role != "owner" || c.Type != "access" ||
		c.IssuedAt.Unix() != now.Unix() || c.ExpiresAt.Unix() != now.Add(time.Hour).Unix() || len(c.ID) < 16 {
		t.Fatalf("claims = %+v", c)
	}
	got, err := k.Verify(raw)
	if err != nil || got != p {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, p)
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify_RejectsBadTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := testKeys(t, now)
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "saasgate", "sub": "usr_1", "tid": "acme", "role": "user", "typ": "access",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "x"}
	}
	with := func(key string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good())
	hs512 := sign(t, jwt.SigningMethodHS512, secret, good())
	valid := sign(t, jwt.SigningMethodHS256, secret, good())
	tampered := valid[:len(valid)-2] + "AA"
	if strings.HasSuffix(valid, "AA") {
		tampered = valid[:len(valid)-2] + "BB"
	}
	tests := map[string]string{
		"alg none":              none,
		"alg HS512":             hs512,
		"other secret":          sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), good()),
		"tampered signature":    tampered,
		"no exp":                sign(t, jwt.SigningMethodHS256, secret, with("exp", nil)),
		"expired beyond leeway": sign(t, jwt.SigningMethodHS256, secret, with("exp", now.Add(-31*time.Second).Unix())),
		"issued in the future":  sign(t, jwt.SigningMethodHS256, secret, with("iat", now.Add(time.Minute).Unix())),
		"wrong issuer":          sign(t, jwt.SigningMethodHS256, secret, with("iss", "someone-else")),
		"no issuer":             sign(t, jwt.SigningMethodHS256, secret, with("iss", nil)),
		"wrong typ":             sign(t, jwt.SigningMethodHS256, secret, with("typ", "mfa")),
		"unknown role":          sign(t, jwt.SigningMethodHS256, secret, with("role", "superuser")),
		"no tenant":             sign(t, jwt.SigningMethodHS256, secret, with("tid", nil)),
		"no subject":            sign(t, jwt.SigningMethodHS256, secret, with("sub", nil)),
		"garbage":               "not.a.jwt",
		"empty":                 "",
		"oversized":             valid + strings.Repeat("A", 5000),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := k.Verify(raw)
			if !errs.Is(err, "invalid_token") {
				t.Fatalf("Verify accepted or misclassified: %v", err)
			}
		})
	}
	if _, err := k.Verify(sign(t, jwt.SigningMethodHS256, secret, with("exp", now.Add(-20*time.Second).Unix()))); err != nil {
		t.Fatalf("a token expired 20 s ago is within the 30 s leeway: %v", err)
	}
}

// FuzzVerify checks Verify against strictVerify, a reference written from the rules rather than
// with the JWT library, so that a regression in the library's options (an algorithm let back
// in, exp made optional, the issuer unchecked) fails the seed run. The seeds are signed with
// the real secret, so each one reaches the check it is there for.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	k, _ := NewKeys(secret, "saasgate", time.Hour)
	k.Now = func() time.Time { return now }
	good, _ := k.Issue(identity.Principal{UserID: "u", TenantID: "acme", Role: identity.RoleUser})
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "saasgate", "sub": "u", "tid": "acme", "role": "user", "typ": "access",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	seed := func(method jwt.SigningMethod, key any, c jwt.MapClaims) {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	seed(jwt.SigningMethodHS384, secret, claims(nil))
	seed(jwt.SigningMethodHS512, secret, claims(nil))
	seed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))
	seed(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }))
	seed(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-Leeway - time.Second).Unix() }))
	seed(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "someone-else" }))
	seed(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "iss") }))
	seed(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["typ"] = "mfa" }))
	seed(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }))
	seed(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }))
	for _, s := range []string{good, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := k.Verify(raw)
		if err != nil {
			return
		}
		want, ok := strictVerify(raw, now)
		if !ok || p != want {
			t.Fatalf("Verify accepted %q as %+v; the strict reference says %+v, %v", raw, p, want, ok)
		}
	})
}

// strictVerify is the access-token rule spelled out: HS256 over the first two segments with
// the secret, exp present and not past by more than Leeway, iat and nbf (when present) not
// ahead by more than Leeway, issuer "saasgate", typ access, a known role, a subject and a
// tenant id that is a DNS label.
func strictVerify(raw string, now time.Time) (identity.Principal, bool) {
	parts := strings.Split(raw, ".")
	if len(raw) > 4096 || len(parts) != 3 {
		return identity.Principal{}, false
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var c struct {
		Iss  string   `json:"iss"`
		Sub  string   `json:"sub"`
		Tid  string   `json:"tid"`
		Role string   `json:"role"`
		Typ  string   `json:"typ"`
		Exp  *float64 `json:"exp"`
		Iat  *float64 `json:"iat"`
		Nbf  *float64 `json:"nbf"`
	}
	if !decodeSegment(parts[0], &header) || header.Alg != "HS256" {
		return identity.Principal{}, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) || !decodeSegment(parts[1], &c) {
		return identity.Principal{}, false
	}
	t := float64(now.Unix())
	leeway := Leeway.Seconds()
	if c.Exp == nil || t >= *c.Exp+leeway || c.Iat != nil && t+leeway < *c.Iat || c.Nbf != nil && t+leeway < *c.Nbf {
		return identity.Principal{}, false
	}
	p := identity.Principal{UserID: c.Sub, TenantID: c.Tid, Role: identity.Role(c.Role)}
	if c.Iss != "saasgate" || c.Typ != TypeAccess || !p.Role.Valid() || p.UserID == "" || len(p.UserID) > 64 || !store.ValidTenantID(p.TenantID) {
		return identity.Principal{}, false
	}
	return p, true
}

func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	return err == nil && json.Unmarshal(b, v) == nil
}

// A derived key is the same for every holder of the secret, and another for another secret
// or purpose.
func TestKeys_Derive(t *testing.T) {
	a, _ := NewKeys([]byte("secret-one-secret-one-secret-one-!!"), "iss", time.Hour)
	b, _ := NewKeys([]byte("secret-one-secret-one-secret-one-!!"), "iss", time.Hour)
	c, _ := NewKeys([]byte("secret-two-secret-two-secret-two-!!"), "iss", time.Hour)
	if !bytes.Equal(a.Derive("x"), b.Derive("x")) || len(a.Derive("x")) != 32 {
		t.Fatal("two holders of one secret derive different keys")
	}
	if bytes.Equal(a.Derive("x"), c.Derive("x")) || bytes.Equal(a.Derive("x"), a.Derive("y")) {
		t.Fatal("another secret or purpose derives the same key")
	}
}
