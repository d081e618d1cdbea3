package pool

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/signaldump"
	"github.com/redisleak/redisleak/internal/stack"
	"github.com/redisleak/redisleak/internal/track"
	"github.com/redisleak/redisleak/tracker"
)

// Client is a go-redis client whose connections are tracked and capped. It
// embeds *redis.Client, so every command method is go-redis's own; the
// methods below replace the ones that hand out connections.
//
// A Client must be closed with [Client.Close]. One that is garbage-collected
// without Close is reported as a leak (kind "client") with the line that
// created it.
type Client struct {
	*redis.Client
	st *state
}

var (
	_ redis.UniversalClient = (*Client)(nil)
	_ redis.Cmdable         = (*Client)(nil)
)

// state is what a Client, its clones, its hooks, its Conns and its Pub/Subs
// share.
type state struct {
	rc    *redis.Client // the client NewClient built; clones share its pools
	scope *track.Scope
	lim   *limiter
	log   *slog.Logger
	set   settings
	// inner is the dialer under the cap's: the caller's Options.Dialer, or
	// go-redis's own, built from the options go-redis filled in (DialTimeout
	// among them) once the client exists.
	inner atomic.Pointer[dialFunc]

	clientName   string      // the name the client's sockets start with on the server
	namesOnce    sync.Once   // one WARN when sockets cannot be named
	namesRefused atomic.Bool // the server refused a name: later sockets are not named

	closed atomic.Bool
	// retiring is set once its group began forgetting it, a node client
	// go-redis closed (see group.retireIfClosed).
	retiring       atomic.Bool
	closeCtx       context.Context // done once Close began: ends waits and the Pub/Sub watchers
	cancelClose    context.CancelFunc
	warnPubSubOnce sync.Once
	untrackedOnce  sync.Once // one WARN for Pub/Subs opened through the embedded client
	warm           sync.Once // a first command on the client, before the first reservation

	clientCleanup runtime.Cleanup // reports the client if dropped; set by NewClient, stopped by Close
	// group owns the client when it is a node of a cluster, ring or failover
	// client; nil for a client of its own.
	group *group
	// sentinels caps a failover client's sentinel sockets; nil otherwise.
	sentinels *sentinelCaps
	// ownsLimiter is set when lim is the client's alone: its Close closes
	// it. A node's limiter is its address's, closed by the group.
	ownsLimiter bool

	releaseDump func() // in debug mode, ends this client's hold on the SIGUSR1 dump
	stopWatch   func() // ends the held-too-long watch

	conns       connSet        // the Conns not yet closed
	watchers    sync.WaitGroup // under a cap, one per open Pub/Sub
	shed        atomic.Int64   // pooled sockets closed to make room for a Pub/Sub
	refusals    atomic.Int64   // LimitErrors returned
	canceled    atomic.Int64   // reservations abandoned because the caller's context was cancelled
	lastHolders atomic.Pointer[holders]
	holdersMu   sync.Mutex // one refusal at a time reads the holders
	// countWaiting counts the callers waiting, given the commands in
	// flight; it holds the client weakly, so the watch may keep it.
	countWaiting func(inFlight int) int

	reclaim     bool          // close abandoned Conns (WithReclaimAbandoned)
	reclaimIdle time.Duration // and those idle this long, if positive
	deadConns   atomic.Int64  // open Conns whose socket the server closed
	reclaimed   atomic.Int64  // Conns the client closed on their holder's behalf
}

// NewClient returns a client for opt, like redis.NewClient, that tracks its
// checkouts and, under a cap ([WithMaxConnections], or a MaxActiveConns set in
// opt), holds every socket it opens to it. Without a cap it refuses nothing
// bare go-redis would allow. opt is not modified; see [WithMaxConnections] for
// the settings a cap adjusts. It fails, naming the field and value, on nil
// options, negative sizes and bad option values.
func NewClient(opt *redis.Options, opts ...Option) (*Client, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	cfg.maxConnections = oneNodeCap(cfg)
	st, err := newState(opt, cfg, nodeOf{})
	if err != nil {
		return nil, err
	}
	origin := st.scope.Origin(context.Background(), 1)
	st.watchDropped(origin)
	return &Client{Client: st.rc, st: st}, nil
}

