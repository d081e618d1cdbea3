// Package exampletest holds the test helpers the example programs under
// examples/ share: running a demo against a fresh miniredis, running an
// example as its main does, and the checks on the report and errors of
// redisleak that the examples' tests have in common.
package exampletest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/redisleak/redisleak/examples/internal/example"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// RunDemo runs one variant of demo against a fresh miniredis, closed before
// RunDemo returns so that goleak sees none of its goroutines. It fails the
// test now if demo returns an error, logs demo's output and returns what demo
// observed and printed.
func RunDemo[O any](t *testing.T, variant string, demo example.Demo[O]) (O, string) {
	t.Helper()
	return RunDemoOn(t, miniredis.RunT(t), variant, demo)
}

// RunDemoOn is RunDemo against mr, a miniredis the caller started (for a demo
// that asks the server itself something); it too closes mr before returning.
func RunDemoOn[O any](t *testing.T, mr *miniredis.Miniredis, variant string, demo example.Demo[O]) (O, string) {
	t.Helper()
	defer mr.Close()
	var out bytes.Buffer
	res, err := demo(context.Background(), mr.Addr(), variant, &out)
	if err != nil {
		t.Fatalf("demo %q: %v\noutput:\n%s", variant, err, &out)
	}
	t.Logf("output:\n%s", &out)
	return res, out.String()
}

// CheckRun runs run as an example's main does by default (-variant both
// against an embedded miniredis), fails the test if it returns an error or if
// it accepts -variant worse, and returns its output.
func CheckRun(t *testing.T, run func(ctx context.Context, addr, variant string, out io.Writer) error) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), "", "both", &out); err != nil {
		t.Fatalf("run: %v\n%s", err, &out)
	}
	if err := run(context.Background(), "", "worse", &out); err == nil {
		t.Error("run -variant worse: nil error")
	}
	return out.String()
}

// OnlyGroup returns the single group of r, and fails the test now if r has
// not exactly one.
func OnlyGroup(t *testing.T, r tracker.Report) tracker.Group {
	t.Helper()
	if len(r.Groups) != 1 {
		t.Fatalf("report has %d groups, want 1:\n%s", len(r.Groups), r)
	}
	return r.Groups[0]
}

// CheckGroup reports an error unless g is count checkouts (any number when
// count is 0) of kind, at a line (not 0) of a file whose path ends in
// fileSuffix, in a function whose name ends in functionSuffix.
func CheckGroup(t *testing.T, g tracker.Group, kind tracker.Kind, count int, functionSuffix, fileSuffix string) {
	t.Helper()
	if g.Kind != kind {
		t.Errorf("group of kind %s, want %s", g.Kind, kind)
	}
	if count != 0 && g.Count != count {
		t.Errorf("%s group: count %d, want %d", g.Kind, g.Count, count)
	}
	if !strings.HasSuffix(g.Site.Function, functionSuffix) {
		t.Errorf("%s group: Site.Function %q, want suffix %q", g.Kind, g.Site.Function, functionSuffix)
	}
	if !strings.HasSuffix(g.Site.File, fileSuffix) || g.Site.Line == 0 {
		t.Errorf("%s group: Site %s:%d, want a line of %s", g.Kind, g.Site.File, g.Site.Line, fileSuffix)
	}
}

// CheckClean reports an error unless a fixed variant left nothing behind:
// its report r is empty and closeErr, the error of Client.Close, is nil.
func CheckClean(t *testing.T, r tracker.Report, closeErr error) {
	t.Helper()
	if r.Len() != 0 {
		t.Errorf("report not empty:\n%s", r)
	}
	if closeErr != nil {
		t.Errorf("Close: %v", closeErr)
	}
}

// CheckLeakError fails the test now unless err, the error of Client.Close,
// is a *pool.LeakError matching pool.ErrLeaked, and reports an error unless
// it lists n outstanding checkouts.
func CheckLeakError(t *testing.T, err error, n int) {
	t.Helper()
	var leak *pool.LeakError
	if !errors.As(err, &leak) || !errors.Is(err, pool.ErrLeaked) {
		t.Fatalf("Close: %v, want a *pool.LeakError matching pool.ErrLeaked", err)
	}
	if leak.Report.Len() != n {
		t.Errorf("LeakError lists %d checkouts, want %d", leak.Report.Len(), n)
	}
}
