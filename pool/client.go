package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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
	// parent keeps the client a WithTimeout clone came from reachable, so
	// that dropping the original while using the clone is not reported as a
	// client dropped without Close.
	parent *Client
}

var (
	_ redis.UniversalClient = (*Client)(nil)
	_ redis.Cmdable         = (*Client)(nil)
)

// state is what a Client, its clones, its hooks, its Conns and its Pub/Subs
// share. Nothing in it points back to the Client, so that a Client dropped
// without Close can be garbage-collected and reported.
type state struct {
	rc     *redis.Client // the client NewClient built; clones share its pools
	scope  *tracker.Scope
	lim    *limiter
	log    *slog.Logger
	set    settings
	marker string // prefix of reservation markers, unique to this client

	clientName   string      // the name the client's sockets start with on the server
	namesOnce    sync.Once   // one WARN when sockets cannot be named
	namesRefused atomic.Bool // the server refused a name: later sockets are not named

	closed         atomic.Bool
	closing        chan struct{} // closed by Close: ends the Pub/Sub watchers
	warnPubSubOnce sync.Once
	warm           sync.Once // a first command on the client, before the first reservation

	clientCleanup runtime.Cleanup // reports the client if dropped; set by NewClient, stopped by Close

	releaseDump func() // in debug mode, ends this client's hold on the SIGUSR1 dump
	stopWatch   func() // ends the held-too-long watch

	watchers    sync.WaitGroup // one per open Pub/Sub
	connSockets atomic.Int64   // open Conns that have run a command, so hold a socket
	shed        atomic.Int64   // pooled sockets closed to make room for a Pub/Sub
	refusals    atomic.Int64   // LimitErrors returned
	canceled    atomic.Int64   // reservations abandoned because the caller's context was cancelled
}

// NewClient returns a client for opt, like redis.NewClient, that tracks its
// checkouts and holds its sockets under the cap of [WithMaxConnections]. opt
// is not modified; see [WithMaxConnections] for the settings the client
// adjusts. It fails, naming the field and value, on nil options, negative
// sizes and bad option values.
func NewClient(opt *redis.Options, opts ...Option) (*Client, error) {
	cfg := config{logger: slog.Default(), heldTooLong: tracker.DefaultHeldTooLong()}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("pool: NewClient: nil Option")
		}
		o(&cfg)
	}
	o, set, warnings, err := settle(opt, &cfg)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		cfg.logger.Warn("redisleak: adjusted a go-redis option to the connection cap", "client", o.Addr, "detail", w)
	}
	if cfg.tracker == nil {
		cfg.tracker = tracker.Default()
	}

	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	st := &state{
		scope:   cfg.tracker.NewScope(addrName(&o)),
		log:     cfg.logger,
		set:     set,
		marker:  "redisleak-reserve-" + hex.EncodeToString(nonce[:]) + "-",
		closing: make(chan struct{}),

		clientName: clientName(&o),
	}
	dial := o.Dialer
	if dial == nil {
		dial = redis.NewDialer(&o)
	}
	st.lim = newLimiter(set.maxConnections, set.poolTimeout)
	o.Dialer = st.lim.dialer(dial, st.refuseSlot)
	if !cfg.connNamesOff {
		o.OnConnect = st.onConnect(o.OnConnect)
	}
	st.rc = redis.NewClient(&o)
	st.rc.AddHook(&hook{st: st})

	st.stopWatch = st.scope.WatchHeld(tracker.WatchConfig{
		Limits:         cfg.heldTooLong,
		Log:            cfg.logger,
		HolderFunction: "github.com/redisleak/redisleak/pool.(*hook)",
		CollectEvery:   cfg.collectEvery,
	})
	st.releaseDump = func() {}
	if tracker.Debug() {
		st.releaseDump = tracker.HoldSignalDump()
	}

	c := &Client{Client: st.rc, st: st}
	origin := st.scope.Origin(context.Background(), 1)
	st.clientCleanup = runtime.AddCleanup(c, reportDropped, droppedClient{scope: st.scope, origin: origin, releaseDump: st.releaseDump, stopWatch: st.stopWatch})
	return c, nil
}

type droppedClient struct {
	scope       *tracker.Scope
	origin      tracker.Origin
	releaseDump func()
	stopWatch   func()
}

// reportDropped runs when a client is garbage-collected without Close: it
// reports the leak and ends what the client ran, so that nothing of the
// library outlives it.
func reportDropped(d droppedClient) {
	d.scope.Dropped(tracker.KindClient, d.origin)
	d.releaseDump()
	d.stopWatch()
}

func addrName(o *redis.Options) string {
	if o.Addr == "" {
		return "localhost:6379"
	}
	return o.Addr
}

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

	leaked := st.scope.Report().Filter(func(g tracker.Group) bool {
		return g.Kind == tracker.KindConn || g.Kind == tracker.KindPubSub ||
			(g.Kind == tracker.KindBlocking && strings.HasSuffix(g.Op, waitsForever))
	})
	close(st.closing)
	st.watchers.Wait()
	st.stopWatch()
	st.lim.closing.Store(true)
	err := st.rc.Close()
	st.lim.drains.Wait()

	if tracker.Debug() {
		fmt.Fprintf(os.Stderr, "redisleak: client %s closed\n%s\n", st.scope.Name(), st.scope.Report())
	}
	st.releaseDump()
	if leaked.Len() == 0 {
		return err
	}
	st.log.Warn("redisleak: client closed with outstanding checkouts",
		"client", st.scope.Name(), "outstanding", leaked.Len(), "report", leaked.String())
	return errors.Join(&LeakError{Report: leaked}, err)
}

// Report returns the client's outstanding checkouts now, grouped by call site.
func (c *Client) Report() tracker.Report { return c.st.scope.Report() }

// Tracker returns the tracker that records the client's checkouts.
func (c *Client) Tracker() *tracker.Tracker { return c.st.scope.Tracker() }

// WithTimeout returns a client that uses timeout for reads and writes and
// shares this client's pool, tracking and cap, as redis.Client.WithTimeout
// does. Closing either closes both. (go-redis's clone drops the hooks of the
// client it copies, so the tracking hook is added to it again.)
func (c *Client) WithTimeout(timeout time.Duration) *Client {
	rc := c.Client.WithTimeout(timeout)
	rc.AddHook(&hook{st: c.st})
	return &Client{Client: rc, st: c.st, parent: c}
}

// limitError builds the refusal returned to a caller that waited for a socket
// under the cap in vain.
func (st *state) limitError(cause error) *LimitError {
	st.refusals.Add(1)
	return &LimitError{
		Max:     st.set.maxConnections,
		Open:    int(st.lim.open.Load()),
		Holders: st.scope.Report(),
		cause:   cause,
	}
}

// refuseSlot turns a failed wait for a cap slot in the dialer into the error
// the dialer returns.
func (st *state) refuseSlot(ctx context.Context, err error) error {
	if !errors.Is(err, errSlotWait) {
		return err
	}
	return st.limitError(ctx.Err())
}
