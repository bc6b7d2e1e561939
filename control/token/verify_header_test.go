package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/saasgate/saasgate/control/identity"
)

// A token signed with our own secret is still refused when its header names a key or an
// extension: Issue never writes one, so such a token was crafted, and honouring kid/jku/x5u
// is how a verifier gets pointed at an attacker's key.
func TestVerify_RefusesHeaderParametersWeNeverIssue(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := testKeys(t, now)
	p := identity.Principal{UserID: "usr_1", TenantID: "acme", Role: identity.RoleUser}
	claims := Claims{TenantID: p.TenantID, Role: string(p.Role), Type: TypeAccess, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "saasgate", Subject: p.UserID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}}
	sign := func(header map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		for name, v := range header {
			tok.Header[name] = v
		}
		raw, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if got, err := k.Verify(sign(nil)); err != nil || got != p {
		t.Fatalf("the untouched token: %v, %v; want %v", got, err, p)
	}
	for name, v := range map[string]any{
		"kid": "../../keys/other", "jku": "https://evil.example/jwks.json", "x5u": "https://evil.example/cert.pem",
		"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}, "x5c": []string{"MIIB"}, "crit": []string{"exp"}, "cty": "JWT",
	} {
		if _, err := k.Verify(sign(map[string]any{name: v})); err == nil {
			t.Errorf("a token with header %s was accepted", name)
		}
	}
}
