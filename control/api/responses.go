package api

import (
	"time"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/tenant"
)

// The answers the handlers encode, as types: the OpenAPI document reads its response schemas
// from them (openapi_schema.go), so a field added here is documented, and a field added to an
// answer some other way (a map merged in) fails the conformance test (every struct is closed).
// A stored secret that starts to show through these types shows in the document too, and
// TestOpenAPI_NoSchemaCarriesASecretItShouldNot refuses it there.

type signupResponse struct {
	Message  string        `json:"message"`
	UserID   string        `json:"user_id"`
	TenantID string        `json:"tenant_id"`
	Role     identity.Role `json:"role"`
}

type meResponse struct {
	UserID    string        `json:"user_id"`
	Email     string        `json:"email"`
	Role      identity.Role `json:"role"`
	TenantID  string        `json:"tenant_id"`
	CreatedAt time.Time     `json:"created_at"`
	// Tenant is absent for the platform admin, who belongs to no tenant.
	Tenant *tenant.MemberView `json:"tenant,omitempty"`
}

type createTenantResponse struct {
	Message    string                    `json:"message"`
	TenantID   string                    `json:"tenant_id"`
	Invitation *account.IssuedInvitation `json:"invitation"`
}

type inviteResponse struct {
	Message    string                    `json:"message"`
	Invitation *account.IssuedInvitation `json:"invitation"`
}

type tenantList struct {
	Tenants []*tenant.Tenant `json:"tenants"`
}

type userList struct {
	Users []*account.User `json:"users"`
}

type subscribeResponse struct {
	Message          string `json:"message"`
	StripeSessionURL string `json:"stripe_session_url"`
	SessionID        string `json:"session_id"`
}

type portalResponse struct {
	URL string `json:"url"`
}

type messageResponse struct {
	Message string `json:"message"`
}

type endpointList struct {
	Endpoints []*notify.Endpoint `json:"endpoints"`
}

type secretResponse struct {
	Secret string `json:"secret"`
}

type recoverResponse struct {
	Resent int `json:"resent"`
}

type planList struct {
	Plans []planView `json:"plans"`
}

type healthResponse struct {
	Status string `json:"status" doc:"enum=ok"`
}

// readyResponse answers /readyz: 200 when every dependency answers, 503 otherwise.
type readyResponse struct {
	Status string            `json:"status" doc:"enum=ready|not_ready"`
	Checks map[string]string `json:"checks" doc:"values=ok|unavailable"`
}
