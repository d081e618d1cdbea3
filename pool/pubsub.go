package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/track"
)

// Subscribe subscribes to channels like redis.Client.Subscribe and tracks the
// returned PubSub, from its first socket until its Close.
//
// Without a cap nothing changes: go-redis dials the PubSub's socket outside
// the pool, as always. Under a cap the socket counts against it: a PubSub
// opens its socket in what the pools leave of the cap (MaxConnections less
// PoolSize, less PipelinePoolSize if set) and, once that is taken, by taking
// a turn of the pool for its whole life, so that the pool never dials past
// the cap (an idle pooled socket is closed to make room; one in use never
// is). When neither frees up before ctx's deadline or PoolTimeout, the
// refusal, matching [ErrMaxConnections], surfaces where go-redis surfaces
// dial errors: on the PubSub's next Receive, ReceiveMessage or Subscribe,
// which returns it at once and waits again only on the call after. A
// cancelled ctx ends the wait with context.Canceled.
func (c *Client) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.st.openPubSub(ctx, c.Client.Subscribe, "subscribe", (*redis.PubSub).Subscribe, channels)
}

// PSubscribe is [Client.Subscribe] for patterns.
func (c *Client) PSubscribe(ctx context.Context, patterns ...string) *redis.PubSub {
	return c.st.openPubSub(ctx, c.Client.Subscribe, "psubscribe", (*redis.PubSub).PSubscribe, patterns)
}

// SSubscribe is [Client.Subscribe] for shard channels.
func (c *Client) SSubscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.st.openPubSub(ctx, c.Client.Subscribe, "ssubscribe", (*redis.PubSub).SSubscribe, channels)
}

// pubsub is the library's side of one PubSub: its checkout and, under a cap,
// its place in the cap.
type pubsub struct {
	// st is the client the PubSub was opened on. For a cluster client it is
	// the group's root: the PubSub picks its node as it dials, and takes its
	// place and checkout on that node (see state.placePubSub).
	st     *state
	op     string
	origin track.Origin    // where the PubSub was created
	exit   <-chan struct{} // closed by PubSub.Close

	mu       sync.Mutex
	tok      track.Token  // made at the first socket: a PubSub without one holds nothing
	tokScope *track.Scope // the scope of tok: the node's, for a cluster PubSub
	node     *state       // for a cluster PubSub, the node of its last socket
	placeSt  *state       // the client whose cap holds the PubSub's place
	onShare  bool         // holds a place of the Pub/Sub share (under a cap)
	hold     *redis.Conn  // or the pool turn reserved for its socket (under a cap)
	refused  error        // the refusal of the last dial, returned once by the next
	done     bool         // the PubSub or the client was closed
}

// openPubSub opens a PubSub with newPS (go-redis's Subscribe of the client,
// called with no channel so that nothing is dialed yet), tracks it, and then
// subscribes to names with subscribe.
func (st *state) openPubSub(ctx context.Context, newPS func(context.Context, ...string) *redis.PubSub, op string, subscribe func(*redis.PubSub, context.Context, ...string) error, names []string) *redis.PubSub {
	ps := newPS(ctx) // no channels yet: nothing is dialed
	hooks, err := pubsubHooksOf(ps)
	if err != nil {
		st.warnPubSubOnce.Do(func() {
			st.log.Error("redisleak: Pub/Sub connections are not tracked; the go-redis version is not supported", "error", err)
		})
		if len(names) > 0 {
			_ = subscribe(ps, ctx, names...)
		}
		return ps
	}
	// skip 2: openPubSub and Client.Subscribe; library frames are trimmed
	// from reports in any case.
	p := &pubsub{st: st, op: op, origin: st.scope.Origin(ctx, 2), exit: hooks.exit}
	hooks.aroundDial(p.beforeDial, p.connected)
	runtime.AddCleanup(ps, (*pubsub).collected, p)
	if st.lim.sem != nil || (st.group != nil && st.group.cfg.maxConnections > 0) {
		// Under a cap the PubSub's place is given back when it closes.
		st.watchers.Add(1)
		go p.watch()
	}
	if len(names) > 0 {
		// Like go-redis, a failure here is kept for the next Receive, which
		// redials and returns it.
		_ = subscribe(ps, ctx, names...)
	}
	return ps
}

// collected runs when the PubSub is garbage-collected. One that was closed
// first is no leak; one that was not is a definite leak. Its socket stays open
// inside go-redis (its Pub/Sub pool keeps it until the client closes), so its
// place in the cap stays taken.
func (p *pubsub) collected() {
	select {
	case <-p.exit:
		return
	default:
	}
	p.mu.Lock()
	tok := p.tok
	p.mu.Unlock()
	tok.MarkDropped()
}

