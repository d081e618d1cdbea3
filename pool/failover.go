package pool

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
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
		sentinels = newSentinelCaps(cfg.maxConnections, cfg.drainTimeout)
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
	drainTimeout time.Duration
	stop         context.Context
	cancel       context.CancelFunc

	mu     sync.Mutex
	byAddr map[string]*limiter
}

func newSentinelCaps(max int, drainTimeout time.Duration) *sentinelCaps {
	s := &sentinelCaps{max: max, drainTimeout: drainTimeout, byAddr: make(map[string]*limiter)}
	s.stop, s.cancel = context.WithCancel(context.Background())
	return s
}

// dialer returns the dialer of sentinel sockets: the caller's, or go-redis's
// default for fo, under the limiter of the sentinel's address.
func (s *sentinelCaps) dialer(inner dialFunc, fo *redis.FailoverOptions) dialFunc {
	if inner == nil {
		inner = contextDialer(&redis.Options{DialTimeout: cmpDuration(fo.DialTimeout, 5*time.Second), TLSConfig: fo.TLSConfig})
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return s.limiterFor(addr).dialer(inner, func(_ context.Context, err error) error { return err })(ctx, network, addr)
	}
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (s *sentinelCaps) limiterFor(addr string) *limiter {
	key := resolveAddr(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.byAddr[key]
	if !ok {
		// A sentinel client's Pub/Sub (for +switch-master) needs no turn of
		// its pool: the share is the whole cap.
		l = newLimiter(s.max, s.max, 30*time.Second, s.drainTimeout, s.stop)
		s.byAddr[key] = l
	}
	return l
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
// masterReplicaDialer, and its sentinel clients' dials from their own pools.
// Dials are rare, so reading the stack costs nothing that matters.
func dialsForData() bool {
	var pcs [maxCallers]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, masterReplicaDialer) {
			return true
		}
		if !more {
			return false
		}
	}
}
