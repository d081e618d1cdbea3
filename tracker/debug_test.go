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
