package caddymodule

import (
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
)

// The Billing-Status value of each billing state: the status with the grace end while past
// due (an admin's suspension does not hide it), the bare status when billing suspended the
// tenant, nothing while payments are in order.
func TestTenantView_BillingStatusHeader(t *testing.T) {
	start := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	grace := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		status     tenant.Status
		billing    *tenant.Billing
		wantHeader string
	}{
		{"no subscription", tenant.StatusActive, nil, ""},
		{"active", tenant.StatusActive, &tenant.Billing{Status: tenant.BillingActive, PeriodStart: start}, ""},
		{"past due", tenant.StatusActive, &tenant.Billing{Status: tenant.BillingPastDue, PeriodStart: start, GraceUntil: grace}, `past_due; grace_until="2026-04-01T12:00:00Z"`},
		{"suspended by billing", tenant.StatusActive, &tenant.Billing{Status: tenant.BillingSuspended, PeriodStart: start}, "suspended"},
		{"suspended by an admin while past due", tenant.StatusSuspended, &tenant.Billing{Status: tenant.BillingPastDue, GraceUntil: grace}, `past_due; grace_until="2026-04-01T12:00:00Z"`},
		{"suspended by both", tenant.StatusSuspended, &tenant.Billing{Status: tenant.BillingSuspended}, "suspended"},
		{"canceled", tenant.StatusActive, &tenant.Billing{Status: tenant.BillingCanceled, PeriodStart: start}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newTenantView(tenant.NewSnapshot(&tenant.Tenant{ID: "acme", Status: c.status, Plan: "pro", Billing: c.billing})).(*tenantView)
			header, list := "", v.billingHeader()
			if list != nil {
				header = list[0]
			}
			if header != c.wantHeader || len(list) > 1 || cap(list) > 1 || (list != nil) != (c.wantHeader != "") {
				t.Fatalf("Billing-Status = %q (cap %d), want %q", list, cap(list), c.wantHeader)
			}
		})
	}
}

// A tenant's entry holds its facts in the request path's shapes: placeholders' values,
// single-value header lists that cannot be appended to in place, and the snapshot itself.
func TestTenantView_Forms(t *testing.T) {
	snap := tenant.NewSnapshot(&tenant.Tenant{ID: "acme", Status: tenant.StatusActive, Plan: "pro"})
	v := newTenantView(snap).(*tenantView)
	if *v.Snapshot() != *snap {
		t.Fatalf("snapshot = %+v, want %+v", *v.Snapshot(), *snap)
	}
	vars := placeholders{varTenant: v}
	for key, want := range map[string]string{"http.saas.tenant.id": "acme", "http.saas.tenant.plan": "pro", "http.saas.tenant.status": "active"} {
		if got, ok := vars.get(key); !ok || got != want {
			t.Errorf("%s = %v, %v; want %q", key, got, ok, want)
		}
	}
	// The plan and the status are boxed once for every tenant that shares them, not per use.
	if n := testing.AllocsPerRun(100, func() { vars.get("http.saas.tenant.plan"); vars.get("http.saas.tenant.status") }); n != 0 {
		t.Errorf("the plan and status placeholders allocate %v times", n)
	}
	for name, list := range map[string][]string{"id": v.headerID(), "plan": v.headerPlan()} {
		if len(list) != 1 || cap(list) != 1 {
			t.Fatalf("%s header list %q has len %d, cap %d; want 1, 1", name, list, len(list), cap(list))
		}
	}
	if v.headerID()[0] != "acme" || v.headerPlan()[0] != "pro" {
		t.Fatalf("headers = %q, %q", v.headerID(), v.headerPlan())
	}
}

// A verified token's entry holds its principal and its user id as a header list that cannot be
// appended to in place.
func TestCallerView_Forms(t *testing.T) {
	p := identity.Principal{UserID: "usr_1", TenantID: "acme", Role: identity.RoleOwner}
	c := newCallerView(p)
	if list := c.userIDList(); c.Principal != p || len(list) != 1 || cap(list) != 1 || list[0] != "usr_1" {
		t.Fatalf("caller entry = %+v", c)
	}
}
