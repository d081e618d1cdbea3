package redisleak

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/internal/stack"
	"github.com/redisleak/redisleak/tracker"
)

// ErrLeaked is matched (with errors.Is) by the error [Find] returns. It is
// tracker.ErrLeaked, as is pool.ErrLeaked: one sentinel for every leak error
// of the library.
var ErrLeaked = tracker.ErrLeaked

// Find returns an error matching [ErrLeaked], whose text is the grouped
// report, when any checkout of any tracker (or of the trackers of
// [WithTrackers]) is still outstanding after the settle time; nil otherwise.
// With [WithGoroutines] it also returns goleak's error for leaked goroutines.
func Find(opts ...Option) error {
	cfg := buildConfig(opts)
	return cfg.find(func(tracker.Checkout) owner { return ownerThis }, nil)
}

// TestingT is what [VerifyNone] needs of a *testing.T or *testing.B, as
// goleak's TestingT is: the package need not import testing.
type TestingT interface {
	Error(args ...any)
	Helper()
	Name() string
}

// VerifyNone fails t, printing the grouped report, when a checkout that t
// made is still outstanding. Use it as
//
//	defer redisleak.VerifyNone(t)
//
// Like goleak, it retries for a short settle time before it flags, so a
// connection being returned right now is not reported.
//
// Attribution. A checkout is blamed on the test whose function appears in
// its stack (a Conn, Pub/Sub, client or blocking command records one), so a
// t.Parallel() test is not blamed for another test's checkouts. A subtest's
// check counts only what its own closure made (and the closures within it,
// goroutines included); a test's check counts its subtests' too. Subtests
// that share one closure (table-driven) cannot be told apart by their
// stacks: a parallel one's check leaves what that closure made to the
// parent's check (saying so in the test log) while a sibling still runs the
// closure, and counts it once none does, so a clean case is not blamed for
// its sibling's leak. A checkout made on a goroutine that is no closure of the test (an
// httptest server's handler, say), and one without a recorded stack (a plain
// command), name no test: they are reported under a heading that says they
// could not be attributed.
//
// Every leak is reported once: by the check it is blamed on, or by the first
// check that sees it when it is blamed on none. Later checks do not fail for
// it. To isolate a test completely, give its clients their own tracker
// (pool.WithTracker) and check only that one with [WithTrackers].
func VerifyNone(t TestingT, opts ...Option) {
	t.Helper()
	cfg := buildConfig(opts)
	top := topTest(t.Name())
	body := testBody(top)
	siblings := sharedClosure{body: body}
	if err := cfg.find(func(c tracker.Checkout) owner {
		o, outer := attribute(c, top, body)
		if o == ownerThis && outer == body && isSubtestClosure(body) && siblings.running() {
			siblings.left = true
			return ownerShared
		}
		return o
	}, siblings.reset); err != nil {
		t.Error(err)
	}
	if l, ok := t.(interface{ Logf(string, ...any) }); ok && siblings.left {
		l.Logf("redisleak: outstanding checkouts made by %s, a closure other parallel subtests run too (a table-driven test): a check cannot tell which of them made them, so it leaves them to the parent test's check (or VerifyTestMain's)", body)
	}
}

// sharedClosure tells whether a subtest's closure is being run by another
// goroutine too: parallel subtests of a table share one closure, and a
// checkout made by it cannot be told to be this subtest's rather than a
// sibling's. A sibling that already returned ran its own check first, so
// what is left is this one's. A sibling may be returning right now: each
// attempt of the check reads the stacks afresh (see config.find), so that a
// sibling that is gone by the last attempt leaves the leak to this check.
// Only the check's goroutine uses it.
type sharedClosure struct {
	body    string
	checked bool // running read the stacks in this attempt
	shared  bool // what it found
	left    bool // checkouts were left to the parent in this attempt
}

// running reports whether another goroutine runs the closure, reading the
// stacks once per attempt.
func (s *sharedClosure) running() bool {
	if !s.checked {
		s.shared, s.checked = otherGoroutineRuns(s.body), true
	}
	return s.shared
}

// reset starts an attempt.
func (s *sharedClosure) reset() { s.checked, s.left = false, false }

// otherGoroutineRuns reports whether a goroutine other than the caller's has
// function on its stack. It reads every goroutine's stack: it runs only when
// a check has found a leak to blame.
func otherGoroutineRuns(function string) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	// The caller's goroutine comes first; the others follow, one block
	// each, separated by a blank line.
	_, others, _ := strings.Cut(string(buf), "\n\n")
	return strings.Contains(others, "\n"+function+"(")
}

// isSubtestClosure reports whether body, a check's test function, is a
// subtest's closure ("pkg.TestA.func1") rather than a top-level test.
func isSubtestClosure(body string) bool {
	return body != "" && strings.Contains(body[strings.LastIndex(body, "Test"):], ".")
}

type owner int

const (
	ownerThis    owner = iota // made by the test being checked
	ownerOther                // made by another test: not this test's leak
	ownerUnknown              // no test in the stack
	ownerShared               // made by this subtest's closure, which parallel siblings run too: the parent's to report
)

