package tracker

import (
	"context"
	"errors"
	"sync"
	"weak"

	"github.com/redisleak/redisleak/internal/track"
)

// Tracker is a registry of checkouts. It is safe for concurrent use. Create one
// with [New], or use [Default], which every client shares unless told otherwise.
type Tracker struct {
	e *track.Engine // the registry itself; its Owner is the Tracker
}

// New returns a Tracker and registers it so that [All] can see it. The registration is weak: a
// Tracker that is no longer referenced is forgotten.
func New(opts ...Option) *Tracker {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	t := &Tracker{}
	t.e = track.New(track.Config{CaptureAll: cfg.capture == CaptureAll, Now: cfg.now, Owner: t})
	register(t)
	return t
}

var (
	defaultOnce    sync.Once
	defaultTracker *Tracker
)

// Default returns the process-wide Tracker, created on first use with the
// default options (and REDISLEAK=debug honoured).
func Default() *Tracker {
	defaultOnce.Do(func() { defaultTracker = New() })
	return defaultTracker
}

var registry struct {
	mu       sync.Mutex
	trackers []weak.Pointer[Tracker]
}

func register(t *Tracker) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	live := registry.trackers[:0]
	for _, w := range registry.trackers {
		if w.Value() != nil {
			live = append(live, w)
		}
	}
	registry.trackers = append(live, weak.Make(t))
}

// All returns every Tracker created by [New] (or [Default]) that is still
// referenced, oldest first.
func All() []*Tracker {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var out []*Tracker
	for _, w := range registry.trackers {
		if t := w.Value(); t != nil {
			out = append(out, t)
		}
	}
	return out
}

// ErrLeaked is the one sentinel of leaked checkouts: pool.ErrLeaked and
// redisleak.ErrLeaked are this error, so that errors.Is matches the error of
// a client's Close and of a test's check alike.
var ErrLeaked = errors.New("redisleak: connections leaked")

// Capture returns which checkouts record a stack.
func (t *Tracker) Capture() Capture {
	if t.e.CaptureAll() {
		return CaptureAll
	}
	return CaptureLongLived
}

// Stats counts what a tracker has seen. Outstanding == Checkouts - Releases
// always holds for one snapshot.
type Stats struct {
	Checkouts       uint64 `json:"checkouts"`        // checkouts ever made
	Releases        uint64 `json:"releases"`         // checkouts released
	Outstanding     uint64 `json:"outstanding"`      // checked out now
	InvalidReleases uint64 `json:"invalid_releases"` // releases of an already released token: a double Close somewhere
	Dropped         uint64 `json:"dropped"`          // holders garbage-collected without release: definite leaks
}

// Stats returns the tracker's counters, summed over its shards.
func (t *Tracker) Stats() Stats { return Stats(t.e.Stats()) }

// WithLabel returns a context whose checkouts carry label in reports: a request
// or trace id, say. Keep it short and free of secrets; it is printed verbatim.
func WithLabel(ctx context.Context, label string) context.Context {
	return track.WithLabel(ctx, label)
}

// LabelFrom returns the label attached to ctx by [WithLabel], or "" (also
// for a nil ctx).
func LabelFrom(ctx context.Context) string { return track.LabelFrom(ctx) }

// The engine's link for package pool: see internal/track/link.go.
func init() {
	track.SetLink(track.Link[Tracker, Report]{
		Engine:  func(t *Tracker) *track.Engine { return t.e },
		Tracker: func(e *track.Engine) *Tracker { return e.Owner().(*Tracker) },
		Report:  report,
	})
}
