package account

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"slices"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/token"
)

var (
	ErrMFARequired           = errs.E(errs.KindUnauthorized, "mfa_required", "This account needs its second factor: POST the mfa_token and a code to /auth/mfa/verify.")
	ErrInvalidMFACode        = errs.E(errs.KindUnauthorized, "invalid_mfa_code", "The code is wrong, expired or already used.")
	ErrMFANotEnrolled        = errs.E(errs.KindConflict, "mfa_not_enrolled", "Start with POST /auth/mfa/enroll.")
	ErrMFANotEnabled         = errs.E(errs.KindConflict, "mfa_not_enabled", "MFA is not on for this account.")
	ErrMFAAlreadyEnabled     = errs.E(errs.KindConflict, "mfa_already_enabled", "MFA is already on; disable it first to enrol a new secret.")
	ErrMFAEnrollmentRequired = errs.E(errs.KindForbidden, "mfa_enrollment_required", "Your tenant requires MFA: enrol with POST /auth/mfa/enroll and /auth/mfa/confirm.")
)

// Enrollment is what POST /auth/mfa/enroll answers: the only time the secret is shown.
type Enrollment struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
	QRCode     string `json:"qr_png"` // a data: URI
}

// MFACodes is the answer of confirm and of regenerating the recovery codes.
type MFACodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// MFAProof is a second factor: a TOTP code or one recovery code.
type MFAProof struct {
	Code         string
	RecoveryCode string
}

