package main

import (
	"context"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// The meter reads Redis's INFO: a script run between two reads must show, or the bench would
// print zeros for Redis without saying so.
func TestRedisMeterCountsScripts(t *testing.T) {
	m := redisMeter{testenv.RedisClient(t)}
	scripts, cpu := m.read()
	for range 3 {
		if err := m.rdb.Eval(context.Background(), "return 1", nil).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after, cpuAfter := m.read()
	if after-scripts < 3 || cpu <= 0 || cpuAfter < cpu {
		t.Fatalf("scripts %d → %d, cpu %.3f → %.3f; want 3 or more scripts more, cpu counted", scripts, after, cpu, cpuAfter)
	}
	if s, c := (redisMeter{}).read(); s != 0 || c != 0 {
		t.Fatalf("the zero meter read %d, %.3f", s, c)
	}
}
