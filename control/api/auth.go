package api

import (
	"net/http"
	"strings"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/store"
)

type signupBody struct {
	Email    string `json:"email" doc:"required,format=email,maxLength=254"`
	Password string `json:"password" doc:"required,minLength=8,maxLength=128"`
	// Tenant: the new tenant's name (its id is the slug) or, with an invitation, its id.
	Tenant      string `json:"tenant" doc:"maxLength=100"`
	InviteToken string `json:"invite_token" doc:"maxLength=128"`
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
	return writeJSON(w, http.StatusCreated, signupResponse{
		Message: "User registered successfully.", UserID: res.UserID, TenantID: res.TenantID, Role: res.Role,
	})
}

type loginBody struct {
	Email    string `json:"email" doc:"required,maxLength=254"`
	Password string `json:"password" doc:"required,maxLength=512"`
	Tenant   string `json:"tenant" doc:"maxLength=100"`
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
	RefreshToken string `json:"refresh_token" doc:"required"`
}

// logoutBody names the session to end; without it (or with no body) every session of the
// caller ends.
type logoutBody struct {
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
	var b logoutBody
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
	out := meResponse{UserID: u.ID, Email: u.Email, Role: u.Role, TenantID: c.principal.TenantID, CreatedAt: u.CreatedAt}
	if c.principal.TenantID != store.SystemTenant {
		t, err := a.Tenants.Lookup(r.Context(), c.principal.TenantID)
		if err != nil {
			return err
		}
		view := t.MemberView()
		out.Tenant = &view
	}
	return writeJSON(w, http.StatusOK, out)
}
