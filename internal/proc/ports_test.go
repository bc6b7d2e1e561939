package proc

import "testing"

// Ports chosen together must all differ: a fleet of gateways takes them at once, and two
// listeners on one port would leave one replica unstarted behind another's answers.
func TestFreePortsAreDistinct(t *testing.T) {
	ports, err := FreePorts(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("port %d given twice or invalid in %v", p, ports)
		}
		seen[p] = true
	}
}