// EnrollMFA makes a new secret and keeps it sealed, pending a first code (ConfirmMFA).
func (m *Manager) EnrollMFA(ctx context.Context, p identity.Principal, actor identity.Actor) (*Enrollment, error) {
	u, err := m.Me(ctx, p)
	if err != nil {
		return nil, err
	}
	if u.MFAEnabled() {
		return nil, ErrMFAAlreadyEnabled
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: m.Keys.Issuer, AccountName: u.Email,
		Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, errs.Internal(err, "Could not make a secret.")
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return nil, errs.Internal(err, "Could not draw the QR code.")
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, errs.Internal(err, "Could not draw the QR code.")
	}
	sealed, err := m.sealSecret(p.TenantID, u.ID, key.Secret())
	if err != nil {
		return nil, errs.Internal(err, "Could not seal the secret.")
	}
	if err := m.Store.SetMFA(ctx, p.TenantID, u.ID, &MFA{Pending: sealed}); err != nil {
		return nil, storeErr(err, "Could not store the secret.")
	}
	m.Audit.Record(ctx, p.TenantID, actor, audit.ActionMFAEnroll, u.ID, audit.OutcomeSuccess, nil)
	return &Enrollment{Secret: key.Secret(), OTPAuthURL: key.URL(),
		QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// ConfirmMFA switches MFA on with the pending secret's first valid code and hands out the
// recovery codes.
func (m *Manager) ConfirmMFA(ctx context.Context, p identity.Principal, actor identity.Actor, code string) (*MFACodes, error) {
	u, err := m.Me(ctx, p)
	if err != nil {
		return nil, err
	}
	if u.MFAEnabled() {
		return nil, ErrMFAAlreadyEnabled
	}
	if u.MFA == nil || u.MFA.Pending == "" {
		return nil, ErrMFANotEnrolled
	}
	step, err := m.checkFactor(ctx, actor, p.TenantID, u, u.MFA.Pending, MFAProof{Code: code})
	if err != nil {
		return nil, err
	}
	codes, hashes := newRecoveryCodes()
	mfa := &MFA{Enabled: true, Secret: u.MFA.Pending, LastStep: step, Recovery: hashes}
	if err := m.Store.SetMFA(ctx, p.TenantID, u.ID, mfa); err != nil {
		return nil, storeErr(err, "Could not switch MFA on.")
	}
	m.Audit.Record(ctx, p.TenantID, actor, audit.ActionMFAConfirm, u.ID, audit.OutcomeSuccess, nil)
	return &MFACodes{RecoveryCodes: codes}, nil
}

// DisableMFA switches MFA off, on a current code.
func (m *Manager) DisableMFA(ctx context.Context, p identity.Principal, actor identity.Actor, code string) error {
	u, err := m.enabledUser(ctx, p)
	if err != nil {
		return err
	}
	if _, err := m.checkFactor(ctx, actor, p.TenantID, u, u.MFA.Secret, MFAProof{Code: code}); err != nil {
		return err
	}
	if err := m.Store.SetMFA(ctx, p.TenantID, u.ID, nil); err != nil {
		return storeErr(err, "Could not switch MFA off.")
	}
	m.Audit.Record(ctx, p.TenantID, actor, audit.ActionMFADisable, u.ID, audit.OutcomeSuccess, nil)
	return nil
}

// RegenerateRecoveryCodes replaces every recovery code, on a current code.
func (m *Manager) RegenerateRecoveryCodes(ctx context.Context, p identity.Principal, actor identity.Actor, code string) (*MFACodes, error) {
	u, err := m.enabledUser(ctx, p)
	if err != nil {
		return nil, err
	}
	step, err := m.checkFactor(ctx, actor, p.TenantID, u, u.MFA.Secret, MFAProof{Code: code})
	if err != nil {
		return nil, err
	}
	codes, hashes := newRecoveryCodes()
	mfa := *u.MFA
	mfa.LastStep, mfa.Recovery = max(mfa.LastStep, step), hashes
	if err := m.Store.SetMFA(ctx, p.TenantID, u.ID, &mfa); err != nil {
		return nil, storeErr(err, "Could not store the recovery codes.")
	}
	m.Audit.Record(ctx, p.TenantID, actor, audit.ActionMFARecovery, u.ID, audit.OutcomeSuccess, nil)
	return &MFACodes{RecoveryCodes: codes}, nil
}

// VerifyMFA completes a login: the MFA step token from the password check and a second factor
// give the tokens a login without MFA gives. The step token is spent on success only, so a
// mistyped code costs a retry, not a new login; the account's back-off bounds the retries.
func (m *Manager) VerifyMFA(ctx context.Context, actor identity.Actor, mfaToken string, proof MFAProof) (*TokenPair, error) {
	t, err := m.Keys.VerifyMFA(mfaToken)
	if err != nil {
		return nil, err
	}
	p := t.Principal
	u, err := m.Store.UserByID(ctx, p.TenantID, p.UserID)
	if err == ErrUserNotFound {
		return nil, token.ErrInvalidMFAToken
	}
	if err != nil {
		return nil, errs.Internal(err, "Could not read the account.")
	}
	if !u.MFAEnabled() {
		return nil, token.ErrInvalidMFAToken
	}
	actor.TenantID, actor.UserID, actor.Role = p.TenantID, u.ID, u.Role
	step, err := m.checkFactor(ctx, actor, p.TenantID, u, u.MFA.Secret, proof)
	if err != nil {
		return nil, err
	}
	won, err := m.Store.ClaimOnce(ctx, "mfa_token:"+t.ID, t.ExpiresAt.Add(token.Leeway))
	if err != nil {
		return nil, errs.Internal(err, "Could not spend the MFA token.")
	}
	if !won {
		return nil, token.ErrInvalidMFAToken
	}
	if step > 0 {
		mfa := *u.MFA
		mfa.LastStep = max(mfa.LastStep, step)
		if err := m.Store.SetMFA(ctx, p.TenantID, u.ID, &mfa); err != nil {
			return nil, storeErr(err, "Could not record the code.")
		}
	}
	m.Audit.Record(ctx, p.TenantID, actor, audit.ActionMFAVerify, u.ID, audit.OutcomeSuccess, nil)
	return m.issue(ctx, p.TenantID, u, "")
}

func (m *Manager) enabledUser(ctx context.Context, p identity.Principal) (*User, error) {
	u, err := m.Me(ctx, p)
	if err != nil {
		return nil, err
	}
	if !u.MFAEnabled() {
		return nil, ErrMFANotEnabled
	}
	return u, nil
}

// challengeMFA answers a right password of an account with MFA on: no tokens yet, an MFA step
// token instead. The back-off count is not reset here but by the second factor, so that
// knowing the password does not buy fresh guesses at the code.
func (m *Manager) challengeMFA(ctx context.Context, actor identity.Actor, c *loginCheck) error {
	raw, err := m.Keys.IssueMFA(identity.Principal{UserID: c.user.ID, TenantID: c.tenantID, Role: c.user.Role})
	if err != nil {
		return errs.Internal(err, "Could not sign the token.")
	}
	actor.TenantID, actor.UserID, actor.Role = c.tenantID, c.user.ID, c.user.Role
	m.Audit.Record(ctx, c.tenantID, actor, audit.ActionLogin, c.user.ID, audit.OutcomeSuccess,
		map[string]any{"second_factor": "required"})
	e := *ErrMFARequired
	e.Extra = map[string]any{"mfa_token": raw}
	return &e
}

// checkFactor checks a code against the sealed secret, or a recovery code, as an attempt on
// the account's login back-off. It returns the accepted code's time step (0 for a recovery
// code). A code is accepted once: its step must be later than the last accepted one, and
// the step is claimed so that two requests carrying it at once do not both pass.
func (m *Manager) checkFactor(ctx context.Context, actor identity.Actor, tenantID string, u *User, sealed string, proof MFAProof) (int64, error) {
	key := loginKey(tenantID, u.Email)
	failures, locked, err := m.reserveAttempt(ctx, key)
	if err != nil {
		return 0, err
	}
	if locked > 0 {
		return 0, lockedErr(locked)
	}
	step, ok, err := m.acceptFactor(ctx, tenantID, u, sealed, proof)
	if err != nil {
		return 0, err
	}
	if !ok {
		m.Audit.Record(ctx, tenantID, actor, audit.ActionMFAVerify, u.ID, audit.OutcomeFailure,
			map[string]any{"failures": failures.Count})
		if until := lockedUntil(failures); until.After(m.now()) {
			return 0, lockedErr(until.Sub(m.now()))
		}
		return 0, ErrInvalidMFACode
	}
	_ = m.Store.ResetLogin(ctx, key)
	if step == 0 {
		m.Audit.Record(ctx, tenantID, actor, audit.ActionMFARecoveryUse, u.ID, audit.OutcomeSuccess,
			map[string]any{"recovery_codes_left": len(u.MFA.Recovery) - 1})
	}
	return step, nil
}

func (m *Manager) acceptFactor(ctx context.Context, tenantID string, u *User, sealed string, proof MFAProof) (int64, bool, error) {
	if proof.RecoveryCode != "" {
		if proof.Code != "" || !u.MFAEnabled() {
			return 0, false, nil
		}
		ok, err := m.spendRecoveryCode(ctx, tenantID, u, proof.RecoveryCode)
		return 0, ok, err
	}
	secret, err := m.openSecret(tenantID, u.ID, sealed)
	if err != nil {
		return 0, false, errs.Internal(err, "Could not open the MFA secret.")
	}
	step := matchStep(secret, proof.Code, m.now())
	if step == 0 || step <= u.MFA.LastStep {
		return 0, false, nil
	}
	won, err := m.Store.ClaimOnce(ctx, "totp:"+tenantID+":"+u.ID+":"+strconv.FormatInt(step, 10), m.now().Add(2*(totpSkew+1)*totpPeriod*time.Second))
	if err != nil {
		return 0, false, errs.Internal(err, "Could not record the code.")
	}
	return step, won, nil
}

// spendRecoveryCode accepts one of u's recovery codes once: the claim on its hash lets one
// request through, and the code leaves the stored list.
func (m *Manager) spendRecoveryCode(ctx context.Context, tenantID string, u *User, code string) (bool, error) {
	hash := hashRecoveryCode(code)
	i := slices.Index(u.MFA.Recovery, hash)
	if i < 0 {
		return false, nil
	}
	won, err := m.Store.ClaimOnce(ctx, "recovery:"+tenantID+":"+u.ID+":"+hash, m.now().Add(24*time.Hour))
	if err != nil || !won {
		return false, storeErr(err, "Could not spend the recovery code.")
	}
	mfa := *u.MFA
	mfa.Recovery = slices.Delete(slices.Clone(mfa.Recovery), i, i+1)
	if err := m.Store.SetMFA(ctx, tenantID, u.ID, &mfa); err != nil {
		return false, storeErr(err, "Could not spend the recovery code.")
	}
	return true, nil
}
