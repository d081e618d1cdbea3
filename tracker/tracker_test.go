package tracker

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"weak"
)

func TestReleaseOnce(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := tr.NewScope("s")
	tok := s.Checkout(context.Background(), KindConn, "conn", 0)
	if !tok.Valid() {
		t.Fatal("token from Checkout is not Valid")
	}
	wantStats(t, tr, Stats{Checkouts: 1, Outstanding: 1})
	if s.Outstanding() != 1 {
		t.Fatalf("Outstanding() = %d, want 1", s.Outstanding())
	}
	if !tok.Release() {
		t.Fatal("first Release = false, want true")
	}
	wantStats(t, tr, Stats{Checkouts: 1, Releases: 1})
	if s.Outstanding() != 0 {
		t.Fatalf("Outstanding() after release = %d, want 0", s.Outstanding())
	}
	if !tok.Valid() {
		t.Fatal("released token is no longer Valid; Valid means came from a checkout")
	}
}

func TestDoubleRelease(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := tr.NewScope("s")
	tok := s.Checkout(context.Background(), KindCommand, "GET", 0)
	if !tok.Release() {
		t.Fatal("first Release = false")
	}
	if tok.Release() {
		t.Fatal("second Release = true, want false")
	}
	wantStats(t, tr, Stats{Checkouts: 1, Releases: 1, InvalidReleases: 1})
	// A copy of the token is the same token.
	cp := tok
	if cp.Release() {
		t.Fatal("Release of a copy = true, want false")
	}
	wantStats(t, tr, Stats{Checkouts: 1, Releases: 1, InvalidReleases: 2})
}

// reuse makes and releases a checkout with first, then makes one with next,
// until the second reuses the record of the first, and returns both tokens.
// Records come from a sync.Pool, so reuse is likely but not certain (the race
// detector drops pooled items at random, a GC may clear the pool): it tries
// up to 1000 times.
func reuse(t *testing.T, first, next func() Token) (old, cur Token) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		old = first()
		if !old.Release() {
			t.Fatal("Release of a fresh checkout = false")
		}
		cur = next()
		if cur.r == old.r {
			return old, cur
		}
		if !cur.Release() {
			t.Fatal("Release of a fresh checkout = false")
		}
	}
	t.Fatal("no record was reused in 1000 rounds")
	return
}

func TestStaleTokenCannotReleaseReusedRecord(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := tr.NewScope("s")
	conn := func() Token { return s.Checkout(context.Background(), KindConn, "", 0) }
	old, cur := reuse(t, conn, conn)
	if cur.gen == old.gen {
		t.Fatalf("reused record kept generation %d", cur.gen)
	}
	before := tr.Stats()
	if before.Outstanding != 1 {
		t.Fatalf("before the stale release: %+v, want 1 outstanding", before)
	}
	if old.Release() {
		t.Fatal("stale token released the checkout that reused its record")
	}
	if old.MarkDropped() {
		t.Fatal("stale token marked the checkout that reused its record as dropped")
	}
	after := tr.Stats()
	if after.InvalidReleases != before.InvalidReleases+1 {
		t.Fatalf("InvalidReleases %d -> %d, want +1", before.InvalidReleases, after.InvalidReleases)
	}
	if after.Releases != before.Releases || after.Outstanding != 1 || after.Dropped != 0 {
		t.Fatalf("stale release changed the stats: %+v -> %+v", before, after)
	}
	if n := s.Outstanding(); n != 1 {
		t.Fatalf("Outstanding() = %d after stale release, want 1", n)
	}
	if r := s.Report(); r.Len() != 1 || r.Groups[0].Dropped != 0 {
		t.Fatalf("report after stale release:\n%s", r)
	}
	if !cur.Release() {
		t.Fatal("the current token could not release its own checkout")
	}
	if n := s.Outstanding(); n != 0 {
		t.Fatalf("Outstanding() = %d at end, want 0", n)
	}
}

func TestReusedRecordStartsClean(t *testing.T) {
	tr := newTestTracker(CaptureAll)
	s := tr.NewScope("s")
	_, cur := reuse(t, func() Token {
		tok := s.Checkout(WithLabel(context.Background(), "req-1"), KindConn, "conn", 0)
		tok.MarkDropped()
		return tok
	}, func() Token {
		return s.Checkout(context.Background(), KindCommand, "GET", 0)
	})
	r := tr.Report()
	if len(r.Groups) != 1 {
		t.Fatalf("report:\n%s", r)
	}
	g := r.Groups[0]
	if g.Kind != KindCommand || g.Op != "GET" || g.Dropped != 0 || g.Labels != nil {
		t.Fatalf("reused record carries state of its last checkout: %+v", g)
	}
	cur.Release()
}

func TestZeroToken(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	var tok Token
	if tok.Valid() {
		t.Fatal("zero Token is Valid")
	}
	if tok.Release() {
		t.Fatal("zero Token Release = true")
	}
	if tok.MarkDropped() {
		t.Fatal("zero Token MarkDropped = true")
	}
	wantStats(t, tr, Stats{})
}

