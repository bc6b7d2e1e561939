// Package intern keeps one copy of each of the few values that many long-lived records repeat:
// a plan id or a status, held by every one of a hundred thousand cached tenants, costs one
// object rather than one per tenant (memory, and objects the collector visits on every cycle).
package intern

import "sync"

// Max bounds a table. The values interned come from the config (plan ids) or short lists
// (statuses); one past the bound is returned as made, not kept.
const Max = 1024

// Table holds the value made once from each distinct string. Safe for concurrent use.
type Table[V any] struct {
	mu    sync.Mutex
	m     map[string]V
	build func(string) V
}

// New returns an empty table whose values are built from their string by build.
func New[V any](build func(string) V) *Table[V] {
	return &Table[V]{m: make(map[string]V), build: build}
}

// Get returns the value kept for s, making and keeping it on first use.
func (t *Table[V]) Get(s string) V {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.m[s]; ok {
		return v
	}
	v := t.build(s)
	if len(t.m) < Max {
		t.m[s] = v
	}
	return v
}
