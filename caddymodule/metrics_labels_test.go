package caddymodule

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// recordingRegisterer keeps what registerMetrics registers.
type recordingRegisterer struct{ collectors []prometheus.Collector }

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *recordingRegisterer) Unregister(prometheus.Collector) bool { return false }

// descLabels reads the label names out of a descriptor's String (the client has no accessor).
var descLabels = regexp.MustCompile(`constLabels: \{(.*)\}, variableLabels: \{(.*)\}\}$`)

// Every metric saasgate registers is labelled from a bounded set only: plans, results, alert
// kinds, event types and statuses. A tenant, user, endpoint, URL or IP label would grow a
// series per value.
func TestMetrics_EveryLabelIsFromABoundedSet(t *testing.T) {
	allowed := map[string]bool{"plan": true, "result": true, "kind": true, "type": true, "status": true}
	var reg recordingRegisterer
	if err := registerMetrics(&reg); err != nil {
		t.Fatal(err)
	}
	if len(reg.collectors) < 12 {
		t.Fatalf("%d collectors registered, want every saasgate metric (12)", len(reg.collectors))
	}
	descs := make(chan *prometheus.Desc, 16)
	for _, c := range reg.collectors {
		go func() { c.Describe(descs); descs <- nil }()
		for d := <-descs; d != nil; d = <-descs {
			m := descLabels.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the labels of %s", d)
			}
			if m[1] != "" {
				t.Errorf("%s has constant labels %s", d, m[1])
			}
			for _, l := range strings.Split(m[2], ",") {
				if l != "" && !allowed[l] {
					t.Errorf("%s has label %q, outside the bounded set", d, l)
				}
			}
		}
	}
}
