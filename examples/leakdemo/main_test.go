package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/examples/internal/exampletest"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// TestDemo runs the demo against a miniredis and checks what it observed,
// independently of outcome.check.
func TestDemo(t *testing.T) {
	res, out := exampletest.RunDemo(t, "", func(ctx context.Context, addr, _ string, out io.Writer) (*outcome, error) {
		return demo(ctx, addr, leakedSockets, out)
	})

	if n := len(res.report.Groups); n != 2 {
		t.Fatalf("report has %d groups, want 2:\n%s", n, res.report)
	}
	for _, want := range []struct {
		kind  tracker.Kind
		count int
		fn    string
	}{
		{tracker.KindConn, 3, ".lookupUser"},
		{tracker.KindPubSub, 1, ".watchEvents"},
	} {
		var g *tracker.Group
		for i := range res.report.Groups {
			if res.report.Groups[i].Kind == want.kind {
				g = &res.report.Groups[i]
			}
		}
		if g == nil {
			t.Errorf("no %q group in the report:\n%s", want.kind, res.report)
			continue
		}
		exampletest.CheckGroup(t, *g, want.kind, want.count, want.fn, "examples/leakdemo/main.go")
		if !strings.Contains(out, g.Site.ShortPos()) {
			t.Errorf("output does not name the %q origin %s", want.kind, g.Site.ShortPos())
		}
	}

	if !errors.Is(res.capErr, pool.ErrMaxConnections) {
		t.Errorf("Pub/Sub under a full cap: err = %v, want one matching pool.ErrMaxConnections", res.capErr)
	}
	if got := res.stats.OpenConnections; got != leakedSockets || res.stats.MaxConnections != leakedSockets {
		t.Errorf("Stats: %d of %d sockets open, want %d of %d", got, res.stats.MaxConnections, leakedSockets, leakedSockets)
	}
	if !errors.Is(res.closeErr, pool.ErrLeaked) {
		t.Errorf("Close: err = %v, want one matching pool.ErrLeaked", res.closeErr)
	}
	if res.closeLeft != leakedSockets {
		t.Errorf("Close's LeakError lists %d checkouts, want %d", res.closeLeft, leakedSockets)
	}
	if err := res.check(); err != nil {
		t.Errorf("outcome.check: %v", err)
	}

	goleak.VerifyNone(t)
}

// TestRun runs the demo as main does, with its embedded miniredis.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), "", leakedSockets, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, &out)
	}
	for _, want := range []string{"== LEAKS", ".lookupUser", ".watchEvents", "== CAP", "== CLOSE"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	goleak.VerifyNone(t)
}

// TestRunRejectsSmallCap checks that a cap the demo's own leaks exceed is
// refused up front rather than producing a confusing run.
func TestRunRejectsSmallCap(t *testing.T) {
	if err := run(context.Background(), "", leakedSockets-1, &bytes.Buffer{}); err == nil {
		t.Fatal("run with -max 3: nil error, want one")
	}
	goleak.VerifyNone(t)
}
