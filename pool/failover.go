package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/track"
)

// NewFailoverClient returns a client for the master that Redis Sentinel names
// (or a replica, with ReplicaOnly), like redis.NewFailoverClient, tracked and
// capped as [NewClient]'s: the cap ([WithMaxConnections], or
// [WithMaxConnectionsPerNode]) holds the data sockets, wherever the master
// moves. Sentinel sockets have their own cap, the same number per sentinel
// address, and never take a slot of the data sockets'; [Stats] counts them
// apart (SentinelConnections).
//
// go-redis's FailoverOptions have no NewClient hook: the library builds the
// client with go-redis's own constructor and tells data dials from sentinel
// dials by who asks for them (see internals.go). opt is not modified. It
// fails, naming the field and value, on nil options, negative sizes and bad
// option values.
func NewFailoverClient(opt *redis.FailoverOptions, opts ...Option) (*Client, error) {
	if opt == nil {
		return nil, errors.New("pool: NewFailoverClient: nil *redis.FailoverOptions")
	}
	if opt.MasterName == "" {
		return nil, errors.New("pool: NewFailoverClient: redis.FailoverOptions.MasterName is empty; name the master the sentinels monitor")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	cfg.fn, cfg.optType = "NewFailoverClient", "redis.FailoverOptions"
	cfg.maxConnections = oneNodeCap(cfg)
	o := redis.Options{Addr: opt.MasterName, ClientName: opt.ClientName, Dialer: opt.Dialer, OnConnect: opt.OnConnect,
		PoolSize: opt.PoolSize, PoolTimeout: opt.PoolTimeout, MaxActiveConns: opt.MaxActiveConns,
		MinIdleConns: opt.MinIdleConns, MaxIdleConns: opt.MaxIdleConns, PipelinePoolSize: opt.PipelinePoolSize,
		MaxRetries: opt.MaxRetries, ReadTimeout: opt.ReadTimeout, DialTimeout: opt.DialTimeout, TLSConfig: opt.TLSConfig}
	var sentinels *sentinelCaps
	st, err := newState(&o, cfg, nodeOf{newRedis: func(o *redis.Options) *redis.Client {
		fo := *opt
		fo.PoolSize, fo.PoolTimeout, fo.MaxActiveConns = o.PoolSize, o.PoolTimeout, o.MaxActiveConns
		fo.MinIdleConns, fo.PipelinePoolSize = o.MinIdleConns, o.PipelinePoolSize
		fo.OnConnect = o.OnConnect
		wait := goRedisDefaults(&redis.Options{PoolTimeout: opt.PoolTimeout, ReadTimeout: opt.ReadTimeout}).PoolTimeout
		sentinels = newSentinelCaps(cfg.maxConnections, wait, cfg.drainTimeout)
		fo.Dialer = routeSentinelDials(o.Dialer, sentinels.dialer(opt.Dialer, &fo))
		return redis.NewFailoverClient(&fo)
	}})
	if err != nil {
		return nil, err
	}
	st.sentinels = sentinels
	st.watchDropped(st.scope.Origin(context.Background(), 1))
	return &Client{Client: st.rc, st: st}, nil
}

// routeSentinelDials is the dialer of a failover client: go-redis's client
// for the master dials through it, as do its sentinel clients. A dial for the
// master (or a replica) goes to data, the client's capped dialer; a dial to a
// sentinel goes to sentinel.
func routeSentinelDials(data, sentinel dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dialsForData() {
			return data(ctx, network, addr)
		}
		return sentinel(ctx, network, addr)
	}
}

// sentinelCaps counts and caps a failover client's sentinel sockets, one
// limiter per sentinel address.
type sentinelCaps struct {
	max          int
	wait         time.Duration // the longest a sentinel dial waits for a slot: the client's PoolTimeout
	drainTimeout time.Duration
	stop         context.Context
	cancel       context.CancelFunc

	mu     sync.Mutex
	byAddr map[string]*limiter
}

func newSentinelCaps(max int, wait, drainTimeout time.Duration) *sentinelCaps {
	s := &sentinelCaps{max: max, wait: wait, drainTimeout: drainTimeout, byAddr: make(map[string]*limiter)}
	s.stop, s.cancel = context.WithCancel(context.Background())
	return s
}

// dialer returns the dialer of sentinel sockets: the caller's, or go-redis's
// default for fo, under the limiter of the sentinel's address.
func (s *sentinelCaps) dialer(inner dialFunc, fo *redis.FailoverOptions) dialFunc {
	if inner == nil {
		inner = goRedisDialer(fo.DialTimeout, fo.TLSConfig)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return s.limiterFor(addr).dialer(inner, func(_ context.Context, err error) error { return err })(ctx, network, addr)
	}
}

// goRedisDialer is go-redis's dialer (see contextDialer) for a client with
// dialTimeout and tlsConfig, go-redis's default DialTimeout read back from
// go-redis when dialTimeout is 0.
func goRedisDialer(dialTimeout time.Duration, tlsConfig *tls.Config) dialFunc {
	o := goRedisDefaults(&redis.Options{DialTimeout: dialTimeout, TLSConfig: tlsConfig})
	return contextDialer(&o)
}

func (s *sentinelCaps) limiterFor(addr string) *limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return limiterOf(s.byAddr, addr, func() *limiter {
		// A sentinel client's Pub/Sub (for +switch-master) needs no turn of
		// its pool: the share is the whole cap.
		return newLimiter(s.max, s.max, s.wait, s.drainTimeout, s.stop)
	})
}

