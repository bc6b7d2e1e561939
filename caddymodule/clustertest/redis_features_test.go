package clustertest

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// What every Redis topology must carry, checked by the Sentinel and Cluster tests over two
// gateway subprocesses: the limiter in both modes, the anonymous auth routes' budgets, tenant
// invalidation and the usage alerts.

// featurePlans are the plans the feature checks use: free (leased blocks, burst 40), strict
// (exact: a Redis call per request, burst 30), metered (a quota of 10 a month) and slow (2 an
// hour, to be refused for the rate).
const featurePlans = "\t\tplan free {\n\t\t\trate 40/1h\n\t\t}\n" +
	"\t\tplan strict {\n\t\t\trate 30/1h\n\t\t\texact\n\t\t}\n" +
	"\t\tplan metered {\n\t\t\trate 1000/1m\n\t\t\tburst 20\n\t\t\tquota 10/month\n\t\t}\n" +
	"\t\tplan slow {\n\t\t\trate 2/1h\n\t\t}\n"

// featureOptions: the usage alerts at half and all of the quota, and budgets of 3 an hour
// per client address on the refresh and MFA routes. (Not login or signup: the tests' setup
// signs up and logs in from the same address.)
const featureOptions = "\t\tdefault_plan free\n\t\tusage_alerts 50 100\n" +
	"\t\tauth_rate refresh 3/1h\n\t\tauth_rate mfa 3/1h\n"

// onPlan gives tenant the plan through the API of gws[0], and waits until every gateway
// applies it (X-RateLimit-Limit, the plan's burst); it returns how many requests the waiting spent under the
// new plan.
func onPlan(t *testing.T, gws []*gateway, admin, tenant, token, plan, limit string) int {
	t.Helper()
	gws[0].api.PatchTenant(t, admin, tenant, map[string]string{"plan": plan})
	spent := 0
	for _, g := range gws {
		if _, err := eventually(time.Now(), 5*time.Second, 20*time.Millisecond, func() (bool, string) {
			r, err := g.tenantRequest(tenant, token)
			if err != nil {
				return false, err.Error()
			}
			return r.Header.Get("X-RateLimit-Limit") == limit, r.String()
		}); err != nil {
			t.Fatalf("%s: plan %s of %s not applied after 5 s: %v", g.name, plan, tenant, err)
		}
		spent++
	}
	return spent
}

// wantBurstAcross fires 3×burst requests of tenant at once, dealt over the gateways, and
// wants exactly burst admitted, the rest refused for the rate.
func wantBurstAcross(t *testing.T, gws []*gateway, tenant, token string, burst int) {
	t.Helper()
	tl := fire(spread(gws, 3*burst, tenant, token))
	t.Logf("%s: %d concurrent requests over %d gateways: %d admitted, %d rate_limited",
		tenant, 3*burst, len(gws), tl.admitted, tl.rateLimited)
	if len(tl.other) > 0 {
		t.Errorf("%s: %d answers neither 200 nor 429 rate_limited, e.g. %s", tenant, len(tl.other), tl.other[0])
	}
	if tl.admitted != burst {
		t.Errorf("%s: admitted %d across the gateways, want exactly %d", tenant, tl.admitted, burst)
	}
}

// checkLimiterModes creates a tenant on the leased plan and one on the exact plan (names
// with suffix) and wants each plan's burst admitted exactly once across the gateways.
func checkLimiterModes(t *testing.T, gws []*gateway, admin, suffix string) {
	t.Helper()
	leased, exact := "leased"+suffix, "exact"+suffix
	leasedToken, exactToken := gws[0].newTenant(t, leased), gws[0].newTenant(t, exact)
	spent := onPlan(t, gws, admin, exact, exactToken, "strict", "30")
	wantBurstAcross(t, gws, leased, leasedToken, 40)
	wantBurstAcross(t, gws, exact, exactToken, 30-spent)
}

// checkAuthRouteBudget spends one auth route's budget of 3 from this address over both
// gateways (each attempt carries a token that is not one: the limit is counted before the
// body is read, so they answer 400 or 401), then wants the next attempt refused, 429
// rate_limited, on every gateway.
func checkAuthRouteBudget(t *testing.T, gws []*gateway, path string, body map[string]string) {
	t.Helper()
	for i := range 3 {
		g := gws[i%len(gws)]
		if r := g.api.Do(t, http.MethodPost, path, "", body); r.Status == http.StatusTooManyRequests || r.Status >= 500 {
			t.Errorf("%s: attempt %d of 3 on %s: %s, want it counted, not refused", g.name, i+1, path, r)
		}
	}
	for _, g := range gws {
		r := g.api.Do(t, http.MethodPost, path, "", body)
		if r.Status != http.StatusTooManyRequests || r.Code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: a 4th attempt on %s from the address: %s (Retry-After %q), want 429 rate_limited with Retry-After",
				g.name, path, r, r.Header.Get("Retry-After"))
		}
	}
}

// sumMetric adds one series over the gateways (absent counts 0).
func sumMetric(t *testing.T, gws []*gateway, series string) float64 {
	t.Helper()
	var sum float64
	for _, g := range gws {
		v, _ := g.metric(t, series)
		sum += v
	}
	return sum
}

