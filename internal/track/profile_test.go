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
