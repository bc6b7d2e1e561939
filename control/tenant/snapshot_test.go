package tenant_test

import (
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/saasgate/saasgate/control/tenant"
)

// Snapshots of tenants decoded one by one (each with its own copy of every string) share one
// copy of each plan id and status: a cache of a hundred thousand keeps a handful of them, not
// two hundred thousand. The id stays each tenant's own.
func TestNewSnapshot_SharesPlansAndStatuses(t *testing.T) {
	decoded := func(id string) *tenant.Tenant {
		return &tenant.Tenant{ID: strings.Clone(id), Status: tenant.Status(strings.Clone("active")), Plan: strings.Clone("pro"),
			Billing: &tenant.Billing{Status: tenant.BillingStatus(strings.Clone("past_due")), GraceUntil: time.Now()}}
	}
	a, b := tenant.NewSnapshot(decoded("acme")), tenant.NewSnapshot(decoded("globex"))
	if a.ID != "acme" || a.Plan != "pro" || a.Status != tenant.StatusActive || a.BillingStatus != tenant.BillingPastDue {
		t.Fatalf("snapshot = %+v", a)
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a.Plan, b.Plan) || !same(string(a.Status), string(b.Status)) || !same(string(a.BillingStatus), string(b.BillingStatus)) {
		t.Errorf("two snapshots keep their own copies of plan, status or billing status")
	}
}