func TestMarkDropped(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := tr.NewScope("s")
	tok := s.Checkout(context.Background(), KindConn, "", 0)
	if !tok.MarkDropped() {
		t.Fatal("first MarkDropped = false, want true")
	}
	if tok.MarkDropped() {
		t.Fatal("second MarkDropped = true, want false")
	}
	wantStats(t, tr, Stats{Checkouts: 1, Outstanding: 1, Dropped: 1})
	if n := s.Outstanding(); n != 1 {
		t.Fatalf("Outstanding() = %d, want 1: a dropped checkout is still held", n)
	}
	r := tr.Report()
	if len(r.Groups) != 1 {
		t.Fatalf("report has %d groups, want 1:\n%s", len(r.Groups), r)
	}
	if g := r.Groups[0]; g.Count != 1 || g.Dropped != 1 || g.Kind != KindConn {
		t.Fatalf("group = %+v, want 1 conn, 1 dropped", g)
	}
	if !strings.Contains(r.String(), "1 garbage-collected without Close") {
		t.Fatalf("String() does not mention the dropped checkout:\n%s", r)
	}
	// Releasing a dropped checkout still works, and the Dropped counter
	// remembers the leak.
	if !tok.Release() {
		t.Fatal("Release after MarkDropped = false")
	}
	wantStats(t, tr, Stats{Checkouts: 1, Releases: 1, Dropped: 1})
}

func TestMarkDroppedAfterRelease(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := tr.NewScope("s")
	tok := s.Checkout(context.Background(), KindPubSub, "", 0)
	tok.Release()
	if tok.MarkDropped() {
		t.Fatal("MarkDropped after Release = true, want false")
	}
	wantStats(t, tr, Stats{Checkouts: 1, Releases: 1})
}

func TestDroppedOrigin(t *testing.T) {
	clk := newFakeClock()
	tr := newTestTracker(CaptureLongLived, withClock(clk.Now))
	s := tr.NewScope("10.0.0.1:6379")
	ctx := WithLabel(context.Background(), "req-7")
	o, line := s.Origin(ctx, 0), thisLine()
	clk.Advance(90e9) // 90s
	s.Dropped(KindClient, o)

	wantStats(t, tr, Stats{Checkouts: 1, Outstanding: 1, Dropped: 1})
	if n := s.Outstanding(); n != 1 {
		t.Fatalf("Outstanding() = %d, want 1", n)
	}
	r := s.Report()
	if len(r.Groups) != 1 {
		t.Fatalf("report has %d groups, want 1:\n%s", len(r.Groups), r)
	}
	g := r.Groups[0]
	if g.Kind != KindClient || g.Count != 1 || g.Dropped != 1 || g.Op != "" {
		t.Fatalf("group = %+v, want 1 dropped client", g)
	}
	if g.Site.Line != line || !strings.HasSuffix(g.Site.File, "tracker_test.go") ||
		!strings.HasSuffix(g.Site.Function, ".TestDroppedOrigin") {
		t.Fatalf("Site = %+v, want TestDroppedOrigin at tracker_test.go:%d", g.Site, line)
	}
	if g.Oldest != 90e9 {
		t.Fatalf("Oldest = %v, want 1m30s (age counts from Origin, not Dropped)", g.Oldest)
	}
	if !slices.Equal(g.Labels, []string{"req-7"}) || !slices.Equal(g.Scopes, []string{"10.0.0.1:6379"}) {
		t.Fatalf("Labels = %q, Scopes = %q", g.Labels, g.Scopes)
	}
}

func TestScopeOutstandingAndReportAreScoped(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	a, b := tr.NewScope("a"), tr.NewScope("b")
	if a.Name() != "a" || a.Tracker() != tr {
		t.Fatalf("Name() = %q, Tracker() = %p, want a, %p", a.Name(), a.Tracker(), tr)
	}
	ctx := context.Background()
	var toks []Token
	for i := 0; i < 3; i++ {
		toks = append(toks, a.Checkout(ctx, KindConn, "", 0))
	}
	for i := 0; i < 2; i++ {
		toks = append(toks, b.Checkout(ctx, KindPubSub, "", 0))
	}
	if n := a.Outstanding(); n != 3 {
		t.Fatalf("a.Outstanding() = %d, want 3", n)
	}
	if n := b.Outstanding(); n != 2 {
		t.Fatalf("b.Outstanding() = %d, want 2", n)
	}
	if n := tr.NewScope("a").Outstanding(); n != 0 {
		t.Fatalf("another scope with the same name has %d outstanding, want 0", n)
	}
	ra := a.Report()
	if ra.Len() != 3 || len(ra.Groups) != 1 || ra.Groups[0].Kind != KindConn ||
		!slices.Equal(ra.Groups[0].Scopes, []string{"a"}) {
		t.Fatalf("a.Report() =\n%s", ra)
	}
	rb := b.Report()
	if rb.Len() != 2 || len(rb.Groups) != 1 || rb.Groups[0].Kind != KindPubSub ||
		!slices.Equal(rb.Groups[0].Scopes, []string{"b"}) {
		t.Fatalf("b.Report() =\n%s", rb)
	}
	if n := tr.Report().Len(); n != 5 {
		t.Fatalf("tracker report has %d checkouts, want 5", n)
	}
	toks[0].Release()
	if n := a.Outstanding(); n != 2 {
		t.Fatalf("a.Outstanding() after one release = %d, want 2", n)
	}
	if n := b.Outstanding(); n != 2 {
		t.Fatalf("b.Outstanding() after a's release = %d, want 2", n)
	}
}

