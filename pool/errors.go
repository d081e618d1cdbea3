package pool

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"weak"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/track"
	"github.com/redisleak/redisleak/tracker"
)

var (
	// ErrMaxConnections is matched (with errors.Is) by the error a caller gets
	// when it waited for a socket under the cap until its context deadline or
	// PoolTimeout passed while every slot of the cap was held: by a socket
	// open, one being dialed, or one closed that the server has not yet
	// confirmed gone. The error is a [*LimitError], whose text counts each
	// and names the call sites holding the sockets. Network, DNS, TLS and
	// authentication failures are never refusals: they surface as go-redis
	// surfaces them.
	ErrMaxConnections = errors.New("redisleak: max connections reached")

	// ErrLeaked is matched (with errors.Is) by the error [Client.Close]
	// returns when dedicated connections, Pub/Subs or blocking commands of the
	// client were still outstanding. The error is a [*LeakError] carrying the
	// report. It is tracker.ErrLeaked, as is redisleak.ErrLeaked.
	ErrLeaked = tracker.ErrLeaked
)

// LimitError is the refusal of a socket under the cap. It matches
// [ErrMaxConnections] and the cause of the refusal: the caller's context
// error when its deadline passed, or go-redis's redis.ErrPoolTimeout when
// PoolTimeout did. The refusal of a cluster or ring client (Node set, or the
// total cap) matches neither, only ErrMaxConnections: go-redis's cluster
// client would retry it, and then mark a healthy node failing.
type LimitError struct {
	// Node names the node whose cap is full ("<name>/<addr>") for a node of
	// a cluster or ring client under WithMaxConnectionsPerNode; empty for a
	// single client, and for the total cap of a cluster or ring client, which
	// counts every node.
	Node     string
	Max      int        // the cap
	Held     int        // slots held when the wait ended: Max, as the refusal says every slot was
	Open     int        // sockets open when the wait ended
	ByHolder OpenByKind // Open by who holds them
	// The slots held by state; read one by one, they may be off by one
	// from Held while a socket changes state.
	Dialing  int // slots held by dials in progress
	Draining int // slots held by sockets closed but not yet confirmed gone by the server
	Waiting  int // callers waiting for a socket besides this one, read at most 100ms before (see Holders)
	// Holders are the client's checkouts that hold a socket: Conns that took
	// one and Pub/Subs, grouped by call site. Commands in flight are counted
	// in ByHolder.Pool; a command records no call site unless the tracker
	// captures every stack. A burst of refusals shares one reading of the
	// holders and waiters, at most 100ms old.
	Holders tracker.Report
	from    string // where the cap came from: WithMaxConnections or MaxActiveConns
	cause   error
}

// maxHolderGroups bounds the holders listed in a LimitError's text; the full
// report stays in Holders.
const maxHolderGroups = 5

// Error counts the slots of the cap by state, and lists the largest groups of
// holders first, with one line of advice.
func (e *LimitError) Error() string {
	var b strings.Builder
	b.WriteString("redisleak: max connections reached")
	if e.Node != "" {
		b.WriteString(" on node " + e.Node)
	}
	fmt.Fprintf(&b, ": %d of %d slots held (%d open: %d by Conns, %d by Pub/Subs, %d by the pool; %d dialing; %d draining); %d other callers waiting",
		e.Held, e.Max, e.Open, e.ByHolder.Conn, e.ByHolder.PubSub, e.ByHolder.Pool, e.Dialing, e.Draining, e.Waiting)
	if e.cause != nil {
		b.WriteString(" (" + e.cause.Error() + ")")
	}
	groups := slices.SortedStableFunc(slices.Values(e.Holders.Groups), func(a, b tracker.Group) int {
		return cmp.Compare(b.Count, a.Count)
	})
	if len(groups) == 0 {
		b.WriteString("\nno Conn or Pub/Sub holds a socket: the pool's sockets serve commands")
	} else {
		b.WriteString("\nheld by:\n")
		top := tracker.Report{Groups: groups[:min(len(groups), maxHolderGroups)]}
		b.WriteString(top.String())
		if rest := len(groups) - len(top.Groups); rest > 0 {
			fmt.Fprintf(&b, "\n... and %d more groups", rest)
		}
	}
	from := e.from
	if from == "" {
		from = "WithMaxConnections"
	}
	fmt.Fprintf(&b, "\nadvice: raise the cap (%s %d)", from, e.Max)
	if len(groups) > 0 {
		fmt.Fprintf(&b, ", or close what the first group holds (%s at %s)", groups[0].Kind, groups[0].Site.ShortPos())
	}
	return b.String()
}

// Unwrap returns ErrMaxConnections and the cause of the refusal.
func (e *LimitError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrMaxConnections}
	}
	return []error{ErrMaxConnections, e.cause}
}

// refusal is the error of a caller whose wait for a socket ended with cause:
// a LimitError when every slot of the cap is held, and cause itself
// otherwise, since then the cap is not what stopped it. Nor is it while dials
// fail: the slots are then held by dials that will not connect, a larger cap
// would only have dialed more of them, and the network is the cause.
func (st *state) refusal(cause error) error {
	node := ""
	if st.group != nil {
		node = st.scope.Name()
	}
	return st.limitRefusal(st.lim, st.set, node, cause)
}

