package caddymodule

import (
	"sync"
	"time"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/tenant"
)

// The request path hands a tenant's and a caller's facts on in shapes of its own: boxed in
// `any` for placeholders, as header value lists, the Billing-Status value formatted. Each of
// those costs an allocation when made, so they are made once per tenant snapshot and once per
// verified token, in an entry kept beside the domain value by the cache that holds it (the
// tenant cache through control.RuntimeConfig.TenantView, the app's token.VerifiedCache), and
// a request allocates none of them. The domain types stay plain.

// tenantView is the gateway's entry for one tenant snapshot, built by the tenant cache on
// every load. It is what saas_tenant puts in the request's vars.
type tenantView struct {
	snap tenant.Snapshot

	boxedID, boxedPlan, boxedStatus any
	headerID, headerPlan            []string // shared, capacity-capped: never append to them
	// billingHeader is the value of the Billing-Status response header, nil when payments
	// are in order.
	billingHeader []string
	// quota caches the snapshot's quota period (see control.Service.Admit).
	quota limit.PeriodCache

	values [2]string // backing array of headerID and headerPlan: one object, not two
}

// newTenantView builds the entry of s; it is the tenant cache's view hook.
func newTenantView(s *tenant.Snapshot) tenant.View {
	v := &tenantView{snap: *s}
	v.boxedID, v.boxedPlan, v.boxedStatus = s.ID, boxes.get(s.Plan), boxes.get(string(s.Status))
	v.values = [2]string{s.ID, s.Plan}
	v.headerID, v.headerPlan = v.values[0:1:1], v.values[1:2:2]
	v.billingHeader = billingStatusHeader(s)
	return v
}

// Snapshot returns the snapshot the entry was built from.
func (v *tenantView) Snapshot() *tenant.Snapshot { return &v.snap }

// billingStatusHeader is the Billing-Status value of a tenant: the billing status, with the
// end of the grace period while past due; nil when payments are in order.
func billingStatusHeader(s *tenant.Snapshot) []string {
	switch s.BillingStatus {
	case tenant.BillingPastDue:
		return []string{string(s.BillingStatus) + `; grace_until="` + s.GraceUntil.UTC().Format(time.RFC3339) + `"`}
	case tenant.BillingSuspended:
		return []string{string(s.BillingStatus)}
	}
	return nil
}

// callerView is the gateway's entry for one verified access token, kept by the app's token
// cache until the token expires. It is what saas_auth puts in the request's vars.
type callerView struct {
	identity.Principal
	boxedUserID any
	userIDList  []string // shared: never append to it
}

func newCallerView(p identity.Principal) *callerView {
	return &callerView{Principal: p, boxedUserID: p.UserID, userIDList: []string{p.UserID}}
}

// tokenCacheSize bounds the tokens each cache remembers (one per jwt_secret and jwt_issuer).
const tokenCacheSize = 20000

// boxes holds plan ids and statuses as `any` values, one per distinct value: thousands of
// tenant entries share a handful, and every object fewer is one the collector need not mark.
var boxes = &boxTable{m: make(map[string]any)}

type boxTable struct {
	mu sync.Mutex
	m  map[string]any
}

func (b *boxTable) get(v string) any {
	b.mu.Lock()
	defer b.mu.Unlock()
	boxed, ok := b.m[v]
	if !ok {
		if len(b.m) >= 1024 { // plan ids come from the config, but never let it grow unbounded
			return v
		}
		boxed = v
		b.m[v] = boxed
	}
	return boxed
}
