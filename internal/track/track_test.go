package track

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redisleak/redisleak/internal/track/tracktest"
)

func TestReleaseOnce(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("s")
	tok := s.Checkout(context.Background(), KindConn, "conn", 0)
	if !tok.Valid() {
		t.Fatal("token from Checkout is not Valid")
	}
	wantStats(t, e, Stats{Checkouts: 1, Outstanding: 1})
	if s.Outstanding() != 1 {
		t.Fatalf("Outstanding() = %d, want 1", s.Outstanding())
	}
	if !tok.Release() {
		t.Fatal("first Release = false, want true")
	}
	wantStats(t, e, Stats{Checkouts: 1, Releases: 1})
	if s.Outstanding() != 0 {
		t.Fatalf("Outstanding() after release = %d, want 0", s.Outstanding())
	}
	if !tok.Valid() {
		t.Fatal("released token is no longer Valid; Valid means came from a checkout")
	}
}

func TestDoubleRelease(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("s")
	tok := s.Checkout(context.Background(), KindCommand, "GET", 0)
	if !tok.Release() {
		t.Fatal("first Release = false")
	}
	if tok.Release() {
		t.Fatal("second Release = true, want false")
	}
	wantStats(t, e, Stats{Checkouts: 1, Releases: 1, InvalidReleases: 1})
	// A copy of the token is the same token.
	cp := tok
	if cp.Release() {
		t.Fatal("Release of a copy = true, want false")
	}
	wantStats(t, e, Stats{Checkouts: 1, Releases: 1, InvalidReleases: 2})
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
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("s")
	conn := func() Token { return s.Checkout(context.Background(), KindConn, "", 0) }
	old, cur := reuse(t, conn, conn)
	if cur.gen == old.gen {
		t.Fatalf("reused record kept generation %d", cur.gen)
	}
	before := e.Stats()
	if before.Outstanding != 1 {
		t.Fatalf("before the stale release: %+v, want 1 outstanding", before)
	}
	if old.Release() {
		t.Fatal("stale token released the checkout that reused its record")
	}
	if old.MarkDropped() {
		t.Fatal("stale token marked the checkout that reused its record as dropped")
	}
	after := e.Stats()
	if after.InvalidReleases != before.InvalidReleases+1 {
		t.Fatalf("InvalidReleases %d -> %d, want +1", before.InvalidReleases, after.InvalidReleases)
	}
	if after.Releases != before.Releases || after.Outstanding != 1 || after.Dropped != 0 {
		t.Fatalf("stale release changed the stats: %+v -> %+v", before, after)
	}
	if n := s.Outstanding(); n != 1 {
		t.Fatalf("Outstanding() = %d after stale release, want 1", n)
	}
	if cs := s.Checkouts(nil); len(cs) != 1 || cs[0].Dropped {
		t.Fatalf("checkouts after stale release: %+v", cs)
	}
	if !cur.Release() {
		t.Fatal("the current token could not release its own checkout")
	}
	if n := s.Outstanding(); n != 0 {
		t.Fatalf("Outstanding() = %d at end, want 0", n)
	}
}

func TestReusedRecordStartsClean(t *testing.T) {
	e := newTestEngine(captureAll, nil)
	s := e.NewScope("s")
	_, cur := reuse(t, func() Token {
		tok := s.Checkout(WithLabel(context.Background(), "req-1"), KindConn, "conn", 0)
		tok.SetConnName("c.p1.s1")
		tok.SetNote("a note")
		tok.MarkDropped()
		return tok
	}, func() Token {
		return s.Checkout(context.Background(), KindCommand, "GET", 0)
	})
	cs := e.Checkouts(nil)
	if len(cs) != 1 {
		t.Fatalf("checkouts: %+v", cs)
	}
	c := cs[0]
	if c.Kind != KindCommand || c.Op != "GET" || c.Dropped || c.Label != "" || c.ConnName != "" || c.Note != "" {
		t.Fatalf("reused record carries state of its last checkout: %+v", c)
	}
	cur.Release()
}

func TestZeroToken(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
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
	wantStats(t, e, Stats{})
}

