package api

import (
	"net/http"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
)

type createTenantBody struct {
	TenantName string `json:"tenant_name"`
	AdminEmail string `json:"admin_email"`
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request, c *call) error {
	var b createTenantBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	t, inv, err := a.Accounts.CreateTenant(r.Context(), c.principal, c.actor, b.TenantName, b.AdminEmail)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{
		"message":    "Tenant created successfully.",
		"tenant_id":  t.ID,
		"invitation": inv,
	})
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request, c *call) error {
	ts, err := a.Tenants.List(r.Context(), c.principal)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []*tenant.Tenant{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tenants": ts})
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request, c *call) error {
	t, err := a.Tenants.Get(r.Context(), c.principal, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type patchTenantBody struct {
	Name   *string `json:"name"`
	Status *string `json:"status"`
	Plan   *string `json:"plan"`
	// RequireMFA: owners and admins may set it.
	RequireMFA *bool `json:"require_mfa"`
}

func (a *API) patchTenant(w http.ResponseWriter, r *http.Request, c *call) error {
	var b patchTenantBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	t, err := a.Tenants.Apply(r.Context(), c.principal, c.actor, r.PathValue("id"),
		tenant.Update{Name: b.Name, Status: b.Status, Plan: b.Plan, RequireMFA: b.RequireMFA})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type inviteBody struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

func (a *API) invite(w http.ResponseWriter, r *http.Request, c *call) error {
	var b inviteBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	inv, err := a.Accounts.Invite(r.Context(), c.principal, c.actor, r.PathValue("id"), b.Email, identity.Role(b.Role))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"message": "Invitation created.", "invitation": inv})
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, c *call) error {
	users, err := a.Accounts.ListUsers(r.Context(), c.principal, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := make([]any, len(users))
	for i, u := range users {
		out[i] = u
	}
	return writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

type patchUserBody struct {
	Role string `json:"role"`
}

func (a *API) patchUser(w http.ResponseWriter, r *http.Request, c *call) error {
	var b patchUserBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	u, err := a.Accounts.ChangeRole(r.Context(), c.principal, c.actor, r.PathValue("id"), r.PathValue("uid"), identity.Role(b.Role))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}