// open counts the sentinel sockets open now.
func (s *sentinelCaps) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.byAddr {
		n += l.counts().open.total()
	}
	return n
}

// close ends the sentinel sockets' dials and drains, as limiter.close does.
func (s *sentinelCaps) close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.byAddr {
		l.close()
	}
}

// dialsForData reports whether the dial in progress is go-redis's dial of a
// failover client's master or replica: go-redis makes it from
// masterReplicaDialer (a closure the compiler may inline into
// NewFailoverClient, and then names
// "...NewFailoverClient.masterReplicaDialer.func4"), and its sentinel
// clients' dials from their own pools.
// Dials are rare, so reading the stack costs nothing that matters.
func dialsForData() bool {
	var pcs [maxCallers]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if strings.Contains(f.Function, masterReplicaDialer) {
			return true
		}
		if !more {
			return false
		}
	}
}

// newFailoverClusterClient is go-redis's failover cluster client (a cluster
// whose slots Sentinel gives: NewUniversalClient with MasterName and
// RouteByLatency, RouteRandomly or IsClusterMode), built with what its
// options allow: go-redis builds its node clients itself, with no hook, so
// the library gives it a dialer and a hook. Every socket, to a node or a
// sentinel, is counted and capped per address (WithMaxConnectionsPerNode;
// the node pools are fitted into it); commands, pipelines, blocking commands
// and Pub/Subs are tracked on the client as a whole, not per node. A total
// cap (WithMaxConnections) needs the node clients, and is refused, as is
// ConnForKey, whose node client go-redis alone built.
func newFailoverClusterClient(opt *redis.FailoverOptions, opts ...Option) (*ClusterClient, error) {
	if opt.MasterName == "" {
		return nil, errors.New("pool: NewUniversalClient: redis.UniversalOptions.MasterName is empty")
	}
	node := redis.Options{Addr: opt.MasterName, ClientName: opt.ClientName, PoolSize: opt.PoolSize, PoolTimeout: opt.PoolTimeout,
		MaxActiveConns: opt.MaxActiveConns, MinIdleConns: opt.MinIdleConns, MaxIdleConns: opt.MaxIdleConns,
		PipelinePoolSize: opt.PipelinePoolSize, MaxRetries: opt.MaxRetries, ReadTimeout: opt.ReadTimeout}
	g, err := newGroupFor("NewUniversalClient", "redis.UniversalOptions", node, []string{opt.MasterName}, opts)
	if err != nil {
		return nil, err
	}
	if g.total != nil {
		g.cancel()
		return nil, errors.New("pool: NewUniversalClient: WithMaxConnections (a total across nodes) needs node clients built by the library, and go-redis's failover cluster client (MasterName with RouteByLatency, RouteRandomly or IsClusterMode) builds its own; use WithMaxConnectionsPerNode")
	}
	g.direct = true
	cfg := g.cfg
	// go-redis's node pools cannot lend a Pub/Sub a turn, as the library's
	// own node clients do (see Client.Subscribe): a pool as large as a node's
	// cap would, under load, dial back each idle socket a Pub/Sub's wait
	// closed, and the dial's own wait close the next. One slot of each node
	// is kept for Pub/Subs; more of them on one node still take pooled
	// sockets' slots.
	cfg.pubsubSlot = true
	o, set, notes, _ := settle(&node, cfg) // node passed newGroupFor's check
	for _, n := range notes {
		cfg.logger.Log(context.Background(), n.level, n.msg, append([]any{"client", g.name}, n.attrs...)...)
	}
	fo := *opt
	fo.PoolSize, fo.PoolTimeout, fo.MaxActiveConns = o.PoolSize, o.PoolTimeout, o.MaxActiveConns
	fo.MinIdleConns, fo.PipelinePoolSize = o.MinIdleConns, o.PipelinePoolSize
	inner := opt.Dialer
	if inner == nil {
		inner = goRedisDialer(opt.DialTimeout, opt.TLSConfig)
	}
	root := g.root
	root.clientName = clientName(&node)
	fo.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		l := g.limiterFor(addr, set, cfg.drainTimeout)
		// A refusal names the address; its holders are the whole client's,
		// since go-redis's node clients are not the library's.
		return l.dialer(inner, func(ctx context.Context, err error) error {
			if cause, ok := slotWaitCause(ctx, err); ok {
				return root.limitRefusal(l, set, addr, cause)
			}
			return err
		})(ctx, network, addr)
	}
	if !cfg.connNamesOff {
		fo.OnConnect = root.onConnect(opt.OnConnect)
	}
	rc := redis.NewFailoverClusterClient(&fo)
	g.mu.Lock()
	g.directClient = weak.Make(rc)
	g.mu.Unlock()
	rc.AddHook(&hook{st: root})
	root.stopWatch = root.scope.WatchHeld(track.WatchConfig{
		Limits:         limitsOf(cfg.heldTooLong),
		Log:            cfg.logger,
		HolderFunction: "github.com/redisleak/redisleak/pool.(*hook)",
	})
	watchGroupDropped(g, rc, g.scope.Origin(context.Background(), 2))
	return &ClusterClient{ClusterClient: rc, groupClient: groupClient{g}}, nil
}
