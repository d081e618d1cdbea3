package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redisleak/redisleak/internal/track"
	"github.com/redisleak/redisleak/internal/track/tracktest"
)

// The helpers below each make their checkout on one line and report that
// line, so a test can tell exactly which frame a report blames.

func checkoutConn(s *track.Scope) (track.Token, int) {
	tok, line := s.Checkout(context.Background(), track.KindConn, "", 0), tracktest.Line()
	return tok, line
}

func checkoutPubSub(s *track.Scope) (track.Token, int) {
	tok, line := s.Checkout(context.Background(), track.KindPubSub, "", 0), tracktest.Line()
	return tok, line
}

func checkoutGet(s *track.Scope) (track.Token, int) {
	tok, line := s.Checkout(context.Background(), track.KindCommand, "GET", 0), tracktest.Line()
	return tok, line
}

// checkoutVia makes a checkout one frame further down, blaming its caller.
func checkoutVia(s *track.Scope, kind track.Kind) track.Token {
	return s.Checkout(context.Background(), kind, "", 1)
}

func TestReportGroupsByCallSite(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := newScope(tr, "127.0.0.1:6379")
	var connLine, pubsubLine int
	for i := 0; i < 3; i++ {
		_, connLine = checkoutConn(s)
	}
	_, pubsubLine = checkoutPubSub(s)

	r := tr.Report()
	if len(r.Groups) != 2 {
		t.Fatalf("report has %d groups, want 2:\n%s", len(r.Groups), r)
	}
	if r.Len() != 4 {
		t.Fatalf("Len() = %d, want 4", r.Len())
	}
	conn, pubsub := r.Groups[0], r.Groups[1]
	if conn.Kind != KindConn || conn.Count != 3 {
		t.Fatalf("first group is %d × %v, want 3 × conn (most first)", conn.Count, conn.Kind)
	}
	if pubsub.Kind != KindPubSub || pubsub.Count != 1 {
		t.Fatalf("second group is %d × %v, want 1 × pubsub", pubsub.Count, pubsub.Kind)
	}
	for _, c := range []struct {
		g    Group
		fn   string
		line int
	}{{conn, "checkoutConn", connLine}, {pubsub, "checkoutPubSub", pubsubLine}} {
		site := c.g.Site
		// The tracker package is library code, but a _test.go file is not:
		// the site is the test helper, not Scope.Checkout.
		if !strings.HasSuffix(site.Function, "/tracker."+c.fn) {
			t.Errorf("%v Site.Function = %q, want the helper %s", c.g.Kind, site.Function, c.fn)
		}
		if !strings.HasSuffix(site.File, "/report_test.go") {
			t.Errorf("%v Site.File = %q, want report_test.go", c.g.Kind, site.File)
		}
		if site.Line != c.line {
			t.Errorf("%v Site.Line = %d, want %d", c.g.Kind, site.Line, c.line)
		}
		if len(c.g.Stack) < 2 || c.g.Stack[0] != site {
			t.Errorf("%v Stack does not start at Site: %+v", c.g.Kind, c.g.Stack)
			continue
		}
		if !strings.HasSuffix(c.g.Stack[1].Function, ".TestReportGroupsByCallSite") {
			t.Errorf("%v Stack[1] = %+v, want the test function", c.g.Kind, c.g.Stack[1])
		}
		for _, f := range c.g.Stack {
			if strings.HasPrefix(f.Function, "runtime.") {
				t.Errorf("%v Stack keeps a runtime frame: %+v", c.g.Kind, f)
			}
			if strings.Contains(f.File, "/internal/track/") {
				t.Errorf("%v Stack keeps a frame of the engine: %+v", c.g.Kind, f)
			}
		}
	}
}

func TestCheckoutSkip(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := newScope(tr, "s")
	_, line := checkoutVia(s, track.KindConn), tracktest.Line()
	g := tr.Report().Groups[0]
	if !strings.HasSuffix(g.Site.Function, ".TestCheckoutSkip") || g.Site.Line != line {
		t.Fatalf("with skip 1, Site = %+v, want TestCheckoutSkip line %d", g.Site, line)
	}
}

