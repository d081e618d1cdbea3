package tracker

import "fmt"

// Kind says what a checkout holds.
type Kind uint8

// The kinds of checkout. The zero Kind is invalid, so a forgotten kind is
// visible in reports rather than passing as a command.
const (
	KindCommand  Kind = iota + 1 // one command holding a pooled connection
	KindBlocking                 // a blocking command (BLPOP, XREAD BLOCK, ...) holding a pooled connection
	KindPipeline                 // a pipeline or transaction holding a pooled connection
	KindConn                     // a dedicated connection, held until its Close
	KindPubSub                   // a Pub/Sub, held until its Close
	KindClient                   // a client, reported once dropped without Close
	KindSocket                   // a raw socket, held until it is closed
	kindCount
)

var kindNames = [kindCount]string{
	KindCommand:  "command",
	KindBlocking: "blocking",
	KindPipeline: "pipeline",
	KindConn:     "conn",
	KindPubSub:   "pubsub",
	KindClient:   "client",
	KindSocket:   "socket",
}

// String returns the kind's name as used in reports: "command", "conn", ...
func (k Kind) String() string {
	if k > 0 && k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of [Kind.String].
func ParseKind(s string) (Kind, error) {
	for k := KindCommand; k < kindCount; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("tracker: unknown kind %q (want one of command, blocking, pipeline, conn, pubsub, client, socket)", s)
}

// MarshalText renders the kind by name, so JSON reports read "conn", not 4.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind name.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// shortLived reports whether checkouts of kind k normally last one round trip.
// Those skip the stack capture unless everything is captured.
func (k Kind) shortLived() bool { return k == KindCommand || k == KindPipeline }
