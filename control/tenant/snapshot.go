package tenant

import (
	"time"

	"github.com/saasgate/saasgate/internal/intern"
)

// Snapshot is what the gateway needs of a tenant, immutable once built: plain facts, which the
// adapter turns into the shapes its request path sets (see View).
type Snapshot struct {
	ID     string
	Status Status // the effective status: suspended by an admin or by billing
	Plan   string // the effective plan id

	// PeriodAnchor is the start of the subscription's current period (zero without one):
	// quota months are counted from it.
	PeriodAnchor time.Time
	// BillingStatus is the subscription's status (BillingNone without one), and GraceUntil
	// when a past-due tenant is suspended if still unpaid.
	BillingStatus BillingStatus
	GraceUntil    time.Time
	// BillingSuspended says the suspension (if Status is suspended) is billing's: grace over
	// and unpaid. An admin's suspension is not lifted by paying.
	BillingSuspended bool
}

// NewSnapshot freezes the gateway's view of t. Its plan and statuses are shared copies (see
// shared): only the id is the tenant's own.
func NewSnapshot(t *Tenant) *Snapshot {
	s := &Snapshot{ID: t.ID, Status: Status(shared.Get(string(t.EffectiveStatus()))), Plan: shared.Get(t.EffectivePlan())}
	if b := t.Billing; b != nil {
		if b.Status != BillingCanceled && b.Status != BillingNone {
			s.PeriodAnchor = b.PeriodStart // back on the default plan, quotas follow calendar months
		}
		s.BillingStatus, s.GraceUntil = BillingStatus(shared.Get(string(b.Status))), b.GraceUntil
		s.BillingSuspended = b.Status == BillingSuspended && t.Status != StatusSuspended
	}
	return s
}

// View is what the cache keeps and hands out for a tenant: the snapshot itself, or the
// adapter's entry built around it once per load (CacheConfig.NewView). The adapter's request
// path needs the snapshot's facts in its own shapes (boxed values, header lists); building
// them once per snapshot, in a value cached beside it, keeps them out of both the domain type
// and the request.
type View interface {
	Snapshot() *Snapshot
}

// Snapshot makes a bare snapshot its own View.
func (s *Snapshot) Snapshot() *Snapshot { return s }

// shared holds one copy of each plan id and status that snapshots name. Every tenant read from
// the store brings its own copy of "active" and of its plan id; a cache of a hundred thousand
// snapshots would keep two hundred thousand small strings of a handful of values.
var shared = intern.New(func(s string) string { return s })
