// Package tenant manages tenants: their ids (DNS labels, the subdomain they are served on),
// status, plan and the per-tenant collections created with them.
package tenant

import (
	"strings"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/store"
)

// Status of a tenant as the gateway sees it.
type Status string

const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// Valid reports whether s is a status an admin may set.
func (s Status) Valid() bool { return s == StatusActive || s == StatusSuspended }

// Tenant is one customer organisation.
type Tenant struct {
	ID     string `bson:"_id" json:"tenant_id"`
	Name   string `bson:"name" json:"name"`
	Status Status `bson:"status" json:"status"`
	// Plan is the plan the tenant pays for (the default plan until billing says otherwise).
	Plan string `bson:"plan" json:"plan"`
	// PlanOverride, set by an admin, wins over Plan.
	PlanOverride string `bson:"plan_override,omitempty" json:"plan_override,omitempty"`
	// Billing is the Stripe subscription; nil until the tenant starts one.
	Billing *Billing `bson:"billing,omitempty" json:"billing,omitempty"`
	// RequireMFA, set by an owner, keeps members without MFA out of the API until they enrol.
	RequireMFA bool      `bson:"require_mfa,omitempty" json:"require_mfa"`
	CreatedAt  time.Time `bson:"created_at" json:"created_at"`
	UpdatedAt  time.Time `bson:"updated_at" json:"updated_at"`
	// Rev counts the record's writes: 1 at creation, one more at every update, counted by the
	// store itself (so clocks do not matter). Caches order what replicas announce by it (see
	// Cache.Put); a record written before it existed reads as 0.
	Rev int64 `bson:"rev" json:"-"`
}

// EffectiveStatus is the status the gateway enforces: suspended by an admin or by billing.
func (t *Tenant) EffectiveStatus() Status {
	if t.Billing.Suspended() {
		return StatusSuspended
	}
	return t.Status
}

// SuspendedByAdmin reports whether a platform admin suspended the tenant. Its members are then
// refused by the control plane too; a tenant suspended by billing is not (its owner must reach
// the billing routes to pay).
func (t *Tenant) SuspendedByAdmin() bool { return t.Status == StatusSuspended }

// MemberView is what every member of a tenant may see of it: no billing identifiers and no
// admin override, only the plan and status that apply.
type MemberView struct {
	ID     string `json:"tenant_id"`
	Name   string `json:"name"`
	Status Status `json:"status"`
	Plan   string `json:"plan"`
}

// MemberView returns the tenant as its members see it.
func (t *Tenant) MemberView() MemberView {
	return MemberView{ID: t.ID, Name: t.Name, Status: t.EffectiveStatus(), Plan: t.EffectivePlan()}
}

// EffectivePlan is the plan the gateway enforces.
func (t *Tenant) EffectivePlan() string {
	if t.PlanOverride != "" {
		return t.PlanOverride
	}
	return t.Plan
}

// Reserved reports whether id is a reserved word: one that would shadow the platform's own
// hosts. Every gateway request asks, so it is a switch (compared in place) rather than a map.
func Reserved(id string) bool {
	switch id {
	case "api", "www", "admin", "app", "auth", "billing", "docs", "static", "status", "system", "mail":
		return true
	}
	return false
}

// ValidateID checks that id can name a tenant.
func ValidateID(id string) error {
	if !store.ValidTenantID(id) {
		return errs.Ef(errs.KindInvalid, "invalid_tenant",
			"Tenant id %q must be a DNS label: 3 to 63 lower-case letters, digits or '-', not starting or ending with '-'.", truncate(id, 80))
	}
	if Reserved(id) {
		return errs.Ef(errs.KindInvalid, "tenant_reserved", "Tenant id %q is reserved.", id)
	}
	return nil
}

// Slug turns a display name into a tenant id: "Acme Corp" → "acme-corp". Characters other
// than ASCII letters and digits become single dashes. The result still has to pass ValidateID.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
