package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/stack"
	"github.com/redisleak/redisleak/internal/track"
	"github.com/redisleak/redisleak/tracker"
)

// group is what a cluster or ring client shares with its node clients: the
// scope the nodes' scopes are children of, one limiter per node address, the
// total cap, and every node client go-redis asked for. go-redis builds node
// clients through ClusterOptions.NewClient (RingOptions.NewClient), for seeds,
// for the nodes CLUSTER SLOTS names and for redirect targets, and retires them
// itself on topology changes, closing them. The group keeps each reachable
// until go-redis closed it, so that none is taken for a dropped client, and
// then forgets it once nothing of the library's uses it (see retireIfClosed).
type group struct {
	cfg        *config      // the caller's options; cfg.maxConnections is the per-node cap
	name       string       // the client's name: clientName, then its seed addresses
	clientName string       // what its nodes' names start with: ClientName, or the program's name
	scope      *track.Scope // the cluster's or ring's; each node has a child
	total      *totalCap    // nil without a total cap

	// root is the state Pub/Subs of the whole client hang from (a cluster
	// Pub/Sub picks its node as it dials): it has the group's scope, close
	// context and watchers, and no cap of its own.
	root *state

	closeCtx context.Context // done once Close began: dials, waits and drains end
	cancel   context.CancelFunc

	cleanup runtime.Cleanup // reports the client if dropped; stopped by Close

	// direct is set for a failover cluster client, whose node clients
	// go-redis builds itself: its limiters are the only record of its nodes,
	// and its go-redis client (held weakly: the group must not keep it) the
	// only way to them.
	direct bool

	mu           sync.Mutex
	directClient weak.Pointer[redis.ClusterClient] // set once built
	closed       bool
	limiters     map[string]*limiter      // by resolved node address
	nodes        []*state                 // every node client built, oldest first
	byClient     map[*redis.Client]*state // the node state of each go-redis node client
	latest       map[string]*state        // by resolved address: the newest node client
	notes        map[string]bool          // notes already logged, one line for all nodes
}

// newGroup returns the group of a cluster or ring client named name. cfg's
// caps are the caller's: WithMaxConnectionsPerNode per node,
// WithMaxConnections in total.
func newGroup(cfg *config, name string) *group {
	g := &group{
		name:     name,
		limiters: make(map[string]*limiter),
		byClient: make(map[*redis.Client]*state),
		latest:   make(map[string]*state),
		notes:    make(map[string]bool),
	}
	node := *cfg
	// A node's cap: its own, or else the total, which no node can exceed.
	node.maxConnections, node.capName = cfg.maxPerNode, "WithMaxConnectionsPerNode"
	if node.maxConnections == 0 || (cfg.maxConnections > 0 && cfg.maxConnections < node.maxConnections) {
		node.maxConnections, node.capName = cfg.maxConnections, "WithMaxConnections"
	}
	g.cfg = &node
	if cfg.maxConnections > 0 {
		g.total = newTotalCap(cfg.maxConnections)
		g.total.shed = shedOf(weak.Make(g))
	}
	g.scope = newScope(cfg.tracker, name)
	g.closeCtx, g.cancel = context.WithCancel(context.Background())
	g.root = &state{scope: g.scope, log: cfg.logger, closeCtx: g.closeCtx, cancelClose: g.cancel, group: g,
		lim: newLimiter(0, 0, 0, 0, g.closeCtx)}
	return g
}

// noteOnce reports whether the note keyed key is logged for the first time.
func (g *group) noteOnce(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.notes[key] {
		return false
	}
	g.notes[key] = true
	return true
}

// newNode is ClusterOptions.NewClient (RingOptions.NewClient): the node client
// for opt, tracked and capped. go-redis's options are those of the client the
// caller configured, so they were validated by the group's constructor; a
// node that still fails is built by go-redis alone, with an ERROR line.
func (g *group) newNode(opt *redis.Options) *redis.Client {
	st, err := newState(opt, g.cfg, nodeOf{group: g})
	if err != nil {
		g.cfg.logger.Error("redisleak: a node client could not be built by the library; it is neither tracked nor capped",
			"client", g.name, "node", opt.Addr, "error", err)
		return redis.NewClient(opt)
	}
	g.mu.Lock()
	if g.closed {
		// go-redis asked for a node as the client closed (a reload in
		// flight): it gets a closed client, and nothing of it stays.
		g.mu.Unlock()
		st.closed.Store(true)
		st.cancelClose()
		st.stopWatch()
		st.releaseDump()
		_ = st.rc.Close()
		return st.rc
	}
	defer g.mu.Unlock()
	g.nodes = append(g.nodes, st)
	g.byClient[st.rc] = st
	g.latest[resolveAddr(opt.Addr)] = st
	return st.rc
}

