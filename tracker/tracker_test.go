package tracker

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"weak"

	"github.com/redisleak/redisleak/internal/track"
)

func TestScopesShareGroupBySite(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	a, b := newScope(tr, "a"), newScope(tr, "b")
	for _, s := range []*track.Scope{a, b, a} {
		s.Checkout(context.Background(), track.KindConn, "", 0) // one site, two scopes
	}
	r := tr.Report()
	if len(r.Groups) != 1 || r.Groups[0].Count != 3 {
		t.Fatalf("report =\n%s", r)
	}
	got := slices.Clone(r.Groups[0].Scopes)
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Scopes = %q, want a and b once each", r.Groups[0].Scopes)
	}
}

func TestTrackersAreIndependent(t *testing.T) {
	t1, t2 := newTestTracker(CaptureLongLived), newTestTracker(CaptureLongLived)
	newScope(t1, "x").Checkout(context.Background(), track.KindConn, "", 0)
	wantStats(t, t2, Stats{})
	if n := t2.Report().Len(); n != 0 {
		t.Fatalf("t2 reports %d checkouts made on t1", n)
	}
	wantStats(t, t1, Stats{Checkouts: 1, Outstanding: 1})
}

func TestAllAndDefault(t *testing.T) {
	d := Default()
	if Default() != d {
		t.Fatal("Default() returned two trackers")
	}
	tr := New()
	all := All()
	if !slices.Contains(all, tr) || !slices.Contains(all, d) {
		t.Fatalf("All() = %v does not contain New() %p and Default() %p", all, tr, d)
	}
	if i, j := slices.Index(all, d), slices.Index(all, tr); i > j {
		t.Fatalf("All() is not oldest first: Default at %d, newer tracker at %d", i, j)
	}
	runtime.KeepAlive(tr)
}

// newUnreferenced makes a tracker that has been used (so its record pool is
// registered with the runtime) and returns only a weak pointer to it.
//
//go:noinline
func newUnreferenced() weak.Pointer[Tracker] {
	tr := New()
	tok := newScope(tr, "gone").Checkout(context.Background(), track.KindConn, "", 0)
	tok.Release()
	return weak.Make(tr)
}

func TestAllForgetsUnreachableTrackers(t *testing.T) {
	keep := New()
	wp := newUnreferenced()
	// sync.Pool keeps its pools in a global list for two GC cycles, so the
	// tracker becomes unreachable after at most a few collections.
	for i := 0; i < 10 && wp.Value() != nil; i++ {
		runtime.GC()
	}
	if wp.Value() != nil {
		t.Fatal("an unreferenced tracker survived 10 GCs: something holds it strongly")
	}
	for _, tr := range All() {
		if weak.Make(tr) == wp {
			t.Fatal("All() returned a collected tracker")
		}
	}
	if !slices.Contains(All(), keep) {
		t.Fatal("All() lost a tracker that is still referenced")
	}
	// The next New prunes the registry of collected trackers.
	keep2 := New()
	registry.mu.Lock()
	for i, w := range registry.trackers {
		if w == wp {
			t.Errorf("registry.trackers[%d] still holds the collected tracker after New", i)
		}
	}
	registry.mu.Unlock()
	runtime.KeepAlive(keep)
	runtime.KeepAlive(keep2)
}

func TestLabels(t *testing.T) {
	if got := LabelFrom(context.Background()); got != "" {
		t.Fatalf("LabelFrom(Background) = %q", got)
	}
	ctx := WithLabel(context.Background(), "req-1")
	if got := LabelFrom(ctx); got != "req-1" {
		t.Fatalf("LabelFrom = %q, want req-1", got)
	}
	if got := LabelFrom(WithLabel(ctx, "req-2")); got != "req-2" {
		t.Fatalf("LabelFrom of a relabelled context = %q, want req-2", got)
	}

	tr := newTestTracker(CaptureLongLived)
	s := newScope(tr, "s")
	s.Checkout(ctx, track.KindConn, "", 0)
	s.Checkout(ctx, track.KindBlocking, "BLPOP", 0)
	r := tr.Report()
	if len(r.Groups) != 2 {
		t.Fatalf("want 2 groups:\n%s", r)
	}
	for _, g := range r.Groups {
		if !slices.Equal(g.Labels, []string{"req-1"}) {
			t.Fatalf("Labels = %q, want [req-1]", g.Labels)
		}
	}
	if !strings.Contains(r.String(), "labels req-1") {
		t.Fatalf("String() lacks the label:\n%s", r)
	}
}

func TestLabelsCapped(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := newScope(tr, "s")
	all := map[string]bool{}
	for i := 0; i < 9; i++ {
		ctx := context.Background() // the last checkout has no label, and adds none
		if i < 8 {
			l := fmt.Sprintf("req-%d", i%7) // 7 distinct labels, one repeated
			all[l] = true
			ctx = WithLabel(ctx, l)
		}
		s.Checkout(ctx, track.KindConn, "", 0) // one site for all nine
	}
	r := tr.Report()
	if len(r.Groups) != 1 || r.Groups[0].Count != 9 {
		t.Fatalf("want one group of 9:\n%s", r)
	}
	labels := r.Groups[0].Labels
	if len(labels) != maxLabels || maxLabels != 5 {
		t.Fatalf("Labels = %q: %d labels, want 5", labels, len(labels))
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if seen[l] {
			t.Fatalf("Labels = %q: %q repeated", labels, l)
		}
		if !all[l] {
			t.Fatalf("Labels = %q: %q was never used", labels, l)
		}
		seen[l] = true
	}
}

func TestCaptureOption(t *testing.T) {
	if c := newTestTracker(CaptureAll).Capture(); c != CaptureAll {
		t.Fatalf("Capture() = %v, want all", c)
	}
	if c := newTestTracker(CaptureLongLived).Capture(); c != CaptureLongLived {
		t.Fatalf("Capture() = %v, want long-lived", c)
	}
	if got, want := New().Capture(), captureFromEnv(); got != want {
		t.Fatalf("New().Capture() = %v, want %v from the environment", got, want)
	}
	if CaptureAll.String() != "all" || CaptureLongLived.String() != "long-lived" {
		t.Fatalf("Capture strings: %q, %q", CaptureAll, CaptureLongLived)
	}
}
