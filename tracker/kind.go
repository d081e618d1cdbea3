package tracker

import "github.com/redisleak/redisleak/internal/track"

// Kind says what a checkout holds.
type Kind uint8

// The kinds of checkout. The zero Kind is invalid, so a forgotten kind is
// visible in reports rather than passing as a command. The library's engine
// (internal/track) numbers its kinds the same way.
const (
	KindCommand  Kind = iota + 1 // one command holding a pooled connection
	KindBlocking                 // a blocking command (BLPOP, XREAD BLOCK, ...) holding a pooled connection
	KindPipeline                 // a pipeline or transaction holding a pooled connection
	KindConn                     // a dedicated connection, held until its Close
	KindPubSub                   // a Pub/Sub, held until its Close
	KindClient                   // a client, reported once dropped without Close
	KindSocket                   // a raw socket, held until it is closed
)

// String returns the kind's name as used in reports: "command", "conn", ...
func (k Kind) String() string { return track.Kind(k).String() }

// ParseKind is the inverse of [Kind.String].
func ParseKind(s string) (Kind, error) {
	k, err := track.ParseKind(s)
	return Kind(k), err
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

// ProfileName prefixes the names of the runtime/pprof profiles of outstanding
// long-lived checkouts, one per kind ([ProfileNameOf]): Pub/Subs
// ("redisleak.checkouts.pubsub"), blocking commands (".blocking"), untracked
// sockets (".socket") and, under [CaptureAll], dedicated connections
// (".conn"). `go tool pprof` groups each by call site, the caller's own
// function as the leaf: with net/http/pprof mounted,
// `go tool pprof http://host/debug/pprof/redisleak.checkouts.pubsub`.
//
// Adding a checkout to a profile costs about a microsecond, more in a deep
// stack: runtime/pprof takes the stack again with runtime.Callers, since
// nothing lets it reuse the one the checkout took. That would more than
// double what a Conn made and closed per request costs, so dedicated
// connections go into theirs only under CaptureAll; [Tracker.Report] lists
// them with their stacks in every mode. Commands and pipelines stay out even
// under CaptureAll, to keep the profile's lock and allocations off their path.
const ProfileName = "redisleak.checkouts"

// ProfileNameOf returns the name of the pprof profile of kind's outstanding
// checkouts: ProfileName, a dot, and the kind's name. Only the long-lived
// kinds (conn, pubsub, blocking, socket) have one.
func ProfileNameOf(k Kind) string { return ProfileName + "." + k.String() }
