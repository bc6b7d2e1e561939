package testenv

import (
	"sync"
	"time"
)

// Clock is a settable clock for code that takes a `Now func() time.Time`, safe for the
// concurrent replicas of a test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the time the clock is set at.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