func TestMarkDropped(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("s")
	tok := s.Checkout(context.Background(), KindConn, "", 0)
	if !tok.MarkDropped() {
		t.Fatal("first MarkDropped = false, want true")
	}
	if tok.MarkDropped() {
		t.Fatal("second MarkDropped = true, want false")
	}
	wantStats(t, e, Stats{Checkouts: 1, Outstanding: 1, Dropped: 1})
	if n := s.Outstanding(); n != 1 {
		t.Fatalf("Outstanding() = %d, want 1: a dropped checkout is still held", n)
	}
	cs := e.Checkouts(nil)
	if len(cs) != 1 || !cs[0].Dropped || cs[0].Kind != KindConn {
		t.Fatalf("checkouts = %+v, want 1 conn, dropped", cs)
	}
	// Releasing a dropped checkout still works, and the Dropped counter
	// remembers the leak.
	if !tok.Release() {
		t.Fatal("Release after MarkDropped = false")
	}
	wantStats(t, e, Stats{Checkouts: 1, Releases: 1, Dropped: 1})
}

func TestMarkDroppedAfterRelease(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("s")
	tok := s.Checkout(context.Background(), KindPubSub, "", 0)
	tok.Release()
	if tok.MarkDropped() {
		t.Fatal("MarkDropped after Release = true, want false")
	}
	wantStats(t, e, Stats{Checkouts: 1, Releases: 1})
}

func TestDroppedOrigin(t *testing.T) {
	clk := tracktest.NewClock()
	e := newTestEngine(captureLongLived, clk.Now)
	s := e.NewScope("10.0.0.1:6379")
	ctx := WithLabel(context.Background(), "req-7")
	o, line := s.Origin(ctx, 0), tracktest.Line()
	at := clk.Now()
	clk.Advance(90e9) // 90s
	s.Dropped(KindClient, o)

	wantStats(t, e, Stats{Checkouts: 1, Outstanding: 1, Dropped: 1})
	if n := s.Outstanding(); n != 1 {
		t.Fatalf("Outstanding() = %d, want 1", n)
	}
	cs := s.Checkouts(nil)
	if len(cs) != 1 {
		t.Fatalf("%d checkouts, want 1: %+v", len(cs), cs)
	}
	c := cs[0]
	if c.Kind != KindClient || !c.Dropped || c.Op != "" {
		t.Fatalf("checkout = %+v, want 1 dropped client", c)
	}
	if f := site(t, c); f.Line != line || !strings.HasSuffix(f.File, "track_test.go") ||
		!strings.HasSuffix(f.Function, ".TestDroppedOrigin") {
		t.Fatalf("site = %+v, want TestDroppedOrigin at track_test.go:%d", f, line)
	}
	if !c.Start.Equal(at) || e.Now().Sub(c.Start) != 90e9 {
		t.Fatalf("Start = %v, want %v: the age counts from Origin, not Dropped", c.Start, at)
	}
	if c.Label != "req-7" || c.Scope != "10.0.0.1:6379" {
		t.Fatalf("Label = %q, Scope = %q", c.Label, c.Scope)
	}
}

func TestScopeOutstandingAndCheckoutsAreScoped(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	a, b := e.NewScope("a"), e.NewScope("b")
	if a.Name() != "a" || a.Engine() != e {
		t.Fatalf("Name() = %q, Engine() = %p, want a, %p", a.Name(), a.Engine(), e)
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
	if n := e.NewScope("a").Outstanding(); n != 0 {
		t.Fatalf("another scope with the same name has %d outstanding, want 0", n)
	}
	only := func(s *Scope, kind Kind, n int) {
		t.Helper()
		cs := s.Checkouts(nil)
		if len(cs) != n {
			t.Fatalf("%s has %d checkouts, want %d", s.Name(), len(cs), n)
		}
		for _, c := range cs {
			if c.Kind != kind || c.Scope != s.Name() {
				t.Fatalf("%s has a checkout %v of %q", s.Name(), c.Kind, c.Scope)
			}
		}
	}
	only(a, KindConn, 3)
	only(b, KindPubSub, 2)
	if n := len(e.Checkouts(nil)); n != 5 {
		t.Fatalf("engine has %d checkouts, want 5", n)
	}
	toks[0].Release()
	if n := a.Outstanding(); n != 2 {
		t.Fatalf("a.Outstanding() after one release = %d, want 2", n)
	}
	if n := b.Outstanding(); n != 2 {
		t.Fatalf("b.Outstanding() after a's release = %d, want 2", n)
	}
}

// A child's checkouts are its parent's too, each still naming the child; a
// child's child is a sibling.
func TestChildScopes(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	parent := e.NewScope("cluster")
	a := parent.NewChild("cluster/a")
	b := a.NewChild("cluster/b")
	ctx := context.Background()
	parent.Checkout(ctx, KindConn, "", 0)
	a.Checkout(ctx, KindConn, "", 0)
	b.Checkout(ctx, KindConn, "", 0)
	if n := parent.Outstanding(); n != 3 {
		t.Fatalf("parent.Outstanding() = %d, want 3", n)
	}
	if n := a.Outstanding(); n != 1 {
		t.Fatalf("a.Outstanding() = %d, want 1: b is a's sibling", n)
	}
	var names []string
	for _, c := range parent.Checkouts(nil) {
		names = append(names, c.Scope)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"cluster", "cluster/a", "cluster/b"}) {
		t.Fatalf("parent's checkouts name %q", names)
	}
}

