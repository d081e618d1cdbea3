package pool

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/redisleak/redisleak/tracker"
)

// Option configures [NewClient].
type Option func(*config)

type config struct {
	heldTooLong    tracker.HeldTooLong
	maxConnections int
	maxPerNode     int // WithMaxConnectionsPerNode
	tracker        *tracker.Tracker
	logger         *slog.Logger
	connNamesOff   bool
	collectEvery   time.Duration
	drainTimeout   time.Duration
	reclaim        bool          // WithReclaimAbandoned
	reclaimIdle    time.Duration // WithReclaimAbandoned's threshold
	errs           []error       // bad option values, reported by NewClient

	// The constructor and the go-redis options type errors name; NewClient
	// and redis.Options when empty.
	fn, optType string
	// For the nodes of a cluster or ring client: the option their cap comes
	// from (WithMaxConnections when empty), and whether go-redis, not the
	// caller, chose their PoolSize (no WARN when the cap lowers it).
	capName       string
	poolSizeUnset bool
	// pubsubSlot keeps one slot of the cap out of the pools, for Pub/Subs:
	// for pools go-redis built, which cannot lend a Pub/Sub a turn (see
	// newFailoverClusterClient).
	pubsubSlot bool
}

func (c *config) constructor() string { return cmp.Or(c.fn, "NewClient") }
func (c *config) optionsType() string { return cmp.Or(c.optType, "redis.Options") }

// WithMaxConnections sets the hard cap on the sockets the client holds at
// once, counting every kind: pooled, pipeline pool, Pub/Sub, dedicated Conn,
// retries and probes, each from the start of its dial until the server has
// seen it close. n must not be negative; 0, the default, means no cap unless
// redis.Options.MaxActiveConns is set, which is then the cap (logged once at
// INFO). Without a cap the client refuses nothing bare go-redis would allow:
// it counts and tracks, and leaves go-redis's settings as they are.
//
// Under a cap, go-redis's own limits are fitted into it:
//   - the main pool keeps at most PoolSize sockets; a PoolSize above the cap
//     is lowered to it (with one WARN log line for a size the caller set);
//   - the dedicated pipeline pool is off, so that pipelines take turns in the
//     main pool, unless PipelinePoolSize was set, and then counts with it;
//   - Pub/Subs open their sockets in what the pools leave of the cap
//     ([Stats].PubSubShare: n less PoolSize, less PipelinePoolSize), and
//     beyond that each takes a turn of the main pool for its life; so with
//     PoolSize 2 and a cap of 10, eight subscribers take no turn at all;
//   - go-redis's MaxActiveConns is cleared (the cap replaces it: go-redis
//     fails fast at it, and does not count Pub/Subs);
//   - go-redis retries a pool timeout MaxRetries times; the client splits
//     PoolTimeout across those attempts, so that a caller refused by the cap
//     waits about PoolTimeout in all, not PoolTimeout per attempt.
//
// A caller that needs a socket while every slot is held waits, bounded by its
// context and PoolTimeout, and then gets a [*LimitError] matching
// [ErrMaxConnections]. [Client.Stats] shows the effective values.
func WithMaxConnections(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("pool: WithMaxConnections(%d): the cap must be 0 (none) or positive", n))
			return
		}
		c.maxConnections = n
	}
}

// WithMaxConnectionsPerNode sets the hard cap on the sockets a cluster or
// ring client ([NewClusterClient], [NewRing]) holds to any one node, counting
// every kind as [WithMaxConnections] does: pooled, pipeline, Pub/Sub,
// dedicated Conn, probe and redirect sockets. Nodes are told apart by
// resolved address, so "localhost:7000" and "127.0.0.1:7000" share one cap.
// The node's pool is fitted into it as WithMaxConnections fits a single
// client's. n must not be negative; 0, the default, means no cap per node.
//
// On a cluster or ring client, WithMaxConnections is then a cap on the total
// across data nodes. For a client of one node ([NewClient],
// [NewFailoverClient]) the per-node cap is the cap when WithMaxConnections is
// not given; with both, the smaller holds.
func WithMaxConnectionsPerNode(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("pool: WithMaxConnectionsPerNode(%d): the cap must be 0 (none) or positive", n))
			return
		}
		c.maxPerNode = n
	}
}

