package control_test

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"image/png"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// mfaAPI is the control API on an injected clock, with the store behind it for reading what
// was written.
type mfaAPI struct {
	*testenv.Client
	clock *testenv.Clock
	db    *store.DB
}

func newMFAAPI(t *testing.T) *mfaAPI {
	t.Helper()
	// The start of a TOTP step, so that advancing by whole steps never straddles one.
	clock := testenv.NewClock(time.Unix(time.Now().Unix()/30*30, 0).UTC())
	svc, _ := newService(t, control.Config{Now: clock.Now})
	srv := httptest.NewServer(http.HandlerFunc(svc.ServeAPI))
	t.Cleanup(srv.Close)
	return &mfaAPI{Client: testenv.NewClient(t, srv.URL), clock: clock, db: svc.Backend.DB}
}

// codeAt is the TOTP code of secret for the step holding at, computed as an authenticator app
// would.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// step moves the clock by n TOTP steps.
func (a *mfaAPI) step(n int) { a.clock.Set(a.clock.Now().Add(time.Duration(n) * 30 * time.Second)) }

func mustStatus(t *testing.T, r testenv.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code() != code {
		t.Fatalf("%v; want %d %q", r, status, code)
	}
}

// enable enrolls and confirms MFA for the holder of access and returns the secret and the
// recovery codes.
func (a *mfaAPI) enable(t *testing.T, access string) (string, []string) {
	t.Helper()
	r := a.Do(t, "POST", "/auth/mfa/enroll", access, nil)
	mustStatus(t, r, http.StatusOK, "")
	secret := r.Str("secret")
	if secret == "" || !strings.HasPrefix(r.Str("otpauth_url"), "otpauth://totp/") || !strings.Contains(r.Str("otpauth_url"), "secret="+secret) {
		t.Fatalf("enroll: %v", r)
	}
	r = a.Do(t, "POST", "/auth/mfa/confirm", access, map[string]string{"code": codeAt(t, secret, a.clock.Now())})
	mustStatus(t, r, http.StatusOK, "")
	var codes []string
	for _, c := range r.Body["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	if len(codes) != 10 {
		t.Fatalf("confirm gave %d recovery codes, want 10: %v", len(codes), r)
	}
	return secret, codes
}

// mfaToken logs in with the password and returns the mfa_token of the 401 mfa_required answer.
func (a *mfaAPI) mfaToken(t *testing.T, email, tenant string) string {
	t.Helper()
	r := a.Login(t, email, testenv.Password, tenant)
	mustStatus(t, r, http.StatusUnauthorized, "mfa_required")
	if r.Str("access_token") != "" || r.Str("mfa_token") == "" {
		t.Fatalf("login with MFA on: %v; want an mfa_token and no access token", r)
	}
	return r.Str("mfa_token")
}

func (a *mfaAPI) verify(t *testing.T, mfaToken, field, code string) testenv.Response {
	t.Helper()
	return a.Do(t, "POST", "/auth/mfa/verify", "", map[string]string{"mfa_token": mfaToken, field: code})
}

func (a *mfaAPI) auditActions(t *testing.T, access, tenant string) []string {
	t.Helper()
	r := a.Do(t, "GET", "/tenants/"+tenant+"/audit-logs?limit=100", access, nil)
	mustStatus(t, r, http.StatusOK, "")
	var actions []string
	for _, e := range r.Body["entries"].([]any) {
		e := e.(map[string]any)
		actions = append(actions, e["action"].(string)+":"+e["outcome"].(string))
	}
	return actions
}