func TestCheckoutsKeep(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("s")
	s.Checkout(context.Background(), KindConn, "", 0).SetConnName("s.p1.s1")
	s.Checkout(context.Background(), KindConn, "", 0)
	cs := s.Checkouts(func(c *Checkout) bool { return c.ConnName != "" })
	if len(cs) != 1 || cs[0].ConnName != "s.p1.s1" {
		t.Fatalf("checkouts kept: %+v", cs)
	}
}

func TestNilContext(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("s")
	var ctx context.Context // callers that have none
	tok := s.Checkout(ctx, KindConn, "", 0)
	o := s.Origin(ctx, 0)
	s.Dropped(KindClient, o)
	cs := e.Checkouts(nil)
	if len(cs) != 2 {
		t.Fatalf("checkouts = %+v", cs)
	}
	for _, c := range cs {
		if c.Label != "" {
			t.Fatalf("Label = %q from a nil context", c.Label)
		}
	}
	if !tok.Release() {
		t.Fatal("Release = false")
	}
}

// A checkout whose done channel is closed has ended, even before a report
// sweeps it: its holder, collected afterwards, is no leak.
func TestMarkDroppedAfterDone(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("c")
	done := make(chan struct{})
	tok := s.CheckoutAt(KindPubSub, "subscribe", s.Origin(context.Background(), 0), done)
	close(done)
	if tok.MarkDropped() {
		t.Error("MarkDropped accepted a checkout whose done channel was closed")
	}
	if st := e.Stats(); st.Dropped != 0 || st.Outstanding != 0 {
		t.Errorf("stats %+v, want nothing dropped or outstanding", st)
	}
}

// TestCommandStampedWhenFirstSeen: a command checked out without a stack
// takes no clock reading; its age counts from the first time it is seen
// outstanding (a report, or the watch, which looks at least every second).
// A long-lived checkout, or a command with a stack, is timed at once.
func TestCommandStampedWhenFirstSeen(t *testing.T) {
	clk := tracktest.NewClock()
	e := newTestEngine(captureLongLived, clk.Now)
	s := e.NewScope("c")
	cmd := s.Checkout(context.Background(), KindCommand, "get", 0)
	conn := s.Checkout(context.Background(), KindConn, "", 0)
	clk.Advance(5 * time.Second)
	ages := func(s *Scope) map[Kind]time.Duration {
		m := map[Kind]time.Duration{}
		for _, c := range s.Checkouts(nil) {
			m[c.Kind] = s.Engine().Now().Sub(c.Start)
		}
		return m
	}
	if a := ages(s); a[KindCommand] != 0 || a[KindConn] != 5*time.Second {
		t.Fatalf("ages at first sight = %v, want the command 0 (stamped now) and the Conn 5s", a)
	}
	clk.Advance(3 * time.Second)
	if a := ages(s); a[KindCommand] != 3*time.Second || a[KindConn] != 8*time.Second {
		t.Fatalf("ages later = %v, want the command 3s and the Conn 8s", a)
	}
	cmd.Release()
	conn.Release()

	all := newTestEngine(captureAll, clk.Now).NewScope("all")
	stacked := all.Checkout(context.Background(), KindCommand, "get", 0)
	clk.Advance(2 * time.Second)
	if a := ages(all); len(a) != 1 || a[KindCommand] != 2*time.Second {
		t.Fatalf("a command with a stack: %v, want it timed from its checkout (2s)", a)
	}
	stacked.Release()
}

func TestKindShortLived(t *testing.T) {
	for k := KindCommand; k < NumKinds; k++ {
		want := k == KindCommand || k == KindPipeline
		if got := k.ShortLived(); got != want {
			t.Errorf("%v.ShortLived() = %v, want %v", k, got, want)
		}
	}
}
