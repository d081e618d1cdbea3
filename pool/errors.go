package pool

import (
	"errors"
	"fmt"

	"github.com/redisleak/redisleak/tracker"
)

var (
	// ErrMaxConnections is matched (with errors.Is) by the error a caller gets
	// when it waited for a socket under the cap of [WithMaxConnections] until
	// its context deadline or PoolTimeout passed. The error is a
	// [*LimitError], whose text names the cap, the sockets open and the call
	// sites holding them.
	ErrMaxConnections = errors.New("redisleak: max connections reached")

	// ErrLeaked is matched (with errors.Is) by the error [Client.Close]
	// returns when dedicated connections, Pub/Subs or blocking commands of the
	// client were still outstanding. The error is a [*LeakError] carrying the
	// report.
	ErrLeaked = errors.New("redisleak: connections leaked")
)

// LimitError is the refusal of a socket under the cap. It matches
// [ErrMaxConnections] and, when the wait ended because of it, the caller's
// context error or go-redis's redis.ErrPoolTimeout.
type LimitError struct {
	Max     int            // the cap
	Open    int            // sockets open when the wait ended
	Holders tracker.Report // outstanding checkouts of the client, grouped by call site
	cause   error
}

// maxHolderGroups bounds the holders listed in a LimitError's text; the full
// report stays in Holders.
const maxHolderGroups = 5

// Error names the cap, the sockets open and the top holders.
func (e *LimitError) Error() string {
	msg := fmt.Sprintf("redisleak: max connections reached: %d of %d sockets open", e.Open, e.Max)
	if e.cause != nil {
		msg += " (" + e.cause.Error() + ")"
	}
	top := e.Holders
	if len(top.Groups) > maxHolderGroups {
		top.Groups = top.Groups[:maxHolderGroups]
	}
	if len(top.Groups) == 0 {
		return msg + "; no outstanding checkouts recorded"
	}
	return msg + "; held by:\n" + top.String()
}

// Unwrap returns ErrMaxConnections and the cause of the refusal.
func (e *LimitError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrMaxConnections}
	}
	return []error{ErrMaxConnections, e.cause}
}

// LeakError is returned by [Client.Close] when checkouts of the client were
// still outstanding. It matches [ErrLeaked].
type LeakError struct {
	Report tracker.Report
}

// Error holds the report of what was left open.
func (e *LeakError) Error() string {
	return fmt.Sprintf("redisleak: client closed with %d outstanding checkouts\n%s", e.Report.Len(), e.Report)
}

// Unwrap returns ErrLeaked.
func (e *LeakError) Unwrap() error { return ErrLeaked }
