package pool

import (
	"time"

	"github.com/redisleak/redisleak/internal/track"
	"github.com/redisleak/redisleak/tracker"
)

// A client feeds its tracker through the tracker's engine (internal/track):
// scopes, tokens and the held-too-long watch are the engine's, and the
// functions below cross between a *tracker.Tracker and its engine, and turn
// the engine's raw checkouts into a tracker.Report, through the link that
// package tracker registers (see internal/track/link.go).

// link is set once tracker is initialized, which is before this package is.
var link = track.LinkOf[tracker.Tracker, tracker.Report]()

// newScope returns a new scope of t's engine.
func newScope(t *tracker.Tracker, name string) *track.Scope {
	return link.Engine(t).NewScope(name)
}

// trackerOf returns the tracker whose engine s belongs to.
func trackerOf(s *track.Scope) *tracker.Tracker { return link.Tracker(s.Engine()) }

// scopeReport returns the outstanding checkouts of s (its children's
// included) that keep accepts, all of them when keep is nil, grouped by call
// site. keep sees each checkout before its stack is symbolized.
func scopeReport(s *track.Scope, keep func(*track.Checkout) bool) tracker.Report {
	return link.Report(s.Engine(), s.Checkouts(keep))
}

// limitsOf is h for the engine's watch. tracker.Kind and track.Kind have
// the same values: tracker's constants are the engine's.
func limitsOf(h tracker.HeldTooLong) map[track.Kind]time.Duration {
	limits := make(map[track.Kind]time.Duration, len(h))
	for k, d := range h {
		limits[track.Kind(k)] = d
	}
	return limits
}
