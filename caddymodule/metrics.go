package caddymodule

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/saasgate/saasgate/control/limit"
)

// Metrics live for the whole process (counters must not restart on a config reload) and are
// registered into each config's registry. No label carries a tenant, user or IP: label values
// come from small fixed sets (plan ids, results, alert kinds).
var (
	limiterDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "limiter", Name: "decisions_total",
		Help: "Rate limiter decisions by plan and result (allowed, rate_limited, quota_exceeded, error_allowed, error_denied).",
	}, []string{"plan", "result"})
	redisErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "limiter", Name: "redis_errors_total",
		Help: "Limiter calls to Redis that failed or timed out.",
	})
	breakerOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "saasgate", Subsystem: "limiter", Name: "breaker_open",
		Help: "1 while the circuit breaker in front of Redis is open, else 0.",
	})
	usageAlerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "usage", Name: "alerts_total",
		Help: "Excessive-usage alerts raised (debounced) by kind: rate_limited, quota_80, quota_100.",
	}, []string{"kind"})
	stripeWebhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "saasgate", Subsystem: "billing", Name: "webhook_events_total",
		Help: "Stripe webhook deliveries by event type (the handled types, else other or unverified) and result (applied, unchanged, duplicate, in_progress, ignored, rejected, failed).",
	}, []string{"type", "result"})
)

// registerMetrics adds the collectors to a config's registry.
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range append([]prometheus.Collector{limiterDecisions, redisErrors, breakerOpen, usageAlerts, stripeWebhooks}, controlCollectors...) {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// limiterMetrics is the limiter's Observer.
type limiterMetrics struct{}

// decisionCounters caches the counter of each (plan, result): WithLabelValues on every
// request would hash the labels and allocate. Every request reads it, so it is copied on
// write, and a read is one atomic load: no lock shared by the cores.
var decisionCounters struct {
	sync.Mutex // serializes writers
	m          atomic.Pointer[map[[2]string]prometheus.Counter]
}

func (limiterMetrics) Decided(policy, result string) {
	key := [2]string{policy, result}
	if m := decisionCounters.m.Load(); m != nil {
		if c := (*m)[key]; c != nil {
			c.Inc()
			return
		}
	}
	decisionCounters.Lock()
	next := map[[2]string]prometheus.Counter{}
	if m := decisionCounters.m.Load(); m != nil {
		maps.Copy(next, *m)
	}
	c := next[key]
	if c == nil {
		c = limiterDecisions.WithLabelValues(policy, result)
		next[key] = c
	}
	decisionCounters.m.Store(&next)
	decisionCounters.Unlock()
	c.Inc()
}
func (limiterMetrics) StoreError() { redisErrors.Inc() }
func (limiterMetrics) BreakerChanged(open bool) {
	if open {
		breakerOpen.Set(1)
	} else {
		breakerOpen.Set(0)
	}
}

func countAlert(a limit.Alert) { usageAlerts.WithLabelValues(string(a.Kind)).Inc() }

// countWebhook is billing's webhook observer.
func countWebhook(eventType, result string) { stripeWebhooks.WithLabelValues(eventType, result).Inc() }
