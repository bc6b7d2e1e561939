package testenv

import (
	"testing"

	"github.com/saasgate/saasgate/internal/proc"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process may take
// it before the caller binds it; on this machine's loopback that race is rare enough to accept.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct ports as FreePort does: all are held at once while they are
// chosen, so none is handed out twice.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := proc.FreePorts(n)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return ports
}