// watch gives the PubSub's place in the cap back when the PubSub or the
// client closes. The checkout itself ends with the PubSub's exit channel.
func (p *pubsub) watch() {
	defer p.st.watchers.Done()
	select {
	case <-p.exit:
	case <-p.st.closeCtx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	p.releasePlace()
}

// releasePlace gives back the PubSub's place in the cap, if it holds one.
func (p *pubsub) releasePlace() {
	if p.onShare {
		p.placeSt.lim.returnShare()
		p.onShare = false
	}
	if p.hold != nil {
		_ = p.hold.Close()
		p.hold = nil
	}
	p.placeSt = nil
}

// place takes the PubSub's place under st's cap, unless it holds one there
// already (a reconnect to the same node keeps it): a place of the Pub/Sub
// share, or else a turn of st's pool. A place under another node's cap is
// given back first. A refusal is kept for the next dial, which returns it
// without waiting again.
func (p *pubsub) place(ctx context.Context, st *state) error {
	if err := p.refused; err != nil {
		p.refused = nil
		return err
	}
	if st.lim.sem == nil || p.placeSt == st {
		return nil
	}
	p.releasePlace()
	if st.lim.takeShare() {
		p.onShare, p.placeSt = true, st
		return nil
	}
	hold, err := st.reserveTurn(ctx)
	if err != nil {
		if errors.Is(err, ErrMaxConnections) {
			p.refused = err
		}
		return err
	}
	p.hold, p.placeSt = hold, st
	return nil
}

// connected runs after every successful dial of the PubSub: the checkout
// starts at the first, and names the socket it now holds. A cluster PubSub's
// checkout is its node's; when it reconnects to another node, the checkout
// moves there.
func (p *pubsub) connected(s *socket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	scope := p.st.scope
	if p.node != nil {
		scope = p.node.scope
	}
	if p.tok.Valid() && p.tokScope != scope {
		select {
		case <-p.exit: // closed meanwhile: the tracker ends it
		default:
			p.tok.Release()
		}
		p.tok = track.Token{}
	}
	if !p.tok.Valid() {
		p.tok = scope.CheckoutAt(track.KindPubSub, p.op, p.origin, p.exit)
		p.tokScope = scope
	}
	p.tok.SetConnName(connNameOf(s))
}

// beforeDial runs before every dial of the PubSub, on the dialing goroutine
// and with its context, which it returns marked as a Pub/Sub's dial. Under a
// cap the first one takes the PubSub's place in it, a place of the share or a
// pool turn; reconnects keep it.
func (p *pubsub) beforeDial(ctx context.Context) (context.Context, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return ctx, redis.ErrClosed
	}
	if p.st.group == nil {
		if err := p.place(ctx, p.st); err != nil {
			return ctx, err
		}
	}
	return context.WithValue(ctx, pubsubDial{}, p), nil
}

// placePubSub wraps the dialer of a node of a cluster client: a cluster
// PubSub's dial (marked by its beforeDial) takes its place under this node's
// cap before the dial takes a slot, and its checkout moves to this node.
func (st *state) placePubSub(next dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		p, ok := ctx.Value(pubsubDial{}).(*pubsub)
		if !ok || p.st.group == nil {
			return next(ctx, network, addr)
		}
		p.mu.Lock()
		err := p.place(ctx, st)
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		conn, err := next(ctx, network, addr)
		if err == nil {
			p.mu.Lock()
			p.node = st
			p.mu.Unlock()
		}
		return conn, err
	}
}

// reserveTurn takes a turn of the main pool for a socket that is not the
// pool's, and frees the turn's socket so that the caller can open its own.
// It pings on a dedicated connection, which the pool serves with an idle
// socket or a new one, learns from go-redis which socket that is, and closes
// it; the connection, now holding a turn and a closed socket, is the
// reservation. It waits at most until ctx is done or PoolTimeout passes.
func (st *state) reserveTurn(ctx context.Context) (*redis.Conn, error) {
	// The reservation's own socket is the pool's, not the Pub/Sub's whose
	// dial ctx may be.
	ctx = context.WithValue(ctx, pubsubDial{}, nil)
	wctx, cancel := context.WithTimeout(ctx, st.set.poolTimeout)
	defer cancel()
	// Close must not wait out a reservation in progress.
	defer context.AfterFunc(st.closeCtx, cancel)()
	// go-redis v9.23 races when a dedicated connection and the client
	// initialise sockets at once on a server that refuses maintenance
	// notifications (the client settles the shared setting unlocked): one
	// command on the client first settles it, so reservations add no race.
	// A socket already open has settled it (and the cap may be full).
	st.warm.Do(func() {
		if st.lim.counts().open.total() == 0 {
			_ = st.rc.Ping(wctx).Err()
		}
	})

	hold := st.rc.EphemeralConn()
	var sock atomic.Pointer[socket]
	if err := onFirstSocket(hold, tookFunc(func(s *socket, _ poolConn) { sock.Store(s) })); err != nil {
		_ = hold.Close()
		return nil, fmt.Errorf("redisleak: cannot reserve a pool turn for a Pub/Sub; the go-redis version is not supported: %w", err)
	}
	err := hold.Ping(wctx).Err() // go-redis counts its wait for a turn among its pending requests
	var replied redis.Error
	if errors.As(err, &replied) && sock.Load() != nil {
		// The server answered, with an error (an ACL without PING, say):
		// the turn is held all the same.
		err = nil
	}
	if err != nil {
		_ = hold.Close()
		switch {
		case errors.Is(err, ErrMaxConnections):
			return nil, err
		case errors.Is(ctx.Err(), context.Canceled):
			st.canceled.Add(1)
			return nil, ctx.Err()
		case wctx.Err() != nil || errors.Is(err, redis.ErrPoolTimeout):
			return nil, st.refusal(err)
		}
		return nil, err
	}
	s := sock.Load()
	if s == nil {
		_ = hold.Close()
		return nil, errors.New("redisleak: could not find the socket reserved for a Pub/Sub")
	}
	_ = s.Close()
	st.shed.Add(1)
	return hold, nil
}
