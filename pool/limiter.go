package pool

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// limiter is the cap: one semaphore slot per open socket.
//
// Invariant: slots held == sockets open (dialed and not yet confirmed closed)
// == open.Load(); after the client's Close and its drains, zero.
type limiter struct {
	max     int64
	sem     *semaphore.Weighted
	open    atomic.Int64  // slots held
	timeout time.Duration // PoolTimeout: the longest a caller waits for a slot

	// Waits for a slot, for Stats.
	waitCount    atomic.Int64
	waitDuration atomic.Int64 // nanoseconds
	canceled     atomic.Int64

	drains sync.WaitGroup // sockets closing, holding their slot until the server confirms

	// closing is set by the client's Close: no socket is dialed after it, so
	// closes no longer wait for the server's confirmation.
	closing atomic.Bool

	// Pending claims: reservations waiting to recognise the socket their
	// marker command is written to. claims counts them so that Write pays one
	// atomic load while there are none.
	claims    atomic.Int32
	claimMu   sync.Mutex
	claimList []*claim
	claimSeq  atomic.Uint64
}

func newLimiter(max int, timeout time.Duration) *limiter {
	return &limiter{max: int64(max), sem: semaphore.NewWeighted(int64(max)), timeout: timeout}
}

// errSlotWait marks a wait for a slot that ran out of time, so that the
// caller can turn it into a LimitError carrying the holders.
var errSlotWait = errors.New("timed out waiting for a connection slot")

// acquireSlot takes one slot, waiting at most until ctx is done or the
// limiter's timeout passes. A cancelled ctx returns ctx.Err(); a deadline
// (ctx's or the timeout) returns an error wrapping errSlotWait and the
// deadline's cause.
func (l *limiter) acquireSlot(ctx context.Context) error {
	if l.sem.TryAcquire(1) {
		l.open.Add(1)
		return nil
	}
	l.waitCount.Add(1)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, l.timeout)
	err := l.sem.Acquire(wctx, 1)
	cancel()
	l.waitDuration.Add(int64(time.Since(start)))
	if err == nil {
		l.open.Add(1)
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
	l.open.Add(-1)
	l.sem.Release(1)
}

// dialer wraps a go-redis dialer: every socket takes a slot first and is
// wrapped so that closing it gives the slot back.
func (l *limiter) dialer(inner func(ctx context.Context, network, addr string) (net.Conn, error), refuse func(context.Context, error) error) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := l.acquireSlot(ctx); err != nil {
			return nil, refuse(ctx, err)
		}
		conn, err := inner(ctx, network, addr)
		if err != nil {
			l.releaseSlot()
			return nil, err
		}
		return newSocket(conn, l), nil
	}
}

// A claim finds the socket a reservation's marker command is written to: the
// pool does not say which connection it hands out, but the reservation knows
// the bytes it sends.
type claim struct {
	marker []byte
	sock   atomic.Pointer[socket]
}

func (l *limiter) newClaim(prefix string) *claim {
	c := &claim{marker: []byte(prefix + strconv.FormatUint(l.claimSeq.Add(1), 10))}
	l.claimMu.Lock()
	l.claimList = append(l.claimList, c)
	l.claims.Add(1)
	l.claimMu.Unlock()
	return c
}

func (l *limiter) endClaim(c *claim) {
	l.claimMu.Lock()
	for i, x := range l.claimList {
		if x == c {
			l.claimList = append(l.claimList[:i], l.claimList[i+1:]...)
			l.claims.Add(-1)
			break
		}
	}
	l.claimMu.Unlock()
}

func (l *limiter) matchClaim(s *socket, p []byte) {
	l.claimMu.Lock()
	for _, c := range l.claimList {
		if c.sock.Load() == nil && bytes.Contains(p, c.marker) {
			c.sock.Store(s)
		}
	}
	l.claimMu.Unlock()
}