// limiterFor returns the limiter of the node at addr, made on first use with
// set, the node's settings. Every node client of one resolved address shares
// it: go-redis may build several (a seed and the node CLUSTER SLOTS names, or
// a new client after it retired one), and their sockets are the node's.
func (g *group) limiterFor(addr string, set settings, drainTimeout time.Duration) *limiter {
	g.mu.Lock()
	defer g.mu.Unlock()
	return limiterOf(g.limiters, addr, func() *limiter {
		l := newLimiter(set.maxConnections, set.pubsubShare, set.poolTimeout, drainTimeout, g.closeCtx)
		l.total = g.total
		l.makeRoom = makeRoomOf(weak.Make(g), l)
		l.untracked = untrackedOf(weak.Make(g.root))
		if g.closed {
			l.close() // a node asked for during Close dials nothing
		}
		return l
	})
}

// limiterOf returns the limiter of addr's node in byAddr, keyed by the
// resolved address, made by newLimiter the first time. The caller holds the
// lock that guards byAddr.
func limiterOf(byAddr map[string]*limiter, addr string, newLimiter func() *limiter) *limiter {
	key := resolveAddr(addr)
	l, ok := byAddr[key]
	if !ok {
		l = newLimiter()
		byAddr[key] = l
	}
	return l
}

// resolveAddr is the key of a node address: host resolved to its first IP
// address, so that two names of one server share its cap. An address that
// does not resolve is its own key.
func resolveAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil {
		return net.JoinHostPort(ip.String(), port)
	}
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), host)
	if err != nil || len(ips) == 0 {
		return addr
	}
	return net.JoinHostPort(ips[0].IP.String(), port)
}

// nodeOf returns the library's state of a go-redis node client, or nil for
// a client the library did not build.
func (g *group) stateOf(rc *redis.Client) *state {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byClient[rc]
}

// latestFor reports whether st is the newest node client of its address:
// the one whose limiter counts stand for the node (the limiter is shared).
func (g *group) latestFor(st *state) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.latest {
		if l == st {
			return true
		}
	}
	return false
}

// addressLimiters returns, for a failover cluster client (whose node clients
// go-redis built), the limiter of every node address; nil for any other.
func (g *group) addressLimiters() map[string]*limiter {
	if !g.direct {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.limiters)
}

// retireIfClosed forgets st, a node client, once go-redis has closed it (go-
// redis retires node clients a minute after a topology change) and no
// checkout of the library's is on it any more: its watch ends, and the
// group no longer keeps it reachable. Its address's limiter stays, for the
// node's other clients. It runs on st's watch; the forgetting, which ends
// that watch, runs apart.
func (g *group) retireIfClosed(st *state) {
	if st.retiring.Load() || st.closed.Load() {
		return
	}
	if closed, err := closedByGoRedis(st.rc); err != nil || !closed || st.scope.Outstanding() > 0 {
		return
	}
	if st.retiring.CompareAndSwap(false, true) {
		go g.retire(st)
	}
}

// retire forgets st, unless the group is closing, which ends it anyway.
func (g *group) retire(st *state) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.nodes = slices.DeleteFunc(g.nodes, func(n *state) bool { return n == st })
	delete(g.byClient, st.rc)
	for key, n := range g.latest {
		if n == st {
			delete(g.latest, key)
		}
	}
	g.mu.Unlock()
	st.closed.Store(true)
	st.cancelClose()
	st.watchers.Wait()
	st.stopWatch()
	st.releaseDump()
}

// snapshot returns the node states built so far.
func (g *group) snapshot() []*state {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*state(nil), g.nodes...)
}

// shedOf is the total cap's shed, which must not keep the group reachable:
// an idle socket of another node.
func shedOf(g weak.Pointer[group]) func(*limiter) bool {
	return func(waiting *limiter) bool {
		if g := g.Value(); g != nil {
			return g.shed(func(st *state) bool { return st.lim != waiting })
		}
		return false
	}
}

// makeRoomOf is the makeRoom of l, a node's limiter: an idle socket of a
// client of the same node, which the client waiting cannot use (go-redis
// dials only when the waiting client's own pool has none idle). For a
// failover cluster client, whose node clients go-redis built, it is an idle
// socket of go-redis's client of the node: a Pub/Sub dials beside the pool.
func makeRoomOf(g weak.Pointer[group], l *limiter) func() bool {
	return func() bool {
		g := g.Value()
		switch {
		case g == nil:
			return false
		case g.direct:
			return g.shedDirect(l)
		}
		return g.shed(func(st *state) bool { return st.lim == l })
	}
}