func TestCommandsWithoutCapture(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := newScope(tr, "s")
	checkoutGet(s)
	checkoutGet(s)
	s.Checkout(context.Background(), track.KindPipeline, "pipeline", 0)
	r := tr.Report()
	if len(r.Groups) != 2 {
		t.Fatalf("want 2 groups:\n%s", r)
	}
	g := r.Groups[0]
	if g.Kind != KindCommand || g.Op != "GET" || g.Count != 2 {
		t.Fatalf("first group = %+v, want 2 × command GET", g)
	}
	if g.Site != (Frame{}) || g.Stack != nil {
		t.Fatalf("command under CaptureLongLived has Site %+v, Stack %+v; want none", g.Site, g.Stack)
	}
	if p := r.Groups[1]; p.Kind != KindPipeline || p.Site != (Frame{}) || p.Stack != nil {
		t.Fatalf("pipeline group = %+v, want no stack", p)
	}
	out := r.String()
	if !strings.Contains(out, "2 × command GET") {
		t.Fatalf("String() lacks the command line:\n%s", out)
	}
	if n := strings.Count(out, "origin not captured"); n != 2 {
		t.Fatalf("String() says 'origin not captured' %d times, want 2:\n%s", n, out)
	}

	// CheckoutStack captures anyway.
	_, line := s.CheckoutStack(context.Background(), track.KindCommand, "SET", 0), tracktest.Line()
	r = tr.Report().Filter(func(g Group) bool { return g.Op == "SET" })
	if len(r.Groups) != 1 || r.Groups[0].Site.Line != line {
		t.Fatalf("CheckoutStack report, want site line %d:\n%s", line, r)
	}
}

func TestCommandsWithCaptureAll(t *testing.T) {
	tr := newTestTracker(CaptureAll)
	s := newScope(tr, "s")
	_, line := checkoutGet(s)
	r := tr.Report()
	if len(r.Groups) != 1 {
		t.Fatalf("want 1 group:\n%s", r)
	}
	g := r.Groups[0]
	if g.Kind != KindCommand || g.Op != "GET" {
		t.Fatalf("group = %+v", g)
	}
	if !strings.HasSuffix(g.Site.Function, ".checkoutGet") || g.Site.Line != line {
		t.Fatalf("Site = %+v, want checkoutGet line %d", g.Site, line)
	}
	if strings.Contains(r.String(), "origin not captured") {
		t.Fatalf("String() says origin not captured under CaptureAll:\n%s", r)
	}
}

func TestDefaultCaptureSkipsCommands(t *testing.T) {
	if captureFromEnv() != CaptureLongLived {
		t.Skip("REDISLEAK=debug or the redisleakdebug tag selects CaptureAll")
	}
	tr := New()
	checkoutGet(newScope(tr, "s"))
	if g := tr.Report().Groups[0]; g.Stack != nil {
		t.Fatalf("default capture recorded a stack for a command: %+v", g.Stack)
	}
}

func TestReportAges(t *testing.T) {
	clk := tracktest.NewClock()
	t0 := clk.Now()
	tr := newTestTracker(CaptureLongLived, withClock(clk.Now))
	s := newScope(tr, "s")
	checkoutConn(s) // t0
	clk.Advance(2 * time.Second)
	checkoutConn(s)   // t0+2s
	checkoutPubSub(s) // t0+2s
	clk.Advance(1 * time.Second)
	checkoutPubSub(s) // t0+3s
	clk.Advance(3 * time.Second)
	_, line := checkoutVia(s, track.KindSocket), tracktest.Line() // t0+6s

	clk.Advance(1500 * time.Millisecond)
	r := tr.Report()
	if want := t0.Add(7500 * time.Millisecond); !r.Taken.Equal(want) {
		t.Fatalf("Taken = %v, want %v", r.Taken, want)
	}
	type row struct {
		kind   Kind
		count  int
		oldest time.Duration
	}
	var got []row
	for _, g := range r.Groups {
		got = append(got, row{g.Kind, g.Count, g.Oldest})
	}
	// Most checkouts first; equal counts oldest first.
	want := []row{
		{KindConn, 2, 7500 * time.Millisecond},
		{KindPubSub, 2, 5500 * time.Millisecond},
		{KindSocket, 1, 1500 * time.Millisecond},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("groups = %+v, want %+v", got, want)
	}
	if r.Groups[2].Site.Line != line {
		t.Fatalf("socket Site = %+v, want line %d", r.Groups[2].Site, line)
	}
	out := r.String()
	for _, s := range []string{"2 × conn, oldest 7.5s", "2 × pubsub, oldest 5.5s", "1 × socket, oldest 1.5s"} {
		if !strings.Contains(out, s) {
			t.Errorf("String() lacks %q:\n%s", s, out)
		}
	}
}