func TestMFA_EnrollConfirmLoginVerifyRoundTrip(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	r := a.Do(t, "POST", "/auth/mfa/enroll", f.OwnerAccess, nil)
	mustStatus(t, r, http.StatusOK, "")
	qr, ok := strings.CutPrefix(r.Str("qr_png"), "data:image/png;base64,")
	raw, err := base64.StdEncoding.DecodeString(qr)
	if !ok || err != nil {
		t.Fatalf("qr_png is not a base64 PNG data URI: %.60q", r.Str("qr_png"))
	}
	if _, err := png.Decode(strings.NewReader(string(raw))); err != nil {
		t.Fatalf("qr_png does not decode as a PNG: %v", err)
	}
	secret := r.Str("secret")
	// Before confirm, MFA is not on: a login still gives tokens.
	testenv.PairOf(t, a.Login(t, f.OwnerEmail, testenv.Password, f.ID))
	mustStatus(t, a.Do(t, "POST", "/auth/mfa/confirm", f.OwnerAccess, map[string]string{"code": "000000x"}), http.StatusUnauthorized, "invalid_mfa_code")
	r = a.Do(t, "POST", "/auth/mfa/confirm", f.OwnerAccess, map[string]string{"code": codeAt(t, secret, a.clock.Now())})
	mustStatus(t, r, http.StatusOK, "")

	a.step(1)
	pair := testenv.PairOf(t, a.verify(t, a.mfaToken(t, f.OwnerEmail, f.ID), "code", codeAt(t, secret, a.clock.Now())))
	if me := a.Do(t, "GET", "/me", pair.Access, nil); me.Status != http.StatusOK || me.Str("user_id") != f.OwnerID {
		t.Fatalf("/me with the tokens of MFA verify: %v", me)
	}
	testenv.PairOf(t, a.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": pair.Refresh}))

	// Another member without MFA is untouched.
	testenv.PairOf(t, a.Login(t, f.UserEmail, testenv.Password, f.ID))

	actions := a.auditActions(t, pair.Access, f.ID)
	for _, want := range []string{"auth.mfa_enroll:success", "auth.mfa_confirm:success", "auth.mfa_verify:success", "auth.mfa_verify:failure"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit log has no %s: %v", want, actions)
		}
	}

	// Disable takes a fresh code; then a login gives tokens again.
	mustStatus(t, a.Do(t, "POST", "/auth/mfa/disable", pair.Access, map[string]string{"code": codeAt(t, secret, a.clock.Now())}), http.StatusUnauthorized, "invalid_mfa_code")
	a.step(1)
	mustStatus(t, a.Do(t, "POST", "/auth/mfa/disable", pair.Access, map[string]string{"code": codeAt(t, secret, a.clock.Now())}), http.StatusNoContent, "")
	testenv.PairOf(t, a.Login(t, f.OwnerEmail, testenv.Password, f.ID))
	if actions := a.auditActions(t, pair.Access, f.ID); !slices.Contains(actions, "auth.mfa_disable:success") {
		t.Errorf("audit log has no auth.mfa_disable: %v", actions)
	}
}

// A code is accepted once, and once a later step's code is used, an earlier step's is refused
// though still within the skew; the mfa_token is spent by its success, not by a wrong code.
func TestMFA_CodeAcceptedOnceAndNeverBeforeTheLastOne(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	secret, _ := a.enable(t, f.OwnerAccess)

	a.step(2)
	now := a.clock.Now()
	testenv.PairOf(t, a.verify(t, a.mfaToken(t, f.OwnerEmail, f.ID), "code", codeAt(t, secret, now)))

	tok := a.mfaToken(t, f.OwnerEmail, f.ID)
	mustStatus(t, a.verify(t, tok, "code", codeAt(t, secret, now)), http.StatusUnauthorized, "invalid_mfa_code")
	mustStatus(t, a.verify(t, tok, "code", codeAt(t, secret, now.Add(-30*time.Second))), http.StatusUnauthorized, "invalid_mfa_code")

	a.step(1)
	testenv.PairOf(t, a.verify(t, tok, "code", codeAt(t, secret, a.clock.Now())))
	// The next step's code is within the skew and unused, but the token is spent.
	mustStatus(t, a.verify(t, tok, "code", codeAt(t, secret, a.clock.Now().Add(30*time.Second))), http.StatusUnauthorized, "invalid_mfa_token")
}

func TestMFA_RecoveryCodeWorksOnce(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	_, codes := a.enable(t, f.OwnerAccess)

	pair := testenv.PairOf(t, a.verify(t, a.mfaToken(t, f.OwnerEmail, f.ID), "recovery_code", codes[3]))
	mustStatus(t, a.verify(t, a.mfaToken(t, f.OwnerEmail, f.ID), "recovery_code", codes[3]), http.StatusUnauthorized, "invalid_mfa_code")
	testenv.PairOf(t, a.verify(t, a.mfaToken(t, f.OwnerEmail, f.ID), "recovery_code", codes[4]))
	if actions := a.auditActions(t, pair.Access, f.ID); !slices.Contains(actions, "auth.mfa_recovery_code_used:success") {
		t.Errorf("audit log has no auth.mfa_recovery_code_used: %v", actions)
	}
}