// find retries until nothing counts or the settle time passes, then reports.
// A checkout is reported once: the checks after the one that reported it do
// not count it again (see reported). attempt, when not nil, runs before each
// attempt. While checkouts are left to a parent (ownerShared) the check
// keeps retrying too: the siblings running the shared closure may be
// returning, and what they leave once gone is this check's.
func (c *config) find(ownerOf func(tracker.Checkout) owner, attempt func()) error {
	deadline := time.Now().Add(c.settle)
	delay := time.Millisecond
	for {
		if attempt != nil {
			attempt()
		}
		mine, unknown, shared := c.outstanding(ownerOf)
		if len(mine)+len(unknown) == 0 && (shared == 0 || time.Now().After(deadline)) {
			return c.findGoroutines()
		}
		if len(mine)+len(unknown) == 0 {
			time.Sleep(delay)
			delay = min(2*delay, 100*time.Millisecond)
			continue
		}
		if time.Now().After(deadline) || settled(mine, unknown, c.settle) {
			reported.add(mine)
			reported.add(unknown)
			return errors.Join(leakError(mine, unknown), c.findGoroutines())
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// settled reports whether waiting longer cannot change the answer: every
// checkout found has been outstanding for the whole settle time already, so
// none is one being returned right now.
func settled(mine, unknown []tracker.Checkout, settle time.Duration) bool {
	for _, cs := range [][]tracker.Checkout{mine, unknown} {
		for _, c := range cs {
			if time.Since(c.Start) < settle {
				return false
			}
		}
	}
	return true
}

// reported are the checkouts a check has reported already. A leak fails the
// test it is blamed on, or the first check that sees it when it cannot be
// blamed on any, and not every check after, as a cascade would.
var reported reportedSet

type reportedSet struct {
	mu  sync.Mutex
	ids map[tracker.CheckoutID]struct{}
}

func (r *reportedSet) add(cs []tracker.Checkout) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = make(map[tracker.CheckoutID]struct{})
	}
	for _, c := range cs {
		r.ids[c.ID] = struct{}{}
	}
}

func (r *reportedSet) has(c tracker.Checkout) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[c.ID]
	return ok
}

func (c *config) outstanding(ownerOf func(tracker.Checkout) owner) (mine, unknown []tracker.Checkout, shared int) {
	trackers := c.trackers
	if trackers == nil {
		trackers = tracker.All()
	}
	for _, t := range trackers {
		for _, co := range t.Checkouts() {
			if c.ignored(co) || reported.has(co) {
				continue
			}
			switch ownerOf(co) {
			case ownerThis:
				mine = append(mine, co)
			case ownerUnknown:
				unknown = append(unknown, co)
			case ownerShared:
				shared++
			}
		}
	}
	return mine, unknown, shared
}

func (c *config) findGoroutines() error {
	if !c.goroutines {
		return nil
	}
	return goleak.Find(c.goleakOptions...)
}

// leakError renders the checkouts found, those attributed first.
func leakError(mine, unknown []tracker.Checkout) error {
	now := time.Now()
	var b strings.Builder
	b.WriteString(ErrLeaked.Error())
	if len(mine) > 0 {
		b.WriteString("\n\n")
		b.WriteString(tracker.GroupCheckouts(now, mine).String())
	}
	if len(unknown) > 0 {
		b.WriteString("\n\nnot attributed to any test (made on another goroutine, or a command without a recorded stack); when tests run in parallel these may be another test's:\n")
		b.WriteString(tracker.GroupCheckouts(now, unknown).String())
	}
	return &leakErr{text: b.String()}
}

type leakErr struct{ text string }

func (e *leakErr) Error() string { return e.text }
func (e *leakErr) Unwrap() error { return ErrLeaked }

// topTest returns the top-level test of a test name: "TestA" for "TestA/sub".
func topTest(name string) string {
	top, _, _ := strings.Cut(name, "/")
	return top
}

// testBody returns the function of the test or subtest that called
// VerifyNone, from the caller's stack: "example.com/app.TestA" for a test,
// "example.com/app.TestA.func2" for a subtest's closure. It returns "" when
// no function of the test top is on the stack (a check run from a helper
// goroutine): every checkout of the test is then the check's.
func testBody(top string) string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	body := ""
	for {
		f, more := frames.Next()
		if testFunction(f.Function) == top {
			body = f.Function // the outermost one wins: the function tRunner runs
		}
		if !more {
			return body
		}
	}
}

// attribute tells whose checkout c is, from the test functions in its stack,
// for the check of the test or subtest whose function is body. A checkout
// whose outermost test frame is body, or a closure within it, is the check's:
// a test's own, or its subtests'. One made by a sibling subtest (another
// closure of the same test) or by the parent before the subtest ran is not.
// Subtests that share one closure (table-driven) cannot be told apart by
// their stacks (see sharedClosure). It returns the outermost test frame's
// function too.
func attribute(c tracker.Checkout, top, body string) (owner, string) {
	outer := ""
	for _, f := range c.Stack {
		name := testFunction(f.Function)
		if name == "" {
			continue
		}
		if name != top {
			return ownerOther, ""
		}
		outer = f.Function
	}
	switch {
	case outer == "":
		return ownerUnknown, ""
	case body == "" || outer == body || strings.HasPrefix(outer, body+"."):
		return ownerThis, outer
	}
	return ownerOther, outer
}

// testFunction returns the test a frame's function belongs to ("TestA" for
// "example.com/app.TestA.func1"), or "" when it is not a test's.
func testFunction(function string) string {
	pkg := stack.PackagePath(function)
	rest := strings.TrimPrefix(strings.TrimPrefix(function, pkg), ".")
	name, _, _ := strings.Cut(rest, ".")
	if !strings.HasPrefix(name, "Test") || name == "TestMain" {
		return ""
	}
	if len(name) > 4 {
		if r := name[4]; r >= 'a' && r <= 'z' {
			return "" // "Testify" is not a test
		}
	}
	return name
}
