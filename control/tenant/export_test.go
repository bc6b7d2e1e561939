package tenant

import "context"

// Peek returns the snapshot c serves for id from memory, nil when a lookup would read the
// store or answer not found: tests wait on it without causing the reads they count.
func Peek(c *Cache, id string) *Snapshot {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.known[id]; e != nil && e.usable() {
		return e.view.Snapshot()
	}
	return nil
}

// SliceLister makes a Lister of a function that returns the tenants at once (the tests' loaders).
func SliceLister(list func(ctx context.Context, n int) ([]*Tenant, error)) Lister {
	return func(ctx context.Context, n int, each func(*Tenant)) error {
		ts, err := list(ctx, n)
		for _, t := range ts {
			each(t)
		}
		return err
	}
}

// Known counts the cache's entries, valid or not.
func Known(c *Cache) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.known)
}

// Sign is what b publishes for msg on the state channel: msg signed with its key.
func Sign(b *Bus, msg string) string { return string(b.sign([]byte(msg))) }
