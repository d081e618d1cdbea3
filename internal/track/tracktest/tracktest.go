// Package tracktest holds what the tests of the engine (internal/track) and
// of package tracker both need: a settable clock and the line of a call.
package tracktest

import (
	"runtime"
	"sync"
	"time"
)

// Line returns the line of its caller, so a test can put it next to a
// call on the same line: tok, line := s.Checkout(...), tracktest.Line().
func Line() int {
	_, _, line, ok := runtime.Caller(1)
	if !ok {
		panic("runtime.Caller failed")
	}
	return line
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to a fixed time.
func NewClock() *Clock {
	return &Clock{now: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