// checkUsageAlerts shows the usage alerts over two gateways. The quota is counted in Redis,
// one count for the fleet; the alerts' debounce memory is each gateway's own (limit.Alerter),
// and the notifications carry ids derived from tenant, period and threshold (or hour), which
// the outbox in MongoDB keeps once. So: each gateway alerts each threshold at most once however
// many requests follow, and the fleet records exactly one usage.threshold_reached per
// threshold and one rate_limit.exceeded for a tenant refused on both gateways.
func checkUsageAlerts(t *testing.T, gws []*gateway, admin string) {
	t.Helper()
	const thresholdEvents = `saasgate_webhooks_events_total{type="usage.threshold_reached"}`
	const rateEvents = `saasgate_webhooks_events_total{type="rate_limit.exceeded"}`
	alerts := func(g *gateway, kind string) float64 {
		v, _ := g.metric(t, `saasgate_usage_alerts_total{kind="`+kind+`"}`)
		return v
	}
	type counts struct{ q50, q100, rate [2]float64 }
	read := func() (c counts) {
		for i, g := range gws[:2] {
			c.q50[i], c.q100[i], c.rate[i] = alerts(g, "quota_50"), alerts(g, "quota_100"), alerts(g, "rate_limited")
		}
		return c
	}
	before := read()
	thresholdsBefore, rateBefore := sumMetric(t, gws, thresholdEvents), sumMetric(t, gws, rateEvents)
	hourBefore := time.Now().UTC().Truncate(time.Hour)

	meteredToken, hastyToken := gws[0].newTenant(t, "metered"), gws[0].newTenant(t, "hasty")
	spentMetered := onPlan(t, gws, admin, "metered", meteredToken, "metered", "20")
	onPlan(t, gws, admin, "hasty", hastyToken, "slow", "2")

	// The quota of 10, requests taking turns on the two gateways: each sees the shared count
	// pass 50 % and reach 100 %; then each is refused for the quota three times.
	for i := spentMetered; i < 10; i++ {
		if r := gws[i%2].mustTenantRequest(t, "metered", meteredToken); r.Status != http.StatusOK {
			t.Fatalf("%s: metered request %d of its quota of 10: %s", gws[i%2].name, i+1, r)
		}
	}
	for i := range 6 {
		if r := gws[i%2].mustTenantRequest(t, "metered", meteredToken); r.Status != http.StatusTooManyRequests || r.Code() != "quota_exceeded" {
			t.Errorf("%s: a metered request past the quota: %s, want 429 quota_exceeded", gws[i%2].name, r)
		}
	}
	// The slow plan's 2 were spent by onPlan (one per gateway); each gateway is then refused
	// for the rate three times.
	for i := range 6 {
		if r := gws[i%2].mustTenantRequest(t, "hasty", hastyToken); r.Status != http.StatusTooManyRequests || r.Code() != "rate_limited" {
			t.Errorf("%s: a hasty request past the rate: %s, want 429 rate_limited", gws[i%2].name, r)
		}
	}

	// The notifications are published off the request path: wait for them, then check that
	// no more come.
	wantRate := 1.0
	if !time.Now().UTC().Truncate(time.Hour).Equal(hourBefore) {
		wantRate = 2 // the hour changed during the test: each hour may alert once
	}
	settled := func() (bool, string) {
		th, rt := sumMetric(t, gws, thresholdEvents)-thresholdsBefore, sumMetric(t, gws, rateEvents)-rateBefore
		return th >= 2 && rt >= 1, fmt.Sprintf("%v usage.threshold_reached, %v rate_limit.exceeded recorded", th, rt)
	}
	if _, err := eventually(time.Now(), 10*time.Second, 50*time.Millisecond, settled); err != nil {
		t.Fatalf("the usage notifications were not recorded within 10 s: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	th, rt := sumMetric(t, gws, thresholdEvents)-thresholdsBefore, sumMetric(t, gws, rateEvents)-rateBefore
	t.Logf("the fleet recorded %v usage.threshold_reached and %v rate_limit.exceeded notifications", th, rt)
	if th != 2 {
		t.Errorf("the fleet recorded %v usage.threshold_reached notifications, want 2 (50 %% and 100 %%, once each)", th)
	}
	if rt < 1 || rt > wantRate {
		t.Errorf("the fleet recorded %v rate_limit.exceeded notifications, want 1 (per hour)", rt)
	}

	after := read()
	for i, g := range gws[:2] {
		got := [3]float64{after.q50[i] - before.q50[i], after.q100[i] - before.q100[i], after.rate[i] - before.rate[i]}
		t.Logf("%s alerted quota_50 %v, quota_100 %v, rate_limited %v time(s)", g.name, got[0], got[1], got[2])
		// Each gateway saw the count pass each threshold and the hasty tenant refused.
		if got != [3]float64{1, 1, 1} {
			t.Errorf("%s alerted quota_50 %v, quota_100 %v, rate_limited %v time(s); want each once: "+
				"debounced per gateway, and each gateway saw every threshold and a refusal", g.name, got[0], got[1], got[2])
		}
	}
}
