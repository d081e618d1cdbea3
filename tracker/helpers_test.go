package tracker

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// thisLine returns the line of its caller, so a test can put it next to a
// call on the same line: tok, line := s.Checkout(...), thisLine().
func thisLine() int {
	_, _, line, ok := runtime.Caller(1)
	if !ok {
		panic("runtime.Caller failed")
	}
	return line
}

// fakeClock is a settable clock for withClock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newTestTracker returns a tracker with an explicit capture, so that the
// tests do not depend on REDISLEAK or the redisleakdebug build tag.
func newTestTracker(c Capture, opts ...Option) *Tracker {
	return New(append([]Option{WithCapture(c)}, opts...)...)
}

func wantStats(t *testing.T, tr *Tracker, want Stats) {
	t.Helper()
	if got := tr.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}