// shedDirect closes one idle pooled socket of go-redis's node client whose
// address's limiter is l, in a failover cluster client, and reports whether
// it found one. go-redis's node clients are reached through ForEachShard.
func (g *group) shedDirect(l *limiter) bool {
	g.mu.Lock()
	rc := g.directClient.Value()
	g.mu.Unlock()
	if rc == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(g.closeCtx, shedEvery)
	defer cancel()
	var shed atomic.Bool
	_ = rc.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		if shed.Load() || g.limiterAt(node.Options().Addr) != l || node.PoolStats().IdleConns == 0 {
			return nil
		}
		if shedIdle(ctx, node) && shed.CompareAndSwap(false, true) {
			g.root.shed.Add(1)
		}
		return nil
	})
	return shed.Load()
}

// limiterAt returns the limiter of the node at addr, or nil.
func (g *group) limiterAt(addr string) *limiter {
	key := resolveAddr(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limiters[key]
}

// shed closes one idle pooled socket of a node client that from accepts,
// starting at a random one so that none is always the one to give way. It
// reports whether it found one.
func (g *group) shed(from func(*state) bool) bool {
	nodes := g.snapshot()
	if len(nodes) == 0 {
		return false
	}
	start := rand.IntN(len(nodes))
	for i := range nodes {
		st := nodes[(start+i)%len(nodes)]
		if !from(st) || st.closed.Load() || st.rc.PoolStats().IdleConns == 0 {
			continue
		}
		if st.shedIdle() {
			return true
		}
	}
	return false
}

// shedIdle closes one idle socket of the node's main pool: a dedicated
// connection takes it (the pool hands out an idle socket before it dials),
// pings on it, and discards it. It reports whether a socket was closed.
func (st *state) shedIdle() bool {
	ctx, cancel := context.WithTimeout(st.closeCtx, shedEvery)
	defer cancel()
	if !shedIdle(ctx, st.rc) {
		return false
	}
	st.shed.Add(1)
	return true
}

// shedIdle closes one idle socket of rc's main pool, as state.shedIdle
// says, and reports whether it did.
func shedIdle(ctx context.Context, rc *redis.Client) bool {
	cn := rc.EphemeralConn() // its Close discards the socket
	defer cn.Close()
	var took atomic.Bool
	if err := onFirstSocket(cn, tookFunc(func(*socket, poolConn) { took.Store(true) })); err != nil {
		return false
	}
	return cn.Ping(ctx).Err() == nil && took.Load()
}

// close closes every node client and the limiters, and returns one error:
// go-redis's Close error of the whole client joined with a LeakError holding
// every node's outstanding checkouts.
func (g *group) close(closeRedis func() error) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return fmt.Errorf("redisleak: client %s already closed: %w", g.name, redis.ErrClosed)
	}
	g.closed = true
	g.cleanup.Stop()
	nodes := append([]*state(nil), g.nodes...)
	limiters := make([]*limiter, 0, len(g.limiters))
	for _, l := range g.limiters {
		limiters = append(limiters, l)
	}
	g.mu.Unlock()

	for _, st := range nodes {
		st.sweepConns()
	}
	leaked := scopeReport(g.scope, nil).Filter(isLeak)
	g.cancel()
	g.root.watchers.Wait()
	if g.root.stopWatch != nil {
		g.root.stopWatch() // a failover cluster client's
	}
	for _, st := range nodes {
		st.closed.Store(true)
		st.cancelClose()
		st.watchers.Wait()
		st.stopWatch()
	}
	for _, l := range limiters {
		l.close()
	}
	err := closeRedis()
	for _, st := range nodes {
		// go-redis closed the nodes it still used; those it retired it
		// closed before.
		if cerr := st.rc.Close(); cerr != nil && !errors.Is(cerr, redis.ErrClosed) {
			err = errors.Join(err, cerr)
		}
		st.releaseDump()
	}
	if tracker.Debug() {
		fmt.Fprintf(os.Stderr, "redisleak: client %s closed\n%s\n", g.name, scopeReport(g.scope, nil))
	}
	return g.root.leakError(leaked, err)
}

// untrackedLog is the WARN line of a Pub/Sub opened through an embedded go-redis
// client.
func untrackedLog(log *slog.Logger, client string, site runtime.Frame) {
	log.Warn("redisleak: a Pub/Sub was opened through the embedded go-redis client: it is counted under the cap and reported as a socket until its socket closes, but its Subscribe and Close are not tracked; use the library client's own Subscribe",
		"client", client, "origin", stack.FrameString(site.Function, site.File, site.Line))
}