// newConfig applies opts to the defaults.
func newConfig(opts []Option) (*config, error) {
	cfg := &config{logger: slog.Default(), heldTooLong: tracker.DefaultHeldTooLong(), drainTimeout: DefaultDrainTimeout}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("pool: nil Option")
		}
		o(cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, cfg.errs[0]
	}
	if cfg.tracker == nil {
		cfg.tracker = tracker.Default()
	}
	return cfg, nil
}

// oneNodeCap is the cap of a client of one node: the smaller of
// WithMaxConnections and WithMaxConnectionsPerNode that is set.
func oneNodeCap(cfg *config) int {
	if cfg.maxConnections == 0 || (cfg.maxPerNode > 0 && cfg.maxPerNode < cfg.maxConnections) {
		return cfg.maxPerNode
	}
	return cfg.maxConnections
}

// nodeOf says how a client is built as one node of a cluster, ring or
// failover client; its zero value builds a client of its own.
type nodeOf struct {
	// group, when set, owns the node: it gives the node's scope (a child of
	// its own) and the limiter of the node's address, shared by every client
	// go-redis makes for that address and closed by the group.
	group *group
	// newRedis builds the go-redis client from the settled options;
	// redis.NewClient when nil.
	newRedis func(*redis.Options) *redis.Client
}

// newState builds the go-redis client for opt and what the library keeps of
// it. cfg.maxConnections is the cap of this client's sockets.
func newState(opt *redis.Options, cfg *config, node nodeOf) (*state, error) {
	o, set, notes, err := settle(opt, cfg)
	if err != nil {
		return nil, err
	}
	name := addrName(&o)
	if node.group != nil {
		name = clientName(&o) + "/" + o.Addr
	}
	for _, n := range notes {
		if node.group != nil && !node.group.noteOnce(n.msg+fmt.Sprint(n.attrs...)) {
			continue // one line for all the nodes
		}
		cfg.logger.Log(context.Background(), n.level, n.msg, append([]any{"client", name}, n.attrs...)...)
	}

	st := &state{
		log:         cfg.logger,
		set:         set,
		clientName:  clientName(&o),
		reclaim:     cfg.reclaim,
		reclaimIdle: cfg.reclaimIdle,
	}
	st.closeCtx, st.cancelClose = context.WithCancel(context.Background())
	inner := o.Dialer
	if inner == nil {
		inner = redis.NewDialer(&o) // until go-redis has filled in its defaults
	}
	st.inner.Store(&inner)
	if node.group != nil {
		st.scope = node.group.scope.NewChild(name)
		st.lim = node.group.limiterFor(o.Addr, set, cfg.drainTimeout)
		st.group = node.group
	} else {
		st.scope = newScope(cfg.tracker, name)
		st.lim = newLimiter(set.maxConnections, set.pubsubShare, set.poolTimeout, cfg.drainTimeout, st.closeCtx)
		st.ownsLimiter = true
		st.lim.untracked = untrackedOf(weak.Make(st))
	}
	o.Dialer = st.lim.dialer(st.dial, st.refuseSlot)
	if node.group != nil {
		o.Dialer = st.placePubSub(o.Dialer)
	}
	if !cfg.connNamesOff {
		o.OnConnect = st.onConnect(o.OnConnect)
	}
	newRedis := node.newRedis
	if newRedis == nil {
		newRedis = redis.NewClient
	}
	st.rc = newRedis(&o)
	st.countWaiting = waitingOf(weak.Make(st.rc), st.lim)
	if opt.Dialer == nil {
		d := contextDialer(st.rc.Options())
		st.inner.Store(&d)
	}
	if set.maxConnections == 0 {
		// Read back what go-redis runs with, rather than copy its defaults.
		st.set.poolSize = st.rc.Options().PoolSize
		st.set.poolTimeout = st.rc.Options().PoolTimeout
	}
	st.rc.AddHook(&hook{st: st})

	st.stopWatch = st.scope.WatchHeld(track.WatchConfig{
		Limits:         limitsOf(cfg.heldTooLong),
		Log:            cfg.logger,
		HolderFunction: "github.com/redisleak/redisleak/pool.(*hook)",
		CollectEvery:   cfg.collectEvery,
		Waiting:        st.countWaiting,
		Check:          checkConnsOf(weak.Make(st)),
	})
	st.releaseDump = func() {}
	if tracker.Debug() {
		st.releaseDump = signaldump.Hold(tracker.Dump)
	}
	return st, nil
}

