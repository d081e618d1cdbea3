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
	goleak.VerifyNone(t, leakedHealthCheck)
}

// leakedHealthCheck is the goroutine go-redis runs behind ps.Channel() until
// the PubSub's Close: the bad variant never calls it, so the goroutine stays,
// as it would in the program. That is the leak the example shows.
var leakedHealthCheck = goleak.IgnoreTopFunction("github.com/redis/go-redis/v9.(*channel).initHealthCheck.func1")

func TestFixed(t *testing.T) {
	before := goleak.IgnoreCurrent() // the goroutine TestBad's variant leaked
	res, _ := exampletest.RunDemo(t, "fixed", demo)
	if res.numSub != 0 {
		t.Errorf("PUBSUB NUMSUB after the listener returned: %d, want 0", res.numSub)
	}
	exampletest.CheckClean(t, res.report, res.closeErr)
	goleak.VerifyNone(t, before)
}

func TestRun(t *testing.T) {
	exampletest.CheckRun(t, run)
	goleak.VerifyNone(t, leakedHealthCheck)
}
