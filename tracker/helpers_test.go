package tracker

import (
	"testing"

	"github.com/redisleak/redisleak/internal/track"
)

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

// newScope returns a scope of tr's engine, as a client makes one: the tests
// make their checkouts through it.
func newScope(tr *Tracker, name string) *track.Scope { return tr.e.NewScope(name) }

// scopeReport is the report of s's checkouts, as a client's Report makes it.
func scopeReport(s *track.Scope) Report { return report(s.Engine(), s.Checkouts(nil)) }
