package token

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
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

func FuzzVerify(f *testing.F) {
	k, _ := NewKeys(secret, "saasgate", time.Hour)
	good, _ := k.Issue(identity.Principal{UserID: "u", TenantID: "acme", Role: identity.RoleUser})
	for _, s := range []string{good, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := k.Verify(raw)
		if err == nil && raw != good {
			// Only a correctly signed token may verify; any other input that passes would be a
			// forgery (the fuzzer cannot produce a valid HMAC by chance).
			if _, err2 := jwt.Parse(raw, func(*jwt.Token) (any, error) { return secret, nil }); err2 != nil {
				t.Fatalf("Verify accepted %q as %+v", raw, p)
			}
		}
	})
}
