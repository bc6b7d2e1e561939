package api

import (
	"net/http"
	"strings"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/store"
)

type signupBody struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	Tenant      string `json:"tenant"`
	InviteToken string `json:"invite_token"`
}

func (a *API) signup(w http.ResponseWriter, r *http.Request, c *call) error {
	var b signupBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	res, err := a.Accounts.Signup(r.Context(), c.actor, account.SignupRequest{
		Email: b.Email, Password: b.Password, Tenant: b.Tenant, InviteToken: b.InviteToken,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{
		"message":   "User registered successfully.",
		"user_id":   res.UserID,
		"tenant_id": res.TenantID,
		"role":      res.Role,
	})
}

type loginBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Tenant   string `json:"tenant"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request, c *call) error {
	var b loginBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	hint := strings.ToLower(strings.TrimSpace(b.Tenant))
	if hint == "" {
		hint = a.tenantHint(r)
	}
	pair, err := a.Accounts.Login(r.Context(), c.actor, account.LoginRequest{Email: b.Email, Password: b.Password, Tenant: hint})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pair)
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request, c *call) error {
	var b refreshBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	pair, err := a.Accounts.RefreshTokens(r.Context(), c.actor, b.RefreshToken)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pair)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, c *call) error {
	var b refreshBody
	if err := decodeOptional(w, r, &b); err != nil {
		return err
	}
	if err := a.Accounts.Logout(r.Context(), c.principal, c.actor, b.RefreshToken); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) me(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := a.Accounts.Me(r.Context(), c.principal)
	if err != nil {
		return err
	}
	out := map[string]any{
		"user_id":    u.ID,
		"email":      u.Email,
		"role":       u.Role,
		"tenant_id":  c.principal.TenantID,
		"created_at": u.CreatedAt,
	}
	if c.principal.TenantID != store.SystemTenant {
		t, err := a.Tenants.Lookup(r.Context(), c.principal.TenantID)
		if err != nil {
			return err
		}
		out["tenant"] = t.MemberView()
	}
	return writeJSON(w, http.StatusOK, out)
}
