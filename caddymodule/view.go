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
	// quota caches the snapshot's quota period (see control.Service.Admit).
	quota limit.PeriodCache

	// values back the header value lists the request path sets: the tenant id, the plan id
	// and the Billing-Status value ("" when payments are in order). The lists are slices of
	// this array, made per request at no cost: an entry is one object, and a hundred thousand
	// cached tenants carry no slice headers (see BenchmarkTenantCacheMemory).
	values [3]string
}

// newTenantView builds the entry of s; it is the tenant cache's view hook.
func newTenantView(s *tenant.Snapshot) tenant.View {
	v := &tenantView{snap: *s}
	v.boxedID, v.boxedPlan, v.boxedStatus = s.ID, boxes.get(s.Plan), boxes.get(string(s.Status))
	v.values = [3]string{s.ID, s.Plan, billingStatusValue(s)}
	return v
}

// The header value lists of the entry: shared, capacity-capped, never appended to.
func (v *tenantView) headerID() []string   { return v.values[0:1:1] }
func (v *tenantView) headerPlan() []string { return v.values[1:2:2] }

// billingHeader is the value of the Billing-Status response header, nil when payments are in
// order.
func (v *tenantView) billingHeader() []string {
	if v.values[2] == "" {
		return nil
	}
	return v.values[2:3:3]
}

// Snapshot returns the snapshot the entry was built from.
func (v *tenantView) Snapshot() *tenant.Snapshot { return &v.snap }

// billingStatusValue is the Billing-Status value of a tenant: the billing status, with the
// end of the grace period while past due; "" when payments are in order.
func billingStatusValue(s *tenant.Snapshot) string {
	switch s.BillingStatus {
	case tenant.BillingPastDue:
		return string(s.BillingStatus) + `; grace_until="` + s.GraceUntil.UTC().Format(time.RFC3339) + `"`
	case tenant.BillingSuspended:
		return string(s.BillingStatus)
	}
	return ""
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

// tokenCacheSize bounds the tokens each config's cache remembers.
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