// Regenerated recovery codes replace the old ones.
func TestMFA_RegeneratedRecoveryCodesReplaceTheOldOnes(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	secret, old := a.enable(t, f.OwnerAccess)
	a.step(1)
	r := a.Do(t, "POST", "/auth/mfa/recovery-codes", f.OwnerAccess, map[string]string{"code": codeAt(t, secret, a.clock.Now())})
	mustStatus(t, r, http.StatusOK, "")
	fresh, _ := r.Body["recovery_codes"].([]any)
	if len(fresh) != 10 {
		t.Fatalf("recovery-codes: %v", r)
	}
	mustStatus(t, a.verify(t, a.mfaToken(t, f.OwnerEmail, f.ID), "recovery_code", old[0]), http.StatusUnauthorized, "invalid_mfa_code")
	testenv.PairOf(t, a.verify(t, a.mfaToken(t, f.OwnerEmail, f.ID), "recovery_code", fresh[0].(string)))
}

// Wrong codes count on the account's login back-off: 20 of them end locked, and the right code
// is then refused too.
func TestMFA_WrongCodesBackOff(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	secret, _ := a.enable(t, f.OwnerAccess)
	a.step(1)
	now := a.clock.Now()
	valid := []string{codeAt(t, secret, now.Add(-30*time.Second)), codeAt(t, secret, now), codeAt(t, secret, now.Add(30*time.Second))}
	wrong := "000000"
	for slices.Contains(valid, wrong) {
		wrong = string(rune(wrong[0]+1)) + wrong[1:]
	}
	tok := a.mfaToken(t, f.OwnerEmail, f.ID)
	var last testenv.Response
	var invalid int
	for range 20 {
		last = a.verify(t, tok, "code", wrong)
		if last.Code() == "invalid_mfa_code" {
			invalid++
		}
	}
	mustStatus(t, last, http.StatusTooManyRequests, "login_locked")
	if invalid == 0 || invalid >= 5 || last.Header.Get("Retry-After") == "" {
		t.Fatalf("%d answers invalid_mfa_code before the lock (want 1 to 4), last %v", invalid, last)
	}
	mustStatus(t, a.verify(t, tok, "code", codeAt(t, secret, now)), http.StatusTooManyRequests, "login_locked")
	mustStatus(t, a.Login(t, f.OwnerEmail, testenv.Password, f.ID), http.StatusTooManyRequests, "login_locked")
}