func TestReportOrderOnEqualCounts(t *testing.T) {
	// Groups of equal counts come oldest first, whatever the order in
	// which they were made (and so whatever shard they landed in).
	for _, olderFirst := range []bool{true, false} {
		clk := tracktest.NewClock()
		tr := newTestTracker(CaptureLongLived, withClock(clk.Now))
		s := newScope(tr, "s")
		step := time.Second
		if !olderFirst {
			step = -step
		}
		checkoutPubSub(s)
		clk.Advance(step)
		checkoutConn(s)
		clk.Advance(10 * time.Second)
		r := tr.Report()
		want := []Kind{KindPubSub, KindConn}
		if !olderFirst {
			want = []Kind{KindConn, KindPubSub}
		}
		if len(r.Groups) != 2 || r.Groups[0].Kind != want[0] || r.Groups[1].Kind != want[1] {
			t.Fatalf("olderFirst=%v: want %v before %v:\n%s", olderFirst, want[0], want[1], r)
		}
		ages := []time.Duration{11 * time.Second, 10 * time.Second}
		if !olderFirst {
			ages = []time.Duration{10 * time.Second, 9 * time.Second}
		}
		if r.Groups[0].Oldest != ages[0] || r.Groups[1].Oldest != ages[1] {
			t.Fatalf("olderFirst=%v: ages %v, %v; want %v", olderFirst, r.Groups[0].Oldest, r.Groups[1].Oldest, ages)
		}
	}
}

func TestReportJSON(t *testing.T) {
	clk := tracktest.NewClock()
	tr := newTestTracker(CaptureLongLived, withClock(clk.Now))
	s := newScope(tr, "127.0.0.1:6379")
	for i := 0; i < 3; i++ {
		checkoutConn(s)
	}
	tok, _ := checkoutPubSub(s)
	tok.MarkDropped()
	checkoutGet(s)
	s.Checkout(WithLabel(context.Background(), "req-9"), track.KindBlocking, "BLPOP", 0)
	clk.Advance(5 * time.Second)
	r := tr.Report()

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	for _, want := range []string{
		`"kind":"conn"`, `"kind":"pubsub"`, `"kind":"command"`, `"kind":"blocking"`,
		`"op":"GET"`, `"count":3`, `"dropped":1`, `"oldest_ns":5000000000`,
		`"scopes":["127.0.0.1:6379"]`, `"labels":["req-9"]`, `"taken":"2024-03-01T12:00:05Z"`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
	if strings.Count(js, `"dropped"`) != 1 {
		t.Errorf("JSON has dropped on groups without drops (omitempty):\n%s", js)
	}

	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal: %v\n%s", err, js)
	}
	if !back.Taken.Equal(r.Taken) {
		t.Errorf("Taken round-tripped to %v, want %v", back.Taken, r.Taken)
	}
	if !reflect.DeepEqual(back.Groups, r.Groups) {
		t.Errorf("Groups did not round-trip:\n got %+v\nwant %+v", back.Groups, r.Groups)
	}

	var bad Report
	err = json.Unmarshal([]byte(`{"groups":[{"kind":"socks"}]}`), &bad)
	if err == nil || !strings.Contains(err.Error(), `unknown kind "socks"`) {
		t.Fatalf("Unmarshal of an unknown kind: err = %v", err)
	}
}