// watchDropped reports the client, as made at origin, if its go-redis client
// is garbage-collected without Close. The cleanup watches the go-redis
// client, not the wrapper: a caller may keep c.Client and drop the wrapper.
// Nothing it is given may reach the go-redis client, or the client could
// never be collected.
func (st *state) watchDropped(origin track.Origin) {
	st.clientCleanup = runtime.AddCleanup(st.rc, clientCollected, droppedClient{
		lim: st.lim, scope: st.scope, origin: origin, log: st.log,
		releaseDump: st.releaseDump, stopWatch: st.stopWatch,
	})
}

// contextDialer is go-redis's dialer for o (o as go-redis filled it in:
// DialTimeout 5s unless set), except that a TLS handshake also ends with the
// dial's context, so that the client's Close ends it: go-redis's uses
// tls.DialWithDialer, which heeds only DialTimeout.
func contextDialer(o *redis.Options) dialFunc {
	if o.TLSConfig == nil {
		return redis.NewDialer(o)
	}
	plain := *o
	plain.TLSConfig = nil
	dialTCP := redis.NewDialer(&plain)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if o.DialTimeout > 0 {
			// One bound for the connection and the handshake, as
			// tls.DialWithDialer has.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, o.DialTimeout)
			defer cancel()
		}
		conn, err := dialTCP(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := o.TLSConfig
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// untrackedOf is state.untrackedPubSub for the limiter, which must not keep
// the client reachable (the client's cleanup holds the limiter).
func untrackedOf(st weak.Pointer[state]) func() (track.Token, bool) {
	return func() (track.Token, bool) {
		if st := st.Value(); st != nil {
			return st.untrackedPubSub()
		}
		return track.Token{}, false
	}
}

// untrackedPubSub tells, for a dial the library did not make itself, whether
// it runs on a caller's goroutine: go-redis dials pooled sockets on goroutines
// of its own, and only a Pub/Sub's dial on the caller's, so such a dial is a
// Pub/Sub opened through the embedded *redis.Client, which the library does
// not track. It is checked out as a socket, with the caller's stack, until
// the socket closes.
func (st *state) untrackedPubSub() (track.Token, bool) {
	var pcs [maxCallers]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if stack.IsCaller(f) {
			break
		}
		if !more {
			return track.Token{}, false // a goroutine of go-redis's
		}
	}
	tok := st.scope.CheckoutStack(context.Background(), track.KindSocket, untrackedOp, 0)
	st.untrackedOnce.Do(func() {
		site, _ := tok.Site()
		untrackedLog(st.log, st.scope.Name(), site)
	})
	return tok, true
}

// untrackedOp names the checkout of a Pub/Sub opened through the embedded
// *redis.Client.
const untrackedOp = "pubsub through *redis.Client"

// maxCallers bounds the frames untrackedPubSub looks at.
const maxCallers = 32

// checkConnsOf is state.checkConns for the watch, which must not keep the
// client reachable.
func checkConnsOf(st weak.Pointer[state]) func() {
	return func() {
		if st := st.Value(); st != nil {
			st.checkConns()
			if st.group != nil {
				st.group.retireIfClosed(st)
			}
		}
	}
}

// dial is the dialer under the cap's.
func (st *state) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return (*st.inner.Load())(ctx, network, addr)
}

type droppedClient struct {
	lim         *limiter
	scope       *track.Scope
	origin      track.Origin
	log         *slog.Logger
	releaseDump func()
	stopWatch   func()
}

// clientCollected runs when a client's go-redis client is garbage-collected
// without the library's Close: it ends what the client ran, so that nothing of
// the library outlives it, and reports the leak. A client closed through its
// embedded *redis.Client closed every socket it had; one dropped unclosed
// still had sockets open, or had them collected with it.
func clientCollected(d droppedClient) {
	d.releaseDump()
	d.stopWatch()
	c := d.lim.counts()
	if c.open.total()+c.dialing > 0 || d.lim.collected.Load() > 0 {
		d.scope.Dropped(track.KindClient, d.origin)
		return
	}
	d.log.Info("redisleak: client garbage-collected without its Close; it held no sockets, so it was closed through its embedded *redis.Client or never used",
		"client", d.scope.Name())
}

// addrName is the name a client goes by in reports and logs: its address, or
// "ClientName/address" when the options name it, so that two clients of one
// server are told apart.
func addrName(o *redis.Options) string {
	addr := o.Addr
	if addr == "" {
		addr = "localhost:6379"
	}
	if o.ClientName != "" {
		return o.ClientName + "/" + addr
	}
	return addr
}