// limitRefusal is refusal for a wait for a slot of l, a cap set by set, of
// the node named node ("" for a client of one server), with st's checkouts
// as the holders.
func (st *state) limitRefusal(l *limiter, set settings, node string, cause error) error {
	c := l.counts()
	if l.max == 0 || int64(c.held) < l.max || l.failedWithin(set.poolTimeout) {
		return cause
	}
	st.refusals.Add(1)
	h := st.holders()
	e := &LimitError{
		Max:      set.maxConnections,
		Held:     c.held,
		Open:     c.open.total(),
		ByHolder: c.open,
		Dialing:  c.dialing,
		Draining: c.draining,
		Waiting:  h.waiting,
		Holders:  h.report,
		from:     set.capFrom,
		cause:    cause,
	}
	if node != "" {
		e.Node = node
		e.cause = noRetry{cause}
	}
	return e
}

// noRetry is the cause of a node's refusal: its text, without what it wraps.
// A cluster client retries an error matching redis.ErrPoolTimeout on the same
// node and then marks the node failing and tries another; a full cap is no
// failure of the node, and the client's caller already waited PoolTimeout.
type noRetry struct{ err error }

func (e noRetry) Error() string { return e.err.Error() }

// totalRefusal is refusal for a wait for a slot of a cluster or ring client's
// total cap, which ended with cause: it counts and names the holders of every
// node.
func (st *state) totalRefusal(cause error) error {
	g := st.group
	held := int(g.total.held.Load())
	if int64(held) < g.total.max || st.lim.failedWithin(st.set.poolTimeout) {
		return cause
	}
	st.refusals.Add(1)
	e := &LimitError{Max: int(g.total.max), Held: held, from: "WithMaxConnections", cause: noRetry{cause}}
	for _, n := range g.snapshot() {
		if g.latestFor(n) {
			c := n.lim.counts()
			e.Open += c.open.total()
			e.ByHolder.Pool += c.open.Pool
			e.ByHolder.PubSub += c.open.PubSub
			e.ByHolder.Conn += c.open.Conn
			e.Dialing += c.dialing
			e.Draining += c.draining
			e.Waiting += int(n.lim.waiting.Load())
		}
	}
	e.Holders = g.root.holders().report
	return e
}

// waiting counts the callers waiting for a socket now: for a pool turn or a
// new pooled socket (a Pub/Sub's reservation among them), or for a slot of
// the cap.
func (st *state) waiting() int {
	if st.countWaiting == nil { // a cluster's root, or // a dial of go-redis's while NewClient builds the client
		return 0
	}
	return st.countWaiting(0)
}

// waitingOf is state.waiting for the held-too-long watch, which must not keep
// the client reachable: a client dropped without Close is found by the
// garbage collector. Given the commands in flight, it counts as waiting too
// those that no socket serves: a command between go-redis's retries waits
// without being counted by go-redis.
func waitingOf(rc weak.Pointer[redis.Client], lim *limiter) func(inFlight int) int {
	return func(inFlight int) int {
		n := int(lim.waiting.Load())
		if c := rc.Value(); c != nil {
			ps := c.PoolStats()
			n += int(ps.PendingRequests)
			idle := int(ps.IdleConns)
			if ps.PipelineStats != nil {
				idle += int(ps.PipelineStats.IdleConns)
			}
			// Sockets serving a command: the pools' busy ones, and the
			// Conns' running one.
			// go-redis lists a socket the server closed as idle until it
			// hands it out: serving is at least 0.
			serving := max(0, int(lim.open[rolePool].Load())-idle) + int(lim.connBusy.Load())
			n = max(n, inFlight-serving)
		}
		return n
	}
}

// holders is what a refusal says of who holds the sockets and who waits,
// kept for a moment: a burst of refusals (thousands of callers whose
// deadlines pass at once) reads it once, so that each refusal costs the same
// however many wait.
type holders struct {
	at      time.Time
	report  tracker.Report // the checkouts holding sockets
	waiting int
}

// holdersTTL is how long one reading of the holders serves refusals.
const holdersTTL = 100 * time.Millisecond

func (st *state) holders() *holders {
	if h := st.lastHolders.Load(); h != nil && time.Since(h.at) < holdersTTL {
		return h
	}
	st.holdersMu.Lock()
	defer st.holdersMu.Unlock()
	if h := st.lastHolders.Load(); h != nil && time.Since(h.at) < holdersTTL {
		return h // another refusal read them meanwhile
	}
	st.sweepConns()
	h := &holders{
		at: time.Now(),
		report: scopeReport(st.scope, func(c *track.Checkout) bool {
			return (c.Kind == track.KindConn || c.Kind == track.KindPubSub) && c.ConnName != ""
		}),
		waiting: st.waiting(),
	}
	st.lastHolders.Store(h)
	return h
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
