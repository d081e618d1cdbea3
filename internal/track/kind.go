package track

import "fmt"

// Kind says what a checkout holds. tracker.Kind is the public face of the
// same values: its constants are these, and its methods call these.
type Kind uint8

// The kinds of checkout (see tracker.Kind). The zero Kind is invalid, so a
// forgotten kind is visible in reports rather than passing as a command.
const (
	KindCommand Kind = iota + 1
	KindBlocking
	KindPipeline
	KindConn
	KindPubSub
	KindClient
	KindSocket
	// NumKinds is one past the last kind.
	NumKinds
)

// kindNames is the one table of the kinds' names.
var kindNames = [NumKinds]string{
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
	if k > 0 && k < NumKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of [Kind.String]. Its error is the one
// tracker.ParseKind returns.
func ParseKind(s string) (Kind, error) {
	for k := KindCommand; k < NumKinds; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("tracker: unknown kind %q (want one of command, blocking, pipeline, conn, pubsub, client, socket)", s)
}

// ShortLived reports whether checkouts of kind k normally last one round
// trip. Those skip the stack capture unless everything is captured.
func (k Kind) ShortLived() bool { return k == KindCommand || k == KindPipeline }
