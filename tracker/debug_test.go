package tracker

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDump(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	tok := tr.NewScope("dump").Checkout(context.Background(), KindPubSub, "subscribe", 0)
	defer tok.Release()
	var b bytes.Buffer
	Dump(&b)
	if !strings.Contains(b.String(), "1 × pubsub subscribe") || !strings.Contains(b.String(), "TestDump") {
		t.Fatalf("Dump:\n%s", b.String())
	}
}

func TestHoldSignalDump(t *testing.T) {
	r1 := HoldSignalDump()
	r2 := HoldSignalDump()
	r1()
	r1() // a second release of the same hold does nothing
	signalDump.mu.Lock()
	holders := signalDump.holders
	signalDump.mu.Unlock()
	if holders != 1 {
		t.Fatalf("holders = %d after one of two released (twice), want 1", holders)
	}
	r2()
	signalDump.mu.Lock()
	defer signalDump.mu.Unlock()
	if signalDump.holders != 0 || signalDump.stop != nil {
		t.Fatalf("handler still running after every hold was released")
	}
}