// Name is the name the client goes by in reports, logs and metrics: its
// address, or "ClientName/address" when redis.Options.ClientName is set.
func (c *Client) Name() string { return c.st.scope.Name() }

// Close closes the client and every connection it opened. When dedicated
// connections, Pub/Subs or blocking commands without a timeout of the client
// were still outstanding, it logs the report at WARN and returns an error matching
// [ErrLeaked] (a [*LeakError]) joined with go-redis's own Close error, if any.
// Those checkouts stay in the tracker's reports until they are closed, so that
// a later check of the tracker sees them too. Closing twice returns an error matching
// redis.ErrClosed.
func (c *Client) Close() error { return c.st.close() }

func (st *state) close() error {
	if !st.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("redisleak: client %s already closed: %w", st.scope.Name(), redis.ErrClosed)
	}
	st.clientCleanup.Stop()

	st.sweepConns()
	leaked := scopeReport(st.scope, nil).Filter(isLeak)
	st.cancelClose()
	st.watchers.Wait()
	st.stopWatch()
	// Dials, slot waits and drains in flight end first; the sockets go-redis
	// closes next then close at once. A node's limiter is its address's,
	// closed by its group.
	if st.ownsLimiter {
		st.lim.close()
	}
	if st.sentinels != nil {
		st.sentinels.close()
	}
	err := st.rc.Close()

	if tracker.Debug() {
		fmt.Fprintf(os.Stderr, "redisleak: client %s closed\n%s\n", st.scope.Name(), scopeReport(st.scope, nil))
	}
	st.releaseDump()
	return st.leakError(leaked, err)
}

// isLeak tells the checkouts a client's Close reports as leaks: those that
// only their holder's Close ends.
func isLeak(g tracker.Group) bool {
	return g.Kind == tracker.KindConn || g.Kind == tracker.KindPubSub || g.Kind == tracker.KindSocket ||
		(g.Kind == tracker.KindBlocking && strings.HasSuffix(g.Op, waitsForever))
}

// leakError is the error Close returns: err, go-redis's, joined with a
// LeakError when leaked is not empty, which is also logged in one WARN line.
func (st *state) leakError(leaked tracker.Report, err error) error {
	if leaked.Len() == 0 {
		return err
	}
	// One line; the report is in the error returned, and in debug mode on
	// stderr.
	top := slices.MaxFunc(leaked.Groups, func(a, b tracker.Group) int { return cmp.Compare(a.Count, b.Count) })
	st.log.Warn("redisleak: client closed with outstanding checkouts; the error Close returns has the report",
		"client", st.scope.Name(), "outstanding", leaked.Len(), "call_sites", len(leaked.Groups),
		"top", fmt.Sprintf("%d × %s at %s", top.Count, top.Kind, top.Site.ShortPos()))
	return errors.Join(&LeakError{Report: leaked}, err)
}

// Report returns the client's outstanding checkouts now, grouped by call site.
func (c *Client) Report() tracker.Report {
	c.st.sweepConns()
	return scopeReport(c.st.scope, nil)
}

// Tracker returns the tracker that records the client's checkouts.
func (c *Client) Tracker() *tracker.Tracker { return trackerOf(c.st.scope) }

// WithTimeout returns a client that uses timeout for reads and writes and
// shares this client's pool, tracking and cap, as redis.Client.WithTimeout
// does. Closing either closes both. (go-redis's clone drops the hooks of the
// client it copies, so the tracking hook is added to it again.)
func (c *Client) WithTimeout(timeout time.Duration) *Client {
	rc := c.Client.WithTimeout(timeout)
	rc.AddHook(&hook{st: c.st})
	return &Client{Client: rc, st: c.st}
}

// slotWaitCause returns, for the error of a dial under the cap, what ended
// its wait for a slot: the dial's context, or the wait's own timeout. It
// returns false when the dial failed otherwise (a network error).
func slotWaitCause(ctx context.Context, err error) (error, bool) {
	if !errors.Is(err, errSlotWait) {
		return nil, false
	}
	if cause := ctx.Err(); cause != nil {
		return cause, true
	}
	return errSlotWait, true
}

// refuseSlot turns a failed wait for a cap slot in the dialer into the error
// the dialer returns.
func (st *state) refuseSlot(ctx context.Context, err error) error {
	cause, ok := slotWaitCause(ctx, err)
	if !ok {
		return err
	}
	if errors.Is(err, errTotalWait) {
		return st.totalRefusal(cause)
	}
	return st.refusal(cause)
}
