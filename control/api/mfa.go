package api

import (
	"net/http"

	"github.com/saasgate/saasgate/control/account"
)

// mfaExempt are the routes a member of a tenant that requires MFA reaches before enrolling:
// enough to enrol, see who they are, and leave.
var mfaExempt = map[string]bool{
	"POST /auth/mfa/enroll":  true,
	"POST /auth/mfa/confirm": true,
	"GET /me":                true,
	"POST /auth/logout":      true,
}

type mfaCodeBody struct {
	Code string `json:"code" doc:"required"`
}

// noBody is what a route without parameters accepts: nothing, or an empty object.
type noBody struct{}

func (a *API) mfaEnroll(w http.ResponseWriter, r *http.Request, c *call) error {
	var none noBody
	if err := decodeOptional(w, r, &none); err != nil {
		return err
	}
	e, err := a.Accounts.EnrollMFA(r.Context(), c.principal, c.actor)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

func (a *API) mfaConfirm(w http.ResponseWriter, r *http.Request, c *call) error {
	var b mfaCodeBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	codes, err := a.Accounts.ConfirmMFA(r.Context(), c.principal, c.actor, b.Code)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, codes)
}

func (a *API) mfaDisable(w http.ResponseWriter, r *http.Request, c *call) error {
	var b mfaCodeBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if err := a.Accounts.DisableMFA(r.Context(), c.principal, c.actor, b.Code); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) mfaRecoveryCodes(w http.ResponseWriter, r *http.Request, c *call) error {
	var b mfaCodeBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	codes, err := a.Accounts.RegenerateRecoveryCodes(r.Context(), c.principal, c.actor, b.Code)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, codes)
}

type mfaVerifyBody struct {
	MFAToken string `json:"mfa_token" doc:"required"`
	// One of Code (TOTP) and RecoveryCode.
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

func (a *API) mfaVerify(w http.ResponseWriter, r *http.Request, c *call) error {
	var b mfaVerifyBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	pair, err := a.Accounts.VerifyMFA(r.Context(), c.actor, b.MFAToken, account.MFAProof{Code: b.Code, RecoveryCode: b.RecoveryCode})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pair)
}
