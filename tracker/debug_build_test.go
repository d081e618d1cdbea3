//go:build redisleakdebug

package tracker

import "testing"

// Run with -tags redisleakdebug (as .ci/run does): the tag alone turns debug
// mode on, and with it a stack on every checkout.
func TestDebugBuild(t *testing.T) {
	if !Debug() {
		t.Fatal("Debug() = false in a redisleakdebug build")
	}
	if got := New().Capture(); got != CaptureAll {
		t.Fatalf("capture in a debug build = %s, want all", got)
	}
}
