package track

import (
	"runtime"
	"testing"
	"time"
)

// Captures, for newTestEngine.
const (
	captureLongLived = false
	captureAll       = true
)

// newTestEngine returns an engine with an explicit capture, and the clock of
// now unless it is nil.
func newTestEngine(all bool, now func() time.Time) *Engine {
	return New(Config{CaptureAll: all, Now: now})
}

func wantStats(t *testing.T, e *Engine, want Stats) {
	t.Helper()
	if got := e.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}

// site returns the first frame of c's stack, the caller's own.
func site(t *testing.T, c Checkout) runtime.Frame {
	t.Helper()
	frames := c.Stack.Frames()
	if len(frames) == 0 {
		t.Fatalf("checkout %+v has no stack", c)
	}
	return frames[0]
}
