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
	exampletest.CheckGroup(t, g, tracker.KindConn, buyers-stock, ".takeTicketBad", "examples/connerrorpath/main.go")
	exampletest.CheckLeakError(t, res.closeErr, buyers-stock)
	goleak.VerifyNone(t)
}

func TestFixed(t *testing.T) {
	res, _ := exampletest.RunDemo(t, "fixed", demo)
	if res.nextErr != nil {
		t.Errorf("GET after the sales: %v", res.nextErr)
	}
	exampletest.CheckClean(t, res.report, res.closeErr)
	goleak.VerifyNone(t)
}

func TestRun(t *testing.T) {
	exampletest.CheckRun(t, run)
	goleak.VerifyNone(t)
}
