package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/examples/internal/exampletest"
	"github.com/redisleak/redisleak/tracker"
)

func TestBad(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "bad", demo)
	g := exampletest.OnlyGroup(t, res.report)
	exampletest.CheckGroup(t, g, tracker.KindPubSub, 1, ".listenBad", "examples/pubsubgoroutine/main.go")
	if g.Op != "subscribe" {
		t.Errorf("group: op %q, want subscribe", g.Op)
	}
	if res.numSub != 1 {
		t.Errorf("PUBSUB NUMSUB after the listener returned: %d, want 1", res.numSub)
	}
	exampletest.CheckLeakError(t, res.closeErr, 1)
	// The demo closed the leaked Pub/Sub after Close reported it, which ends
	// go-redis's goroutines behind ps.Channel().
	goleak.VerifyNone(t)
}

func TestFixed(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "fixed", demo)
	if res.numSub != 0 {
		t.Errorf("PUBSUB NUMSUB after the listener returned: %d, want 0", res.numSub)
	}
	exampletest.CheckClean(t, res.report, res.closeErr)
	goleak.VerifyNone(t)
}

func TestRun(t *testing.T) {
	exampletest.CheckRun(t, run)
	goleak.VerifyNone(t)
}
