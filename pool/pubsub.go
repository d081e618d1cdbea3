package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/tracker"
)

// Subscribe subscribes to channels like redis.Client.Subscribe and tracks the
// returned PubSub until its Close. Under the cap, the PubSub's socket takes a
// turn of the pool for the PubSub's whole life (see the package
// documentation); when none frees up before ctx's deadline or PoolTimeout,
// the refusal, matching [ErrMaxConnections], surfaces where go-redis surfaces
// dial errors: on the PubSub's next Receive, ReceiveMessage or Subscribe,
// which waits again (so without a deadline on ctx the caller may wait
// PoolTimeout twice). A cancelled ctx ends the wait with context.Canceled.
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

// pubsub is the library's side of one PubSub: its checkout and the pool turn
// reserved for its socket.
type pubsub struct {
	st     *state
	op     string
	origin tracker.Origin  // where the PubSub was created
	exit   <-chan struct{} // closed by PubSub.Close

	mu       sync.Mutex
	tok      tracker.Token // made once the PubSub holds a turn: a PubSub without a socket holds nothing
	hold     *redis.Conn   // the reserved pool turn; nil until the first dial
	released bool          // the PubSub or the client was closed
	dropped  bool          // the PubSub was garbage-collected without Close
}

func (st *state) openPubSub(ctx context.Context, rc *redis.Client, op string, subscribe func(*redis.PubSub, context.Context, ...string) error, names []string) *redis.PubSub {
	ps := rc.Subscribe(ctx) // no channels yet: nothing is dialed
	hooks, err := pubsubHooksOf(ps)
	if err != nil {
		st.warnPubSubOnce.Do(func() {
			st.log.Error("redisleak: Pub/Sub connections are neither tracked nor reserved under the cap; the go-redis version is not supported", "error", err)
		})
		if len(names) > 0 {
			_ = subscribe(ps, ctx, names...)
		}
		return ps
	}
	// skip 2: openPubSub and Client.Subscribe; library frames are trimmed
	// from reports in any case.
	p := &pubsub{st: st, op: op, origin: st.scope.Origin(ctx, 2), exit: hooks.exit}
	hooks.aroundDial(p.reserve, p.connected)
	runtime.AddCleanup(ps, (*pubsub).drop, p)

	st.watchers.Add(1)
	go p.watch()

	if len(names) > 0 {
		// Like go-redis, a failure here is kept for the next Receive, which
		// redials and returns it.
		_ = subscribe(ps, ctx, names...)
	}
	return ps
}

// drop runs when the PubSub is garbage-collected without Close: a definite
// leak. Its socket stays open inside go-redis, so its turn stays reserved.
func (p *pubsub) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropped = true
	p.tok.MarkDropped()
}

// watch gives the reserved turn back when the PubSub or the client closes.
// The checkout itself ends with the PubSub's exit channel (CheckoutUntil).
func (p *pubsub) watch() {
	defer p.st.watchers.Done()
	select {
	case <-p.exit:
	case <-p.st.closing:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.released = true
	if p.hold != nil {
		_ = p.hold.Close()
		p.hold = nil
	}
}

// connected runs after every successful dial of the PubSub: the checkout
// names the socket it now holds.
func (p *pubsub) connected(s *socket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tok.SetConnName(connNameOf(s))
}

// reserve runs before every dial of the PubSub, on the dialing goroutine and
// with its context: the first one reserves a pool turn for the PubSub's
// socket; reconnects reuse it.
func (p *pubsub) reserve(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		return redis.ErrClosed
	}
	if p.hold != nil {
		return nil
	}
	hold, err := p.st.reserveTurn(ctx)
	if err != nil {
		return err
	}
	p.hold = hold
	if !p.tok.Valid() {
		p.tok = p.st.scope.CheckoutAt(tracker.KindPubSub, p.op, p.origin, p.exit)
		if p.dropped {
			p.tok.MarkDropped()
		}
	}
	return nil
}

// reserveTurn takes a turn of the main pool for a socket that is not the
// pool's, and frees the turn's socket so that the caller can open its own.
// It sends a marker command on a dedicated connection, which the pool serves
// with an idle socket or a new one, recognises that socket by the marker, and
// closes it; the connection, now holding a turn and a dead socket, is the
// reservation. It waits at most until ctx is done or PoolTimeout passes.
func (st *state) reserveTurn(ctx context.Context) (*redis.Conn, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	wctx, cancel := context.WithTimeout(ctx, st.set.poolTimeout)
	defer cancel()
	// Close must not wait out a reservation in progress.
	go func() {
		select {
		case <-st.closing:
			cancel()
		case <-wctx.Done():
		}
	}()
	// go-redis v9.23 races when a dedicated connection and the client
	// initialise sockets at once on a server that refuses maintenance
	// notifications (the client settles the shared setting unlocked): one
	// command on the client first settles it, so reservations add no race.
	st.warm.Do(func() { _ = st.rc.Ping(wctx).Err() })
	hold := st.rc.EphemeralConn()
	cl := st.lim.newClaim(st.marker)
	err := hold.Echo(wctx, string(cl.marker)).Err()
	st.lim.endClaim(cl)
	var replied redis.Error
	if errors.As(err, &replied) && cl.sock.Load() != nil {
		// The server answered, with an error (an ACL without ECHO, say):
		// the marker went out on the reserved socket all the same.
		err = nil
	}
	if err != nil {
		_ = hold.Close()
		var limit *LimitError
		switch {
		case errors.As(err, &limit):
			return nil, err
		case errors.Is(ctx.Err(), context.Canceled):
			st.canceled.Add(1)
			return nil, ctx.Err()
		case ctx.Err() != nil:
			return nil, st.limitError(ctx.Err())
		case wctx.Err() != nil || errors.Is(err, redis.ErrPoolTimeout):
			return nil, st.limitError(err)
		}
		return nil, err
	}
	s := cl.sock.Load()
	if s == nil {
		_ = hold.Close()
		return nil, fmt.Errorf("redisleak: could not find the socket reserved for a Pub/Sub")
	}
	_ = s.Close()
	st.shed.Add(1)
	return hold, nil
}
