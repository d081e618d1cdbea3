package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/examples/internal/exampletest"
	"github.com/redisleak/redisleak/tracker"
)

func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	return m
}

func TestBad(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "bad", demo)
	if res.err != nil {
		t.Fatalf("enrichBad: %v", res.err)
	}
	if len(res.logs) != 2 {
		t.Fatalf("%d log records, want 2 (WARN then INFO)", len(res.logs))
	}
	for i, want := range []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelWarn, "redisleak: connection held too long"},
		{slog.LevelInfo, "redisleak: connection held too long was released"},
	} {
		r := res.logs[i]
		a := attrs(r)
		if r.Level != want.level || r.Message != want.msg {
			t.Errorf("record %d: %s %q, want %s %q", i, r.Level, r.Message, want.level, want.msg)
		}
		if a["kind"] != "conn" || !strings.Contains(a["origin"], ".enrichBad (heldtoolong/main.go:") {
			t.Errorf("record %d: kind %q origin %q, want conn at .enrichBad (heldtoolong/main.go:...)", i, a["kind"], a["origin"])
		}
		if held, err := time.ParseDuration(a["held"]); err != nil || held < threshold {
			t.Errorf("record %d: held %q, want at least %s", i, a["held"], threshold)
		}
	}
	// Not checked: the WARN's "holders" attribute. redisleak matches the
	// holders by the checkout's exact file:line, and the goroutine holding
	// this Conn has moved on to the slow call, a few lines below, so none is
	// attached (reported as a library issue).
	g := exampletest.OnlyGroup(t, res.report) // the report taken while the Conn was held
	exampletest.CheckGroup(t, g, tracker.KindConn, 1, ".enrichBad", "examples/heldtoolong/main.go")
	goleak.VerifyNone(t)
}

func TestFixed(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "fixed", demo)
	if res.err != nil {
		t.Fatalf("enrichFixed: %v", res.err)
	}
	for _, r := range res.logs {
		t.Errorf("unexpected log record: %s %q %v", r.Level, r.Message, attrs(r))
	}
	if res.report.Len() != 0 {
		t.Errorf("a report was taken:\n%s", res.report)
	}
	goleak.VerifyNone(t)
}

func TestRun(t *testing.T) {
	exampletest.CheckRun(t, run)
	goleak.VerifyNone(t)
}