func TestReportString(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	if got := tr.Report().String(); got != "redisleak: no outstanding checkouts" {
		t.Fatalf("empty String() = %q", got)
	}
	s := newScope(tr, "127.0.0.1:6379")
	var line int
	for i := 0; i < 3; i++ {
		_, line = checkoutConn(s)
	}
	_, pline := checkoutPubSub(s)
	out := tr.Report().String()
	for _, want := range []string{
		"redisleak: 4 outstanding checkouts at 2 call sites\n",
		"\n3 × conn, oldest ",
		"\n1 × pubsub, oldest ",
		", client 127.0.0.1:6379\n",
		fmt.Sprintf("tracker.checkoutConn (tracker/report_test.go:%d)\n", line),
		fmt.Sprintf("tracker.checkoutPubSub (tracker/report_test.go:%d)\n", pline),
		fmt.Sprintf("/report_test.go:%d\n", line),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("String() lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "3 × conn") > strings.Index(out, "1 × pubsub") {
		t.Errorf("String() lists the smaller group first:\n%s", out)
	}
}

func TestReportFilter(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := newScope(tr, "s")
	for i := 0; i < 3; i++ {
		checkoutConn(s)
	}
	checkoutPubSub(s)
	r := tr.Report()

	conns := r.Filter(func(g Group) bool { return g.Kind == KindConn })
	if len(conns.Groups) != 1 || conns.Groups[0].Kind != KindConn || conns.Len() != 3 {
		t.Fatalf("Filter(conn) =\n%s", conns)
	}
	if !conns.Taken.Equal(r.Taken) {
		t.Fatalf("Filter changed Taken: %v, want %v", conns.Taken, r.Taken)
	}
	none := r.Filter(func(Group) bool { return false })
	if none.Len() != 0 || len(none.Groups) != 0 || none.String() != "redisleak: no outstanding checkouts" {
		t.Fatalf("Filter(none) = %+v", none)
	}
	all := r.Filter(func(Group) bool { return true })
	if !reflect.DeepEqual(all, r) {
		t.Fatalf("Filter(all) = %+v, want %+v", all, r)
	}
	if r.Len() != 4 || len(r.Groups) != 2 {
		t.Fatalf("Filter modified the original report:\n%s", r)
	}
}

// A dropped holder is a definite leak in the report; a client dropped
// without Close is reported from the line that made it, its age counted from
// there.
func TestReportDropped(t *testing.T) {
	clk := tracktest.NewClock()
	tr := newTestTracker(CaptureLongLived, withClock(clk.Now))
	s := newScope(tr, "10.0.0.1:6379")
	tok, connLine := checkoutConn(s)
	tok.MarkDropped()
	o, line := s.Origin(WithLabel(context.Background(), "req-7"), 0), tracktest.Line()
	clk.Advance(90 * time.Second)
	s.Dropped(track.KindClient, o)

	r := scopeReport(s)
	if len(r.Groups) != 2 {
		t.Fatalf("report has %d groups, want 2:\n%s", len(r.Groups), r)
	}
	for _, g := range r.Groups {
		want := Group{Kind: KindConn, Count: 1, Dropped: 1, Oldest: 90 * time.Second, Scopes: []string{"10.0.0.1:6379"}}
		wantLine, fn := connLine, ".checkoutConn"
		if g.Kind == KindClient {
			want.Kind, want.Labels = KindClient, []string{"req-7"}
			wantLine, fn = line, ".TestReportDropped"
		}
		if g.Kind != want.Kind || g.Count != 1 || g.Dropped != 1 || g.Op != "" || g.Oldest != want.Oldest ||
			!slices.Equal(g.Scopes, want.Scopes) || !slices.Equal(g.Labels, want.Labels) {
			t.Errorf("group = %+v, want %+v", g, want)
		}
		if g.Site.Line != wantLine || !strings.HasSuffix(g.Site.File, "report_test.go") || !strings.HasSuffix(g.Site.Function, fn) {
			t.Errorf("%v Site = %+v, want %s at report_test.go:%d", g.Kind, g.Site, fn, wantLine)
		}
	}
	if strings.Count(r.String(), "1 garbage-collected without Close (definite leak)") != 2 {
		t.Fatalf("String() does not mention the dropped checkouts:\n%s", r)
	}
}

func TestFrameString(t *testing.T) {
	f := Frame{Function: "main.handle", File: "/src/app/handler.go", Line: 42}
	if got := f.String(); got != "main.handle (app/handler.go:42)" {
		t.Fatalf("String() = %q", got)
	}
	if got := f.ShortPos(); got != "app/handler.go:42" {
		t.Fatalf("ShortPos() = %q", got)
	}
}

func TestReleasedCheckoutsLeaveTheReport(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := newScope(tr, "s")
	var toks []track.Token
	for i := 0; i < 3; i++ {
		tok, _ := checkoutConn(s)
		toks = append(toks, tok)
	}
	toks[1].Release()
	if r := tr.Report(); r.Len() != 2 || r.Groups[0].Count != 2 {
		t.Fatalf("after one release:\n%s", r)
	}
	toks[0].Release()
	toks[2].Release()
	if r := tr.Report(); r.Len() != 0 || len(r.Groups) != 0 {
		t.Fatalf("after all releases:\n%s", r)
	}
}

func TestConnNames(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	s := newScope(tr, "c")
	var toks []track.Token
	for i := range 12 {
		tok := s.Checkout(context.Background(), track.KindConn, "", 0) // one call site
		if i != 3 {                                                    // one checkout whose connection is not known
			if !tok.SetConnName(fmt.Sprintf("app.p7.s%d", 12-i)) {
				t.Fatal("SetConnName on a live checkout returned false")
			}
		}
		toks = append(toks, tok)
	}
	toks[0].SetConnName("app.p7.s100") // a reconnect moves the holder
	r := scopeReport(s)
	if len(r.Groups) != 1 {
		t.Fatalf("want one group, got %d:\n%s", len(r.Groups), r)
	}
	want := []string{"app.p7.s1", "app.p7.s2", "app.p7.s3", "app.p7.s4", "app.p7.s5", "app.p7.s6", "app.p7.s7", "app.p7.s8", "app.p7.s10", "app.p7.s11", "app.p7.s100"}
	if got := r.Groups[0].ConnNames; !slices.Equal(got, want) {
		t.Errorf("ConnNames = %v, want %v", got, want)
	}
	text := r.String()
	if !strings.Contains(text, "    on connections app.p7.s1 app.p7.s2 app.p7.s3 app.p7.s4 app.p7.s5 app.p7.s6 app.p7.s7 app.p7.s8 app.p7.s10 app.p7.s11 and 1 more\n") {
		t.Errorf("text does not list the first ten names:\n%s", text)
	}
	var checked int
	for _, c := range tr.Checkouts() {
		if c.ConnName == "app.p7.s100" {
			checked++
		}
	}
	if checked != 1 {
		t.Errorf("Checkouts() lists app.p7.s100 %d times, want once", checked)
	}
	for _, tok := range toks {
		tok.Release()
	}
	if toks[1].SetConnName("late") {
		t.Error("SetConnName on a released checkout returned true")
	}
	if (track.Token{}).SetConnName("x") {
		t.Error("SetConnName on the zero track.Token returned true")
	}
	// A reused record starts without a name.
	tok := s.Checkout(context.Background(), track.KindConn, "", 0)
	defer tok.Release()
	for _, c := range tr.Checkouts() {
		if c.ConnName != "" {
			t.Errorf("a new checkout carries the name %q of an earlier one", c.ConnName)
		}
	}
}

// An op that only repeats the kind is not written twice.
func TestReportOpNotRepeated(t *testing.T) {
	s := newScope(New(), "c")
	tok := s.Checkout(context.Background(), track.KindPipeline, "pipeline", 0)
	defer tok.Release()
	if text := scopeReport(s).String(); strings.Contains(text, "pipeline pipeline") || !strings.Contains(text, "1 × pipeline,") {
		t.Errorf("report = %q", text)
	}
}
