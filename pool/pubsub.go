package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/tracker"
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
	return c.st.openPubSub(ctx, c.Client, "subscribe", (*redis.PubSub).Subscribe, channels)
}

// PSubscribe is [Client.Subscribe] for patterns.
func (c *Client) PSubscribe(ctx context.Context, patterns ...string) *redis.PubSub {
	return c.st.openPubSub(ctx, c.Client, "psubscribe", (*redis.PubSub).PSubscribe, patterns)
}

// SSubscribe is [Client.Subscribe] for shard channels.
func (c *Client) SSubscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.st.openPubSub(ctx, c.Client, "ssubscribe", (*redis.PubSub).SSubscribe, channels)
}

// pubsub is the library's side of one PubSub: its checkout and, under a cap,
// its place in the cap.
type pubsub struct {
	st     *state
	op     string
	origin tracker.Origin  // where the PubSub was created
	exit   <-chan struct{} // closed by PubSub.Close

	mu      sync.Mutex
	tok     tracker.Token // made at the first socket: a PubSub without one holds nothing
	onShare bool          // holds a place of the Pub/Sub share (under a cap)
	hold    *redis.Conn   // or the pool turn reserved for its socket (under a cap)
	refused error         // the refusal of the last dial, returned once by the next
	done    bool          // the PubSub or the client was closed
}

func (st *state) openPubSub(ctx context.Context, rc *redis.Client, op string, subscribe func(*redis.PubSub, context.Context, ...string) error, names []string) *redis.PubSub {
	ps := rc.Subscribe(ctx) // no channels yet: nothing is dialed
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
	if st.lim.sem != nil {
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
	if p.onShare {
		p.st.lim.returnShare()
		p.onShare = false
	}
	if p.hold != nil {
		_ = p.hold.Close()
		p.hold = nil
	}
}

// connected runs after every successful dial of the PubSub: the checkout
// starts at the first, and names the socket it now holds.
func (p *pubsub) connected(s *socket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tok.Valid() {
		p.tok = p.st.scope.CheckoutAt(tracker.KindPubSub, p.op, p.origin, p.exit)
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
	if err := p.refused; err != nil {
		p.refused = nil
		return ctx, err
	}
	if p.st.lim.sem != nil && !p.onShare && p.hold == nil {
		if p.st.lim.takeShare() {
			p.onShare = true
		} else {
			hold, err := p.st.reserveTurn(ctx)
			if err != nil {
				if errors.Is(err, ErrMaxConnections) {
					p.refused = err
				}
				return ctx, err
			}
			p.hold = hold
		}
	}
	return context.WithValue(ctx, pubsubDial{}, true), nil
}

// reserveTurn takes a turn of the main pool for a socket that is not the
// pool's, and frees the turn's socket so that the caller can open its own.
// It pings on a dedicated connection, which the pool serves with an idle
// socket or a new one, learns from go-redis which socket that is, and closes
// it; the connection, now holding a turn and a closed socket, is the
// reservation. It waits at most until ctx is done or PoolTimeout passes.
func (st *state) reserveTurn(ctx context.Context) (*redis.Conn, error) {
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
	if err := onFirstSocket(hold, func(s *socket, _ poolConn) { sock.Store(s) }); err != nil {
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
