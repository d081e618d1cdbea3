package tracker

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/redisleak/redisleak/internal/track"
)

func TestDump(t *testing.T) {
	tr := newTestTracker(CaptureLongLived)
	tok := newScope(tr, "dump").Checkout(context.Background(), track.KindPubSub, "subscribe", 0)
	defer tok.Release()
	var b bytes.Buffer
	Dump(&b)
	if !strings.Contains(b.String(), "1 × pubsub subscribe") || !strings.Contains(b.String(), "TestDump") {
		t.Fatalf("Dump:\n%s", b.String())
	}
}
