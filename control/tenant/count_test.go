package tenant_test

import (
	"context"
	"maps"
	"testing"

	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

// CountByStatus counts the status the gateway enforces: a tenant suspended by billing is
// suspended whatever its admin status, and one suspended both ways is counted once.
func TestMongoStore_CountByStatusCountsTheEffectiveStatus(t *testing.T) {
	ctx := context.Background()
	s := &tenant.MongoStore{DB: testenv.DB(t)}
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	counts, err := s.CountByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[tenant.Status]int64{tenant.StatusActive: 0, tenant.StatusSuspended: 0}; !maps.Equal(counts, want) {
		t.Fatalf("no tenants: %v, want %v", counts, want)
	}
	for _, tn := range []*tenant.Tenant{
		{ID: "plain", Status: tenant.StatusActive},
		{ID: "paying", Status: tenant.StatusActive, Billing: &tenant.Billing{Status: tenant.BillingActive}},
		{ID: "late", Status: tenant.StatusActive, Billing: &tenant.Billing{Status: tenant.BillingPastDue}},
		{ID: "unpaid", Status: tenant.StatusActive, Billing: &tenant.Billing{Status: tenant.BillingSuspended}},
		{ID: "banned", Status: tenant.StatusSuspended},
		{ID: "both", Status: tenant.StatusSuspended, Billing: &tenant.Billing{Status: tenant.BillingSuspended}},
	} {
		tn.Name, tn.Plan = tn.ID, "free"
		if err := s.Insert(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	if counts, err = s.CountByStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if want := map[tenant.Status]int64{tenant.StatusActive: 3, tenant.StatusSuspended: 3}; !maps.Equal(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
}
