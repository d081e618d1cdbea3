package pool

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
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

	dialing  atomic.Int64           // slots taken by dials in progress
	open     [numRoles]atomic.Int64 // open sockets, by role
	draining atomic.Int64           // closed sockets whose close the server has not confirmed yet

	shareUsed atomic.Int64 // Pub/Subs holding a place of the share; <= share
	collected atomic.Int64 // sockets garbage-collected without Close: their client was dropped
	waiting   atomic.Int64 // callers waiting for a slot now
	reserving atomic.Int64 // Pub/Subs waiting for a turn of the pool now
	connBusy  atomic.Int64 // Conns running a command now

	// Waits for a slot, for Stats.
	waitCount    atomic.Int64
	waitDuration atomic.Int64 // nanoseconds
	canceled     atomic.Int64

	drains sync.WaitGroup // sockets closing, holding their slot until the server confirms

	// closing is set by the client's Close: no socket is dialed after it, so
	// closes no longer wait for the server's confirmation.
	closing atomic.Bool
}

// newLimiter returns the limiter of a cap of max sockets (0: none), of which
// share may be Pub/Subs that hold no turn of the pool.
func newLimiter(max, share int, timeout time.Duration) *limiter {
	l := &limiter{max: int64(max), share: int64(share), timeout: timeout}
	if max > 0 {
		l.sem = semaphore.NewWeighted(int64(max))
	}
	return l
}

// counts is one reading of the limiter's sockets by state.
type counts struct {
	dialing, draining int
	open              OpenByKind
}

func (l *limiter) counts() counts {
	return counts{
		dialing:  int(l.dialing.Load()),
		draining: int(l.draining.Load()),
		open: OpenByKind{
			Pool:   int(l.open[rolePool].Load()),
			PubSub: int(l.open[rolePubSub].Load()),
			Conn:   int(l.open[roleConn].Load()),
		},
	}
}

func (c counts) held() int { return c.dialing + c.open.total() + c.draining }

// errSlotWait marks a wait for a slot that ran out of time, so that the
// caller can turn it into a LimitError carrying the holders.
var errSlotWait = errors.New("timed out waiting for a connection slot")

// acquireSlot takes one slot, waiting at most until ctx is done or the
// limiter's timeout passes. A cancelled ctx returns ctx.Err(); a deadline
// (ctx's or the timeout) returns an error wrapping errSlotWait and the
// deadline's cause. Without a cap it takes nothing and returns nil.
func (l *limiter) acquireSlot(ctx context.Context) error {
	if l.sem == nil || l.sem.TryAcquire(1) {
		return nil
	}
	l.waitCount.Add(1)
	l.waiting.Add(1)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, l.timeout)
	err := l.sem.Acquire(wctx, 1)
	cancel()
	l.waiting.Add(-1)
	l.waitDuration.Add(int64(time.Since(start)))
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		l.canceled.Add(1)
		return ctx.Err()
	}
	if ctx.Err() != nil {
		return errors.Join(errSlotWait, ctx.Err())
	}
	return errSlotWait
}

func (l *limiter) releaseSlot() {
	if l.sem != nil {
		l.sem.Release(1)
	}
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
		if err := l.acquireSlot(ctx); err != nil {
			return nil, refuse(ctx, err)
		}
		l.dialing.Add(1)
		conn, err := inner(ctx, network, addr)
		if err != nil {
			l.dialing.Add(-1)
			l.releaseSlot()
			return nil, err
		}
		r := rolePool
		if ctx.Value(pubsubDial{}) != nil {
			r = rolePubSub
		}
		l.open[r].Add(1)
		l.dialing.Add(-1)
		return newSocket(conn, l, r), nil
	}
}
