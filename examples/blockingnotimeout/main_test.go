package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/examples/internal/exampletest"
	"github.com/redisleak/redisleak/tracker"
)

func TestBad(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "bad", demo)
	if res.stopped {
		t.Errorf("the bad worker returned after the cancellation (%v); want it blocked until Close", res.workErr)
	}
	g := exampletest.OnlyGroup(t, res.report)
	exampletest.CheckGroup(t, g, tracker.KindBlocking, 1, ".workerBad", "examples/blockingnotimeout/main.go")
	if g.Op != "blpop (no timeout)" {
		t.Errorf("group: op %q, want \"blpop (no timeout)\"", g.Op)
	}
	exampletest.CheckLeakError(t, res.closeErr, 1)
	if res.workErr == nil {
		t.Error("the bad worker returned nil after Close; want the error of its interrupted BLPOP")
	}
	// demo waited for the worker to return after Close.
	goleak.VerifyNone(t)
}

func TestFixed(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "fixed", demo)
	if !res.stopped || res.workErr != nil {
		t.Errorf("fixed worker: returned %t, err %v; want it to return nil after the cancellation", res.stopped, res.workErr)
	}
	exampletest.CheckClean(t, res.report, res.closeErr)
	goleak.VerifyNone(t)
}

func TestRun(t *testing.T) {
	exampletest.CheckRun(t, run)
	goleak.VerifyNone(t)
}
