package main

import (
	"context"
	"io"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/examples/internal/exampletest"
)

// runDemo runs one variant against a fresh miniredis, counting its
// connections.
func runDemo(t *testing.T, variant string) *outcome {
	t.Helper()
	mr := miniredis.RunT(t)
	res, _ := exampletest.RunDemoOn(t, mr, variant, func(ctx context.Context, addr, variant string, out io.Writer) (*outcome, error) {
		return demo(ctx, addr, variant, mr.CurrentConnectionCount, out)
	})
	return res
}

// TestBad: bare go-redis with PoolSize 5 opens a socket per subscriber. There
// is no report to check here: the bad variant does not use redisleak.
func TestBad(t *testing.T) {
	res := runDemo(t, "bad")
	if res.peak <= maxConn {
		t.Errorf("bare go-redis: peak %d sockets, want more than PoolSize %d", res.peak, maxConn)
	}
	if res.err != nil {
		t.Errorf("burst: %v", res.err)
	}
	goleak.VerifyNone(t)
}

func TestFixed(t *testing.T) {
	res := runDemo(t, "fixed")
	if res.peak > maxConn {
		t.Errorf("capped client: peak %d sockets, over the cap of %d", res.peak, maxConn)
	}
	if res.peak == 0 {
		t.Error("peak 0: the sampler saw no connection")
	}
	if res.err != nil {
		t.Errorf("burst: %v", res.err)
	}
	if res.closeErr != nil {
		t.Errorf("Close: %v", res.closeErr)
	}
	goleak.VerifyNone(t)
}

func TestRun(t *testing.T) {
	exampletest.CheckRun(t, run)
	goleak.VerifyNone(t)
}
