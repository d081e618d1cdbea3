package tracker

import (
	"encoding/json"
	"runtime/pprof"
	"testing"

	"github.com/redisleak/redisleak/internal/track"
)

func TestKindNames(t *testing.T) {
	want := map[Kind]string{
		KindCommand:  "command",
		KindBlocking: "blocking",
		KindPipeline: "pipeline",
		KindConn:     "conn",
		KindPubSub:   "pubsub",
		KindClient:   "client",
		KindSocket:   "socket",
	}
	if len(want) != int(kindCount)-1 {
		t.Fatalf("test covers %d kinds, package has %d", len(want), kindCount-1)
	}
	for k, name := range want {
		if got := k.String(); got != name {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, name)
		}
		back, err := ParseKind(name)
		if err != nil || back != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", name, back, err, k)
		}
		text, err := k.MarshalText()
		if err != nil || string(text) != name {
			t.Errorf("MarshalText(%v) = %q, %v", k, text, err)
		}
		var u Kind
		if err := u.UnmarshalText(text); err != nil || u != k {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", text, u, err, k)
		}
	}
}

func TestKindInvalid(t *testing.T) {
	if got := Kind(0).String(); got != "kind(0)" {
		t.Fatalf("Kind(0).String() = %q, want kind(0)", got)
	}
	if got := kindCount.String(); got != "kind(8)" {
		t.Fatalf("Kind(8).String() = %q, want kind(8)", got)
	}
	if got := Kind(255).String(); got != "kind(255)" {
		t.Fatalf("Kind(255).String() = %q, want kind(255)", got)
	}
	const msg = `tracker: unknown kind "bogus" (want one of command, blocking, pipeline, conn, pubsub, client, socket)`
	k, err := ParseKind("bogus")
	if err == nil || err.Error() != msg || k != 0 {
		t.Fatalf("ParseKind(bogus) = %v, %v; want 0, %s", k, err, msg)
	}
	for _, s := range []string{"", "Conn", "CONN", " conn", "kind(0)"} {
		if _, err := ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q) succeeded", s)
		}
	}
	u := KindPubSub
	if err := u.UnmarshalText([]byte("bogus")); err == nil || err.Error() != msg {
		t.Fatalf("UnmarshalText(bogus) err = %v", err)
	}
	if u != KindPubSub {
		t.Fatalf("failed UnmarshalText changed the kind to %v", u)
	}
}

func TestKindJSON(t *testing.T) {
	b, err := json.Marshal(map[string]Kind{"k": KindConn})
	if err != nil || string(b) != `{"k":"conn"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var v struct{ K Kind }
	if err := json.Unmarshal([]byte(`{"K":"socket"}`), &v); err != nil || v.K != KindSocket {
		t.Fatalf("Unmarshal = %v, %v", v.K, err)
	}
	if err := json.Unmarshal([]byte(`{"K":4}`), &v); err == nil {
		t.Fatal("Unmarshal of a number succeeded; kinds are names")
	}
}

// TestProfileNames: the profiles ProfileNameOf names are the ones the
// engine registered, one per long-lived kind.
func TestProfileNames(t *testing.T) {
	for _, k := range []Kind{KindBlocking, KindConn, KindPubSub, KindSocket} {
		if pprof.Lookup(ProfileNameOf(k)) == nil {
			t.Errorf("no pprof profile %q", ProfileNameOf(k))
		}
	}
	if name := ProfileNameOf(KindConn); name != "redisleak.checkouts.conn" {
		t.Errorf("ProfileNameOf(KindConn) = %q", name)
	}
}

// kindCount is one past the engine's last kind: TestKindNames then fails
// when the engine has a kind this package does not name.
const kindCount = Kind(track.NumKinds)
