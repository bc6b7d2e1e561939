package caddymodule_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// saas_auth lets access tokens through and nothing else that is signed with the same secret or
// issued by the same control plane: an MFA step token, a refresh token, an invitation.
func TestGateway_AuthRefusesMFAAndOtherNonAccessTokens(t *testing.T) {
	g := startGateway(t, gatewayConfig{
		options: "plan free {\n rate 1000/1h\n}",
		sites:   []gatewaySite{{"gw", pipeline}},
	})
	acme := g.NewTenant(t, "acme")
	r := g.Do(t, "POST", "/auth/mfa/enroll", acme.OwnerAccess, nil)
	mustStatus(t, r, http.StatusOK)
	code, err := totp.GenerateCodeCustom(r.Str("secret"), time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, g.Do(t, "POST", "/auth/mfa/confirm", acme.OwnerAccess, map[string]string{"code": code}), http.StatusOK)
	login := g.Login(t, acme.OwnerEmail, "correct-horse-42", "acme")
	mfaToken := login.Str("mfa_token")
	if login.Status != http.StatusUnauthorized || login.Code() != "mfa_required" || mfaToken == "" {
		t.Fatalf("login with MFA on: %v", login)
	}
	invite := g.MustInvite(t, acme.OwnerAccess, "acme", "new@acme.test", "user")

	if r := g.get(t, "gw", "acme", acme.OwnerAccess); r.Status != http.StatusOK {
		t.Fatalf("the access token: %v", r)
	}
	for name, tok := range map[string]string{"mfa_token": mfaToken, "refresh token": acme.OwnerRefresh, "invitation": invite} {
		if r := g.get(t, "gw", "acme", tok); r.Status != http.StatusUnauthorized || r.Code() != "invalid_token" {
			t.Errorf("saas_auth with the %s: %v; want 401 invalid_token", name, r)
		}
	}
	if r := g.Do(t, "GET", "/me", mfaToken, nil); r.Status != http.StatusUnauthorized || r.Code() != "invalid_token" {
		t.Errorf("/me with the mfa_token: %v; want 401 invalid_token", r)
	}
}
