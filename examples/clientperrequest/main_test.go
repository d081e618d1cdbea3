package main

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/examples/internal/exampletest"
	"github.com/redisleak/redisleak/tracker"
)

func TestBad(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "bad", demo)
	g := exampletest.OnlyGroup(t, res.report)
	// Any count: a client is reported once the GC has collected it.
	exampletest.CheckGroup(t, g, tracker.KindClient, 0, ".handleBad", "examples/clientperrequest/main.go")
	if g.Dropped == 0 {
		t.Errorf("group: dropped %d; want dropped > 0", g.Dropped)
	}
	if g.Count != requests || g.Dropped != requests {
		t.Logf("%d of %d clients reported dropped within the wait", g.Dropped, requests)
	}
	// A dropped client's cleanup stops the goroutine redisleak runs for it
	// (the held-too-long watch), and the GC closes its sockets, so once every
	// client is reported nothing of them is left. A client the GC has not
	// collected yet still has that goroutine: the leak itself, not a bug of
	// the test, so goleak is skipped then.
	if g.Dropped == requests {
		goleak.VerifyNone(t)
	}
}

func TestFixed(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "fixed", demo)
	exampletest.CheckClean(t, res.report, res.closeErr)
	goleak.VerifyNone(t)
}

func TestRun(t *testing.T) {
	out := exampletest.CheckRun(t, run)
	if strings.Contains(out, fmt.Sprintf("%d clients dropped", requests)) { // see TestBad
		goleak.VerifyNone(t)
	}
}
