package caddymodule

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/notify"
)

// The control plane's metrics: webhooks, audit chains and tenants. Like the limiter's, they
// live for the whole process, and their labels come from fixed sets (event types, results,
// statuses): a value outside its set is counted as "other", so a caller passing something
// unexpected cannot grow the series without bound.
var (
	webhookEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "webhooks", Name: "events_total",
		Help: "Webhook events recorded in the outbox, by type (the event catalogue's, else other); a repeated event id is not counted.",
	}, []string{"type"})
	webhookDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "webhooks", Name: "deliveries_total",
		Help: "Webhook delivery attempts by result (success, failure, disabled: the attempt disabled its endpoint).",
	}, []string{"result"})
	webhookAttemptSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "saasgate", Subsystem: "webhooks", Name: "attempt_duration_seconds",
		Help: "Duration of each webhook delivery attempt, up to the answer or the timeout (default 15s).",
		// Receivers answer in milliseconds to seconds; the top buckets catch the timeouts.
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
	})
	outboxDepth = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "saasgate", Subsystem: "webhooks", Name: "outbox_depth",
		Help: "Webhook deliveries waiting in the outbox (pending or due for retry), as last sampled by this replica's workers.",
	})
	auditAppends = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "audit", Name: "appends_total",
		Help: "Entries appended to the tenants' audit chains.",
	})
	auditVerifyFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "audit", Name: "verify_failures_total",
		Help: "Audit chain verifications that found a broken or missing link.",
	})
	tenantCacheLoads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "tenant_cache", Name: "loads_total",
		Help: "Store reads the tenant cache made for one tenant, by kind: miss (not cached, or marked changed), refresh (an entry older than five minutes). Changes reach the cache with the tenant's state, so on a cache that holds every tenant misses stay near zero.",
	}, []string{"kind"})
	tenantsByStatus = &tenantCollector{desc: prometheus.NewDesc("saasgate_tenants",
		"Tenants by the status the gateway enforces (active, suspended: by an admin or by billing), counted in the store at scrape time.",
		[]string{"status"}, nil)}
)

// controlCollectors are registered with the limiter's (registerMetrics).
var controlCollectors = []prometheus.Collector{webhookEvents, webhookDeliveries, webhookAttemptSeconds,
	outboxDepth, auditAppends, auditVerifyFailures, tenantCacheLoads, tenantsByStatus}

var deliveryResults = []string{notify.ResultSuccess, notify.ResultFailure, notify.ResultDisabled}

// bounded keeps v when it is one of allowed, else "other".
func bounded(v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return "other"
}

// notifyMetrics is the webhooks' Observer (control.Config.NotifyObserver).
type notifyMetrics struct{}

func (notifyMetrics) Emitted(eventType string) {
	webhookEvents.WithLabelValues(bounded(eventType, notify.EventTypes)).Inc()
}

func (notifyMetrics) Attempted(result string, latency time.Duration) {
	webhookDeliveries.WithLabelValues(bounded(result, deliveryResults)).Inc()
	webhookAttemptSeconds.Observe(latency.Seconds())
}

func (notifyMetrics) OutboxDepth(n int64) { outboxDepth.Set(float64(n)) }

// Both kinds' series exist from the start, at 0.
var tenantCacheMisses, tenantCacheRefreshes = tenantCacheLoads.WithLabelValues("miss"), tenantCacheLoads.WithLabelValues("refresh")

// tenantLoaded counts a tenant cache's store read (control.RuntimeConfig.TenantLoaded).
func tenantLoaded(refresh bool) {
	if refresh {
		tenantCacheRefreshes.Inc()
	} else {
		tenantCacheMisses.Inc()
	}
}

// auditMetrics is the audit chains' Observer (control.Config.AuditObserver).
type auditMetrics struct{}

func (auditMetrics) Appended()     { auditAppends.Inc() }
func (auditMetrics) VerifyFailed() { auditVerifyFailures.Inc() }

// tenantCountTimeout bounds the store count a scrape makes: with the store down, the scrape
// answers without the tenants' series instead of hanging.
const tenantCountTimeout = 2 * time.Second

// tenantCollector reports the tenants by status, counted by the running control plane when
// scraped: two count queries per scrape, right on every replica, where the tenant cache would
// be right only on a replica that holds every tenant and heard of every change.
type tenantCollector struct {
	desc *prometheus.Desc
	// service is the running config's control plane; nil while none runs.
	service atomic.Pointer[control.Service]
}

func (c *tenantCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *tenantCollector) Collect(ch chan<- prometheus.Metric) {
	svc := c.service.Load()
	if svc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tenantCountTimeout)
	defer cancel()
	counts, err := svc.TenantsByStatus(ctx)
	if err != nil {
		// No sample rather than a false zero, and no failed scrape: the other metrics (the
		// limiter's breaker among them) matter most while the store is down.
		return
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(status))
	}
}

var (
	_ notify.Observer      = notifyMetrics{}
	_ audit.Observer       = auditMetrics{}
	_ prometheus.Collector = (*tenantCollector)(nil)
)
