package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/semaphore"

	"github.com/redisleak/redisleak/internal/track"
)

// role is who holds an open socket.
type role int32

const (
	rolePool   role = iota // the main or the pipeline pool: idle, or serving a command
	rolePubSub             // a Pub/Sub
	roleConn               // a dedicated Conn
	numRoles
)

// limiter counts every socket of a client by state and, under a cap, holds
// each to one slot of a semaphore from the start of its dial until the server
// has seen it close.
//
// Invariant, under a cap: dialing + open + draining == slots held <= max.
// Without one the counts are kept all the same (Stats shows them) and nothing
// waits. After the client's Close and its drains every count is zero.
type limiter struct {
	max     int64               // the cap; 0 means none
	share   int64               // Pub/Sub sockets that may open without a turn of the pool (see Client.Subscribe)
	sem     *semaphore.Weighted // one slot per socket; nil without a cap
	timeout time.Duration       // PoolTimeout: the longest a caller waits for a slot

	// held counts the slots held, exactly: it rises after the semaphore
	// gives a slot and falls before the slot goes back. The counts by state
	// below are read one by one, so a reading of them may be off by one
	// while a socket changes state.
	held     atomic.Int64
	dialing  atomic.Int64           // slots taken by dials in progress
	open     [numRoles]atomic.Int64 // open sockets, by role
	draining atomic.Int64           // closed sockets whose close the server has not confirmed yet

	shareUsed atomic.Int64 // Pub/Subs holding a place of the share; <= share
	collected atomic.Int64 // sockets garbage-collected without Close: their client was dropped
	failedAt  atomic.Int64 // when a dial last failed, in Unix nanoseconds; 0 if none has
	waiting   atomic.Int64 // callers waiting for a slot now
	connBusy  atomic.Int64 // Conns running a command now

	// Waits for a slot, for Stats.
	waitCount    atomic.Int64
	waitDuration atomic.Int64 // nanoseconds
	canceled     atomic.Int64

	drainTimeout  time.Duration // the longest a closed socket holds its slot waiting for the server
	drainTimeouts atomic.Int64  // drains that reached drainTimeout

	// stop is done once the client's Close began: dials and slot waits in
	// flight are cancelled, and drains end at once.
	stop context.Context

	// total, when set, is the cap shared with the other nodes of a cluster
	// or ring client: a socket holds a slot of it too.
	total *totalCap
	// makeRoom, when set, closes an idle pooled socket under this cap that
	// the socket waiting cannot use, and reports whether it found one: go-redis
	// may build two clients of one node address (a seed spelled "localhost"
	// and the node "127.0.0.1" that CLUSTER SLOTS names), whose pools share
	// the node's cap, and one's idle socket would hold a slot the other waits
	// for.
	makeRoom func() bool

	// blocking names, on their checkouts, the sockets blocking commands
	// wait on (see blockingClaims).
	blocking blockingClaims

	// untracked, when set, is asked about every dial the library did not
	// mark (see pubsubDial): one made on a caller's goroutine is a Pub/Sub
	// opened through the embedded go-redis client, and untracked returns
	// the checkout to end when its socket closes.
	untracked func() (track.Token, bool)

	// Dials and drains in flight. Close waits for them, so that after it no
	// slot is held and no goroutine of the library runs.
	mu       sync.Mutex
	closing  bool                 // set by Close: no dial or drain starts after it
	inFlight int                  // dials and drains running
	idle     *sync.Cond           // signalled when inFlight drops to 0
	drainSet map[*socket]struct{} // sockets draining, to end at Close
}

// newLimiter returns the limiter of a cap of max sockets (0: none), of which
// share may be Pub/Subs that hold no turn of the pool. Closed sockets hold
// their slot up to drainTimeout; stop is done once the client closes.
func newLimiter(max, share int, timeout, drainTimeout time.Duration, stop context.Context) *limiter {
	l := &limiter{max: int64(max), share: int64(share), timeout: timeout, drainTimeout: drainTimeout, stop: stop,
		drainSet: make(map[*socket]struct{})}
	l.idle = sync.NewCond(&l.mu)
	if max > 0 {
		l.sem = semaphore.NewWeighted(int64(max))
	}
	return l
}

// begin counts a dial or drain in flight, unless the client is closing.
func (l *limiter) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.inFlight++
	return true
}

// end counts a dial or drain done.
func (l *limiter) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight--; l.inFlight == 0 {
		l.idle.Broadcast()
	}
}

// isClosing reports whether the client's Close began.
func (l *limiter) isClosing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing
}

// close stops new dials and drains, ends the drains in flight at once (their
// server need not confirm any more: no socket of the client will follow),
// and waits for them and for the dials in flight, which l.stop has
// cancelled.
func (l *limiter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closing = true
	for s := range l.drainSet {
		_ = s.Conn.SetReadDeadline(time.Now())
	}
	l.waitIdleLocked()
}

// waitIdle waits until no dial or drain is in flight.
func (l *limiter) waitIdle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waitIdleLocked()
}

func (l *limiter) waitIdleLocked() {
	for l.inFlight > 0 {
		l.idle.Wait()
	}
}

// counts is one reading of the limiter's sockets by state.
type counts struct {
	held              int // exact; the others may be off by one
	dialing, draining int
	open              OpenByKind
}

func (l *limiter) counts() counts {
	return counts{
		held:     int(l.held.Load()),
		dialing:  int(l.dialing.Load()),
		draining: int(l.draining.Load()),
		open: OpenByKind{
			Pool:   int(l.open[rolePool].Load()),
			PubSub: int(l.open[rolePubSub].Load()),
			Conn:   int(l.open[roleConn].Load()),
		},
	}
}