func TestScopesShareGroupBySite(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	a, b := tr.NewScope("a"), tr.NewScope("b")
	for _, s := range []*Scope{a, b, a} {
		s.Checkout(context.Background(), KindConn, "", 0) // one site, two scopes
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
	t1.NewScope("x").Checkout(context.Background(), KindConn, "", 0)
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
	tok := tr.NewScope("gone").Checkout(context.Background(), KindConn, "", 0)
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
	s := tr.NewScope("s")
	s.Checkout(ctx, KindConn, "", 0)
	s.Checkout(ctx, KindBlocking, "BLPOP", 0)
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
	s := tr.NewScope("s")
	all := map[string]bool{}
	for i := 0; i < 9; i++ {
		ctx := context.Background() // the last checkout has no label, and adds none
		if i < 8 {
			l := fmt.Sprintf("req-%d", i%7) // 7 distinct labels, one repeated
			all[l] = true
			ctx = WithLabel(ctx, l)
		}
		s.Checkout(ctx, KindConn, "", 0) // one site for all nine
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

func TestNilContext(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := tr.NewScope("s")
	var ctx context.Context // callers that have none
	tok := s.Checkout(ctx, KindConn, "", 0)
	o := s.Origin(ctx, 0)
	s.Dropped(KindClient, o)
	r := tr.Report()
	if r.Len() != 2 {
		t.Fatalf("report =\n%s", r)
	}
	for _, g := range r.Groups {
		if len(g.Labels) != 0 {
			t.Fatalf("Labels = %q from a nil context", g.Labels)
		}
	}
	if !tok.Release() {
		t.Fatal("Release = false")
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

// A checkout whose done channel is closed has ended, even before a report
// sweeps it: its holder, collected afterwards, is no leak.
func TestMarkDroppedAfterDone(t *testing.T) {
	tr := New()
	s := tr.NewScope("c")
	done := make(chan struct{})
	tok := s.CheckoutAt(KindPubSub, "subscribe", s.Origin(context.Background(), 0), done)
	close(done)
	if tok.MarkDropped() {
		t.Error("MarkDropped accepted a checkout whose done channel was closed")
	}
	if st := tr.Stats(); st.Dropped != 0 || st.Outstanding != 0 {
		t.Errorf("stats %+v, want nothing dropped or outstanding", st)
	}
}

// TestCommandStampedWhenFirstSeen: a command checked out without a stack
// takes no clock reading; its age counts from the first time it is seen
// outstanding (a report, or the watch, which looks at least every second).
// A long-lived checkout, or a command with a stack, is timed at once.
func TestCommandStampedWhenFirstSeen(t *testing.T) {
	clk := newFakeClock()
	tr := newTestTracker(CaptureLongLived, withClock(clk.Now))
	s := tr.NewScope("c")
	cmd := s.Checkout(context.Background(), KindCommand, "get", 0)
	conn := s.Checkout(context.Background(), KindConn, "", 0)
	clk.Advance(5 * time.Second)
	ages := func() map[Kind]time.Duration {
		m := map[Kind]time.Duration{}
		for _, g := range s.Report().Groups {
			m[g.Kind] = g.Oldest
		}
		return m
	}
	if a := ages(); a[KindCommand] != 0 || a[KindConn] != 5*time.Second {
		t.Fatalf("ages at first sight = %v, want the command 0 (stamped now) and the Conn 5s", a)
	}
	clk.Advance(3 * time.Second)
	if a := ages(); a[KindCommand] != 3*time.Second || a[KindConn] != 8*time.Second {
		t.Fatalf("ages later = %v, want the command 3s and the Conn 8s", a)
	}
	cmd.Release()
	conn.Release()

	all := newTestTracker(CaptureAll, withClock(clk.Now)).NewScope("all")
	stacked := all.Checkout(context.Background(), KindCommand, "get", 0)
	clk.Advance(2 * time.Second)
	if g := all.Report().Groups; len(g) != 1 || g[0].Oldest != 2*time.Second {
		t.Fatalf("a command with a stack: %+v, want it timed from its checkout (2s)", g)
	}
	stacked.Release()
}
