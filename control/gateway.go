package control

import (
	"context"
	"net/http"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
)

// The request path's entry points: everything here answers from memory, except a tenant
// cache miss (one store read) and the limiter (one Redis call, or none in process).

// LookupTenant returns the gateway's view of a tenant; tenant.ErrNotFound when unknown.
func (s *Service) LookupTenant(ctx context.Context, id string) (*tenant.Snapshot, error) {
	v, err := s.LookupView(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.Snapshot(), nil
}

// LookupView is LookupTenant answering with what the tenant cache keeps for the tenant: the
// adapter's entry built around the snapshot (RuntimeConfig.TenantView).
func (s *Service) LookupView(ctx context.Context, id string) (tenant.View, error) {
	if !store.ValidTenantID(id) || tenant.Reserved(id) {
		return nil, tenant.ErrNotFound // never a store read (nor an error message built) for what cannot be a tenant
	}
	return s.Runtime.Cache.View(ctx, id)
}

// PolicyOf returns the limiter policy of a plan id, falling back to the default plan for an id
// no longer in the catalog (a plan removed from the config while tenants still had it).
func (s *Service) PolicyOf(planID string) limit.Policy {
	if p, ok := s.policies[planID]; ok {
		return p
	}
	return s.policies[s.plans.Default().ID]
}

// QuotaPeriod is the quota window of a tenant at now: months anchored at its subscription's
// period start, or calendar months (UTC) without a subscription.
func (s *Service) QuotaPeriod(t *tenant.Snapshot, now time.Time) limit.Period {
	return quotaPeriod(t, now, nil)
}

// quotaPeriod is QuotaPeriod, answered from cache when there is one (one per snapshot: the
// month arithmetic is done once a period, not once a request). Tenants without an anchor
// share limit.ThisMonth's.
func quotaPeriod(t *tenant.Snapshot, now time.Time, cache *limit.PeriodCache) limit.Period {
	switch {
	case t.PeriodAnchor.IsZero():
		return limit.ThisMonth(now)
	case cache != nil:
		return cache.Get(t.PeriodAnchor, now)
	}
	return limit.MonthFrom(t.PeriodAnchor, now)
}

// Admit decides one request of tenant t and raises usage alerts. quota caches t's quota
// period: the caller keeps one beside each snapshot (nil computes the period afresh).
func (s *Service) Admit(ctx context.Context, t *tenant.Snapshot, quota *limit.PeriodCache) (limit.Policy, limit.Outcome) {
	now := s.now()
	p := s.PolicyOf(t.Plan)
	out := s.limiter.Take(ctx, t.ID, p, quotaPeriod(t, now, quota), now)
	s.alerts.Observe(t.ID, p, out, now)
	return p, out
}

// ServeAPI serves the control plane's HTTP API.
func (s *Service) ServeAPI(w http.ResponseWriter, r *http.Request) { s.api.ServeHTTP(w, r) }

// AdmitAuth decides one request of an anonymous auth route from a client IP, with the
// gateway's limiter (and so its Redis prefix and on_limiter_error). The policy has no quota,
// so the period is only a formality.
func (s *Service) AdmitAuth(ctx context.Context, route, ip string) limit.Outcome {
	now := s.now()
	return s.limiter.Take(ctx, "auth:"+route+":"+ip, s.authPolicies[route], limit.ThisMonth(now), now)
}

// RateLimitStatus is GET /rate-limit: the tenant's limits and what is left, consuming nothing.
func (s *Service) RateLimitStatus(ctx context.Context, tenantID string) (*limit.Status, error) {
	t, err := s.LookupTenant(ctx, tenantID)
	if err != nil {
		if err == tenant.ErrNotFound {
			return nil, err
		}
		return nil, errs.Internal(err, "Could not read the tenant.")
	}
	now := s.now()
	p := s.PolicyOf(t.Plan)
	period := s.QuotaPeriod(t, now)
	out := s.limiter.Peek(ctx, t.ID, p, period, now)
	if out.Denied {
		return nil, limit.ErrStatusUnavailable
	}
	return limit.StatusOf(t.ID, p, period, out.Decision), nil
}