// failedWithin reports whether a dial failed within the last d.
func (l *limiter) failedWithin(d time.Duration) bool {
	at := l.failedAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < d
}

// errSlotWait marks a wait for a slot that ran out of time, so that the
// caller can turn it into a LimitError carrying the holders.
var errSlotWait = errors.New("timed out waiting for a connection slot")

// acquireSlot takes one slot, waiting at most until ctx is done or the
// limiter's timeout passes. A cancelled ctx returns ctx.Err(); a deadline
// (ctx's or the timeout) returns an error wrapping errSlotWait and the
// deadline's cause. Without a cap it takes nothing and returns nil.
func (l *limiter) acquireSlot(ctx context.Context) error {
	if l.sem == nil || l.sem.TryAcquire(1) {
		l.held.Add(1)
	} else if err := l.wait(ctx, func(wctx context.Context) error { return acquireMakingRoom(wctx, l.sem, l.makeRoom) }); err != nil {
		return err
	} else {
		l.held.Add(1)
	}
	if l.total == nil {
		return nil
	}
	if err := l.total.acquire(ctx, l); err != nil {
		l.held.Add(-1)
		if l.sem != nil {
			l.sem.Release(1)
		}
		return err
	}
	return nil
}

// wait runs acquire, a wait for a slot, bounded by ctx and the limiter's
// timeout, and counts it. A cancelled ctx returns ctx.Err(); a deadline
// (ctx's or the timeout) returns an error wrapping errSlotWait and the
// deadline's cause.
func (l *limiter) wait(ctx context.Context, acquire func(context.Context) error) error {
	l.waiting.Add(1)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, l.timeout)
	err := acquire(wctx)
	cancel()
	l.waiting.Add(-1)
	switch {
	case err == nil:
		// Counted as go-redis counts its waits for a turn: those that got
		// one. A wait that ends in a refusal counts in Stats.Timeouts.
		l.waitCount.Add(1)
		l.waitDuration.Add(int64(time.Since(start)))
		return nil
	case errors.Is(ctx.Err(), context.Canceled):
		l.canceled.Add(1)
		return ctx.Err()
	case ctx.Err() != nil:
		return errors.Join(errSlotWait, ctx.Err())
	}
	return errSlotWait
}

func (l *limiter) releaseSlot() {
	l.held.Add(-1)
	if l.sem != nil {
		l.sem.Release(1)
	}
	if l.total != nil {
		l.total.release()
	}
}

// dialGrace is how long the slot of a dial whose context ended stays held:
// the connect may have completed as the context ended, and the server then
// counts the connection until it reads the close Go sent on it.
const dialGrace = 100 * time.Millisecond

// releaseFailedDial gives back the slot of a failed dial: at once when the
// dial failed by itself (refused, unreachable), and after dialGrace, counted as
// draining, when its context ended, since the server may have accepted it.
func (l *limiter) releaseFailedDial(ctx context.Context) {
	if ctx.Err() == nil || l.sem == nil || !l.begin() {
		l.releaseSlot()
		return
	}
	l.draining.Add(1)
	go func() {
		defer l.end()
		t := time.NewTimer(dialGrace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-l.stop.Done():
		}
		l.draining.Add(-1)
		l.releaseSlot()
	}()
}

// takeShare takes a place of the Pub/Sub share, if one is free.
func (l *limiter) takeShare() bool {
	for {
		n := l.shareUsed.Load()
		if n >= l.share {
			return false
		}
		if l.shareUsed.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *limiter) returnShare() { l.shareUsed.Add(-1) }

// pubsubDial marks the context of a Pub/Sub's dial, so that the dialer
// counts its socket as the Pub/Sub's.
type pubsubDial struct{}

// dialFunc is the shape of redis.Options.Dialer.
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// dialer wraps a go-redis dialer: every socket takes a slot first and is
// wrapped so that closing it gives the slot back. refuse turns a vain wait for
// a slot into the error the dial returns.
func (l *limiter) dialer(inner dialFunc, refuse func(context.Context, error) error) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !l.begin() {
			return nil, fmt.Errorf("redisleak: dial after the client's Close: %w", redis.ErrClosed)
		}
		defer l.end()
		// The client's Close cancels the dial and its wait for a slot.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(l.stop, cancel)()
		if err := l.acquireSlot(ctx); err != nil {
			return nil, refuse(ctx, err)
		}
		l.dialing.Add(1)
		conn, err := inner(ctx, network, addr)
		if err != nil {
			if !errors.Is(ctx.Err(), context.Canceled) { // a cancelled dial says nothing of the network
				l.failedAt.Store(time.Now().UnixNano())
			}
			l.dialing.Add(-1)
			l.releaseFailedDial(ctx)
			return nil, err
		}
		r := rolePool
		var tok track.Token
		switch {
		case ctx.Value(pubsubDial{}) != nil:
			r = rolePubSub
		case l.untracked != nil:
			if t, ok := l.untracked(); ok {
				r, tok = rolePubSub, t
			}
		}
		l.open[r].Add(1)
		l.dialing.Add(-1)
		sock := newSocket(conn, l, r, tok)
		// A Pub/Sub through the embedded client is named by its socket's
		// address until the socket has its name (see state.nameSocket).
		if tok.Valid() {
			tok.SetConnName(connNameOf(asSocket(sock)))
		}
		return sock, nil
	}
}
