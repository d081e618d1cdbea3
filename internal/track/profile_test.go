package track

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
)

func TestProfileListsLongLivedCheckouts(t *testing.T) {
	p := pprof.Lookup(ProfileNameOf(KindConn))
	if p == nil {
		t.Fatalf("no profile %q", ProfileNameOf(KindConn))
	}
	before := p.Count()
	s := newTestEngine(captureAll, nil).NewScope("profile")
	conn := s.Checkout(context.Background(), KindConn, "", 0)
	cmd := s.Checkout(context.Background(), KindCommand, "get", 0)
	if got := p.Count() - before; got != 1 {
		t.Fatalf("profile grew by %d, want 1 (the conn, not the command)", got)
	}
	var b bytes.Buffer
	if err := p.WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "TestProfileListsLongLivedCheckouts") {
		t.Fatalf("profile does not name the caller:\n%s", b.String())
	}
	conn.Release()
	cmd.Release()
	if got := p.Count() - before; got != 0 {
		t.Fatalf("profile keeps %d released checkouts", got)
	}
}

// TestConnProfiledOnlyUnderCaptureAll: without CaptureAll a Conn's checkout
// keeps its stack but stays out of its profile, while a Pub/Sub's goes into
// its own.
func TestConnProfiledOnlyUnderCaptureAll(t *testing.T) {
	conns, pubsubs := pprof.Lookup(ProfileNameOf(KindConn)), pprof.Lookup(ProfileNameOf(KindPubSub))
	beforeConns, beforePubSubs := conns.Count(), pubsubs.Count()
	s := newTestEngine(captureLongLived, nil).NewScope("profile")
	conn := s.Checkout(context.Background(), KindConn, "", 0)
	defer conn.Release()
	ps := s.Checkout(context.Background(), KindPubSub, "subscribe", 0)
	defer ps.Release()
	if got := conns.Count() - beforeConns; got != 0 {
		t.Errorf("the conn profile grew by %d, want 0", got)
	}
	if got := pubsubs.Count() - beforePubSubs; got != 1 {
		t.Errorf("the pubsub profile grew by %d, want 1", got)
	}
	if _, ok := conn.Site(); !ok {
		t.Error("the conn's checkout has no stack")
	}
}
