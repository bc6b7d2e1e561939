package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
)

// Every verifier accepts its own kind of token and no other, whatever else the token gets right.
func TestVerify_EachKindOfTokenIsRefusedAsAnother(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := testKeys(t, now)
	p := identity.Principal{UserID: "usr_1", TenantID: "acme", Role: identity.RoleOwner}
	access, err := k.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	mfa, err := k.IssueMFA(p)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(typ string) string {
		c := Claims{TenantID: "acme", Role: "owner", Type: typ, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "saasgate", Subject: "usr_1", ID: "j1", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cache := NewVerifiedCache(k, 16, func(p identity.Principal) identity.Principal { return p })
	verifiers := map[string]func(string) (identity.Principal, error){
		"access": k.Verify,
		"cache":  cache.Verify,
		"mfa": func(raw string) (identity.Principal, error) {
			tok, err := k.VerifyMFA(raw)
			if err != nil {
				return identity.Principal{}, err
			}
			return tok.Principal, nil
		},
	}
	tokens := map[string]string{
		"access": access, "mfa": mfa,
		"typ refresh": signed("refresh"), "typ invitation": signed("invitation"), "no typ": signed(""),
		"refresh": "rt_" + RandomID(32),
	}
	for verifier, verify := range verifiers {
		for kind, raw := range tokens {
			got, err := verify(raw)
			own := kind == verifier || verifier == "cache" && kind == "access"
			if own && (err != nil || got != p) {
				t.Errorf("%s verifier on its own token: %+v, %v", verifier, got, err)
			}
			if !own && !errs.Is(err, "invalid_token") && !errs.Is(err, "invalid_mfa_token") {
				t.Errorf("%s verifier accepted a %s token: %+v, %v", verifier, kind, got, err)
			}
		}
	}
	if tok, err := k.VerifyMFA(mfa); err != nil || tok.ExpiresAt != now.Add(MFATTL) || tok.ID == "" {
		t.Errorf("mfa token: %+v, %v; want an id and expiry after %v", tok, err, MFATTL)
	}
}