// WithTracker sets the tracker that records the client's checkouts. By
// default every client uses [tracker.Default]; a tracker of its own
// isolates a client's reports, for example in a test. Every tracker is listed
// by [tracker.All].
func WithTracker(t *tracker.Tracker) Option {
	return func(c *config) {
		if t == nil {
			c.errs = append(c.errs, fmt.Errorf("pool: WithTracker(nil): pass a tracker, or omit the option to use tracker.Default()"))
			return
		}
		c.tracker = t
	}
}

// WithLogger sets the logger for leak reports at Close and for adjusted
// settings. The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, fmt.Errorf("pool: WithLogger(nil): pass a logger, or omit the option to use slog.Default()"))
			return
		}
		c.logger = l
	}
}

// WithHeldTooLong sets how long a checkout of kind may be held before the
// client logs it at WARN, with its origin and the stacks of the goroutines
// that may hold it, and then at INFO when it comes back; d <= 0 turns the
// check off for kind. The defaults are [tracker.DefaultHeldTooLong]: 10s for
// a command or pipeline, 5m for a blocking command, off for dedicated
// connections and Pub/Subs, which live long by design. A command's or
// pipeline's time counts from when the client first sees it outstanding, at
// most a second after it began: reading the clock for every command would
// cost more than the rest of tracking it.
func WithHeldTooLong(kind tracker.Kind, d time.Duration) Option {
	return func(c *config) {
		if _, err := tracker.ParseKind(kind.String()); err != nil {
			c.errs = append(c.errs, fmt.Errorf("pool: WithHeldTooLong(%s, %s): unknown kind", kind, d))
			return
		}
		c.heldTooLong[kind] = d
	}
}

// WithHolderGoneCheck reports a dedicated Conn or Pub/Sub whose holders are
// all gone (nothing references it any longer: the goroutine that had it
// returned without Close and kept it nowhere) as a definite leak within a
// few periods of every, through one WARN log line with its origin, without
// waiting for a held-too-long threshold. Such a leak is found by the garbage
// collector, so while Conns or Pub/Subs are open the client runs it at most
// once per every, and not when the runtime has run a collection on its own
// since the last check. A Conn takes two collections: one finds its wrapper
// gone, the next its *redis.Conn, which a caller may have kept. d must not be negative; 0, the default, leaves the
// finding to the runtime's own collections (the WARN line is logged then).
//
// A Conn handed to another goroutine, or kept in a variable, is still held,
// and is not reported however long it stays open.
func WithHolderGoneCheck(every time.Duration) Option {
	return func(c *config) {
		if every < 0 {
			c.errs = append(c.errs, fmt.Errorf("pool: WithHolderGoneCheck(%s): the period must be 0 (off) or positive", every))
			return
		}
		c.collectEvery = every
	}
}

// WithDrainTimeout sets how long, under a cap, a closed socket keeps its slot
// while the client waits for the server to confirm the close: the client
// half-closes the socket and waits for the server's EOF, since the server
// frees a client only once it reads that EOF, and a new socket dialed sooner
// would have the server count one more than the cap. A live server confirms
// in one round trip. Behind a proxy the proxy is the peer that confirms, so
// the server may still count the socket for the proxy's own delay.
//
// d must be positive; the default is [DefaultDrainTimeout], 5s. A drain that
// reaches it gives the slot back all the same, so that a dead server never
// holds the cap, and counts in [Stats].DrainTimeouts: while a server stalls,
// or a path's latency exceeds d, the server can count more of the client's
// sockets than the cap, the closed ones it has not yet seen close and the new
// ones. The client's Close ends every drain at once.
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("pool: WithDrainTimeout(%s): the drain bound must be positive", d))
			return
		}
		c.drainTimeout = d
	}
}
