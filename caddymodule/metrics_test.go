package caddymodule

import (
	"strconv"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func decisions(t *testing.T, plan string) float64 {
	t.Helper()
	var m dto.Metric
	if err := limiterDecisions.WithLabelValues(plan, "allowed").Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Decided counts every decision under its own labels while goroutines add new label pairs
// concurrently: no increment is lost, and the copy-on-write cache keeps every pair (a writer
// that copied the map while another was adding to it would drop that one's pair, and every
// later decision of it would hash its labels again).
func TestDecidedCountsConcurrently(t *testing.T) {
	const goroutines, each, pairs = 8, 500, 64
	plan := func(g int) string { return "metrics-test-" + strconv.Itoa(g%4) }
	before := map[string]float64{}
	for g := 0; g < 4; g++ {
		before[plan(g)] = decisions(t, plan(g))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				limiterMetrics{}.Decided(plan(g), "allowed")
				if i < pairs {
					limiterMetrics{}.Decided(plan(g), "metrics-test-"+strconv.Itoa(g*pairs+i))
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	for g := 0; g < 4; g++ {
		got := decisions(t, plan(g)) - before[plan(g)]
		if want := float64(goroutines / 4 * each); got != want {
			t.Errorf("%s: %v decisions counted, want %v", plan(g), got, want)
		}
	}
	cached := *decisionCounters.m.Load()
	lost := 0
	for g := 0; g < goroutines; g++ {
		for i := 0; i < pairs; i++ {
			if cached[[2]string{plan(g), "metrics-test-" + strconv.Itoa(g*pairs+i)}] == nil {
				lost++
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d label pairs added concurrently are missing from the counter cache", lost, goroutines*pairs)
	}
}