// Tokens of one kind stand in for no other: an mfa_token is no access or refresh token, and
// neither an access, a refresh nor an invitation token is an mfa_token.
func TestMFA_TokensOfOneKindAreRefusedAsAnother(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	secret, _ := a.enable(t, f.OwnerAccess)
	mfaTok := a.mfaToken(t, f.OwnerEmail, f.ID)
	invite := a.MustInvite(t, f.OwnerAccess, f.ID, "new@acme.test", "user")

	for _, path := range []string{"GET /me", "GET /rate-limit", "POST /auth/mfa/enroll", "GET /tenants/acme", "POST /auth/logout"} {
		method, p, _ := strings.Cut(path, " ")
		for name, tok := range map[string]string{"mfa_token": mfaTok, "refresh token": f.OwnerRefresh, "invitation": invite} {
			mustStatusNamed(t, path+" with the "+name, a.Do(t, method, p, tok, nil), http.StatusUnauthorized, "invalid_token")
		}
	}
	mustStatus(t, a.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": mfaTok}), http.StatusUnauthorized, "invalid_token")
	mustStatus(t, a.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": f.OwnerAccess}), http.StatusUnauthorized, "invalid_token")
	code := codeAt(t, secret, a.clock.Now().Add(30*time.Second))
	for name, tok := range map[string]string{"access token": f.OwnerAccess, "refresh token": f.OwnerRefresh, "invitation": invite} {
		mustStatusNamed(t, "verify with the "+name, a.verify(t, tok, "code", code), http.StatusUnauthorized, "invalid_mfa_token")
	}
	// The same code with the real mfa_token passes: the refusals above were for the token.
	testenv.PairOf(t, a.verify(t, mfaTok, "code", code))
}

func mustStatusNamed(t *testing.T, what string, r testenv.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code() != code {
		t.Errorf("%s: %v; want %d %q", what, r, status, code)
	}
}

// With require_mfa, a member without MFA reaches only enroll, confirm, /me and logout, until
// they enrol.
func TestMFA_RequireMFABlocksMembersWithoutMFA(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	other := a.NewTenant(t, "globex")
	mustStatus(t, a.Do(t, "PATCH", "/tenants/acme", f.UserAccess, map[string]bool{"require_mfa": true}), http.StatusForbidden, "forbidden")
	r := a.Do(t, "PATCH", "/tenants/acme", f.OwnerAccess, map[string]bool{"require_mfa": true})
	mustStatus(t, r, http.StatusOK, "")
	if r.Body["require_mfa"] != true {
		t.Fatalf("PATCH require_mfa: %v", r)
	}

	blocked := []string{"GET /rate-limit", "GET /tenants/acme/audit-logs", "POST /auth/mfa/disable", "POST /auth/mfa/recovery-codes"}
	for _, route := range blocked {
		method, p, _ := strings.Cut(route, " ")
		mustStatusNamed(t, "user "+route, a.Do(t, method, p, f.UserAccess, map[string]string{"code": "123456"}), http.StatusForbidden, "mfa_enrollment_required")
	}
	mustStatus(t, a.Do(t, "GET", "/tenants/acme", f.OwnerAccess, nil), http.StatusForbidden, "mfa_enrollment_required")
	mustStatus(t, a.Do(t, "GET", "/me", f.UserAccess, nil), http.StatusOK, "")
	mustStatus(t, a.Do(t, "POST", "/auth/logout", f.OwnerAccess, nil), http.StatusNoContent, "")
	// Another tenant is not concerned.
	mustStatus(t, a.Do(t, "GET", "/rate-limit", other.UserAccess, nil), http.StatusOK, "")

	a.enable(t, f.UserAccess) // enroll and confirm are open to them
	for _, route := range blocked[:2] {
		method, p, _ := strings.Cut(route, " ")
		mustStatusNamed(t, "user with MFA "+route, a.Do(t, method, p, f.UserAccess, nil), http.StatusOK, "")
	}
}

// The stored TOTP secret is sealed: neither its text nor its bytes are in the user's record,
// before confirm or after.
func TestMFA_StoredSecretIsNotThePlainSecret(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	secret, codes := a.enable(t, f.OwnerAccess)
	raw, err := a.db.C(store.TenantCollection("acme", store.SuffixUsers)).FindOne(context.Background(), bson.D{{Key: "_id", Value: f.OwnerID}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	mfa, ok := raw.Lookup("mfa").DocumentOK()
	if !ok {
		t.Fatalf("no mfa document in the user's record: %v", raw)
	}
	stored, _ := mfa.Lookup("secret").StringValueOK()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	if stored == "" || strings.Contains(raw.String(), secret) || strings.Contains(string(raw), string(key)) {
		t.Fatalf("the user's record holds the plain secret: %v", raw)
	}
	if hashes, _ := mfa.Lookup("recovery").ArrayOK(); len(hashes) == 0 {
		t.Fatalf("no recovery code hashes in the user's record: %v", raw)
	}
	for _, c := range codes {
		if strings.Contains(raw.String(), c) || strings.Contains(raw.String(), strings.ReplaceAll(c, "-", "")) {
			t.Fatalf("the user's record holds recovery code %s in plain", c)
		}
	}
}

// A right password does not reset the back-off while MFA is on: knowing it buys no fresh
// guesses at the code.
func TestMFA_PasswordAloneDoesNotResetTheBackOff(t *testing.T) {
	a := newMFAAPI(t)
	f := a.NewTenant(t, "acme")
	a.enable(t, f.OwnerAccess)
	tok := a.mfaToken(t, f.OwnerEmail, f.ID)
	for range 3 {
		mustStatus(t, a.verify(t, tok, "code", "abcdef"), http.StatusUnauthorized, "invalid_mfa_code")
	}
	tok = a.mfaToken(t, f.OwnerEmail, f.ID)
	mustStatus(t, a.verify(t, tok, "code", "abcdef"), http.StatusTooManyRequests, "login_locked")
}
