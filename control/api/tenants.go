package api

import (
	"net/http"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
)

type createTenantBody struct {
	TenantName string `json:"tenant_name" doc:"required,minLength=1,maxLength=100"`
	AdminEmail string `json:"admin_email" doc:"required,format=email,maxLength=254"`
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
	return writeJSON(w, http.StatusCreated, createTenantResponse{Message: "Tenant created successfully.", TenantID: t.ID, Invitation: inv})
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request, c *call) error {
	ts, err := a.Tenants.List(r.Context(), c.principal)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []*tenant.Tenant{}
	}
	return writeJSON(w, http.StatusOK, tenantList{Tenants: ts})
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request, c *call) error {
	t, err := a.Tenants.Get(r.Context(), c.principal, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type patchTenantBody struct {
	Name *string `json:"name" doc:"minLength=1,maxLength=100"`
	// Status and Plan: a platform admin's only.
	Status *string `json:"status" doc:"enum=active|suspended"`
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
	Email string `json:"email" doc:"required,format=email,maxLength=254"`
	Role  string `json:"role" doc:"enum=user|owner"` // "" invites a user
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
	return writeJSON(w, http.StatusCreated, inviteResponse{Message: "Invitation created.", Invitation: inv})
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, c *call) error {
	users, err := a.Accounts.ListUsers(r.Context(), c.principal, r.PathValue("id"))
	if err != nil {
		return err
	}
	if users == nil {
		users = []*account.User{}
	}
	return writeJSON(w, http.StatusOK, userList{Users: users})
}

type patchUserBody struct {
	Role string `json:"role" doc:"required,enum=user|owner"`
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
