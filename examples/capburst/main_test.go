package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/examples/internal/exampletest"
	"github.com/redisleak/redisleak/internal/testserver"
)

// runDemo runs one variant against a fresh miniredis, counting its
// connections as the example does (see connCounter: miniredis's count lags
// behind closes).
func runDemo(t *testing.T, variant string) *outcome {
	t.Helper()
	mr := miniredis.RunT(t)
	res, _ := exampletest.RunDemoOn(t, mr, variant, func(ctx context.Context, addr, variant string, out io.Writer) (*outcome, error) {
		count, stop := connCounter(ctx, mr, addr)
		defer stop()
		return demo(ctx, addr, variant, count, out)
	})
	return res
}

// TestFixedOnRedisServer: on a real redis-server, whose count is exact, the
// capped client's sockets never exceed the cap.
func TestFixedOnRedisServer(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	count, stop := connCounter(ctx, nil, srv.Addr())
	defer stop()
	var out bytes.Buffer
	res, err := demo(ctx, srv.Addr(), "fixed", count, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, &out)
	}
	t.Logf("output:\n%s", &out)
	if res.peak > maxConn || res.peak == 0 || res.err != nil || res.closeErr != nil {
		t.Errorf("capped client on redis-server: peak %d (cap %d); burst: %v; Close: %v", res.peak, maxConn, res.err, res.closeErr)
	}
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
