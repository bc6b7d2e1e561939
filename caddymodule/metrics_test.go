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
// concurrently (the copy-on-write cache must not lose a counter or an increment).
func TestDecidedCountsConcurrently(t *testing.T) {
	const goroutines, each = 8, 500
	plan := func(g int) string { return "metrics-test-" + strconv.Itoa(g%4) }
	before := map[string]float64{}
	for g := 0; g < 4; g++ {
		before[plan(g)] = decisions(t, plan(g))
	}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				limiterMetrics{}.Decided(plan(g), "allowed")
			}
		}()
	}
	wg.Wait()
	for g := 0; g < 4; g++ {
		got := decisions(t, plan(g)) - before[plan(g)]
		if want := float64(goroutines / 4 * each); got != want {
			t.Errorf("%s: %v decisions counted, want %v", plan(g), got, want)
		}
	}
}
