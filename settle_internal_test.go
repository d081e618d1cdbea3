package redisleak

import (
	"testing"
	"time"

	"github.com/redisleak/redisleak/tracker"
)

// A check stops waiting once every checkout it found has been outstanding
// for the whole settle time: none is being returned right now.
func TestSettled(t *testing.T) {
	old := tracker.Checkout{Start: time.Now().Add(-2 * time.Second)}
	fresh := tracker.Checkout{Start: time.Now()}
	if !settled([]tracker.Checkout{old}, []tracker.Checkout{old}, time.Second) {
		t.Error("checkouts older than the settle time: not settled")
	}
	if settled([]tracker.Checkout{old}, []tracker.Checkout{fresh}, time.Second) {
		t.Error("a checkout made just now: settled")
	}
}
