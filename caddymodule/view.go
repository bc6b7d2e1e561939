package caddymodule

import (
	"sync"
	"time"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/intern"
)

// The request path hands a tenant's and a caller's facts on in shapes of its own: boxed in
// `any` for placeholders, as header value lists, the Billing-Status value formatted. Each of
// those costs an allocation when made, so they are made once per tenant snapshot and once per
// verified token, in an entry kept beside the domain value by the cache that holds it (the
// tenant cache through control.RuntimeConfig.TenantView, the app's token.VerifiedCache), and
// a request allocates none of them. The domain types stay plain. One exception: the tenant id
// is boxed when its placeholder is asked for (rarely: a log or header directive naming it),
// since a box kept per tenant is one more live object per cached tenant for the collector to
// visit on every cycle (see tenantViews).

// tenantView is the gateway's entry for one tenant snapshot, built by the tenant cache on
// every load. It is what saas_tenant puts in the request's vars.
type tenantView struct {
	snap tenant.Snapshot

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
	v := tenantViews.new()
	v.snap = *s
	v.values = [3]string{s.ID, s.Plan, billingStatusValue(s)}
	return v
}

// tenantViews hands out tenant entries from arrays of viewSlab, rather than one heap object
// each. The garbage collector visits every live object on each cycle, and a hundred thousand
// cached tenants made each cycle costly: under load, with 100,000 cached, it took a quarter of
// the gateway's CPU, against a few percent with a thousand. Held in arrays, the same entries
// cost it a fraction of that (SPEC §10's tail; see README, Scale). An array lives while any of
// its entries is cached or in use; an entry replaced (its tenant changed or refreshed) leaves
// its slot to the array's end of life, so what is wasted is at most the entries replaced
// since the arrays they sit in were filled.
var tenantViews viewSlabs

const viewSlab = 256

type viewSlabs struct {
	mu   sync.Mutex
	free []tenantView
}

func (a *viewSlabs) new() *tenantView {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.free) == 0 {
		a.free = make([]tenantView, viewSlab)
	}
	v := &a.free[0]
	a.free = a.free[1:]
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
// cache until the token expires. It is what saas_auth puts in the request's vars. Like a
// tenant's entry it is one object: the user id's header list is a slice of its own array, and
// the user id is boxed only when its placeholder is asked for.
type callerView struct {
	identity.Principal
	userID [1]string
}

func newCallerView(p identity.Principal) *callerView {
	return &callerView{Principal: p, userID: [1]string{p.UserID}}
}

// userIDList is the X-User-ID header's value list: shared, capacity-capped.
func (c *callerView) userIDList() []string { return c.userID[:] }

// tokenCacheSize bounds the tokens each cache remembers (one per jwt_secret and jwt_issuer).
const tokenCacheSize = 20000

// boxes holds plan ids and statuses as `any` values, one per distinct value, for their
// placeholders: thousands of tenants share a handful, so a placeholder's value is looked up
// here rather than boxed per request or kept boxed in every tenant's entry.
var boxes = intern.New(func(s string) any { return s })
