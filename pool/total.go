package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// totalCap is a cap on the sockets of every node of a cluster or ring client
// together ([WithMaxConnections] there), on top of each node's own cap. A
// socket takes its node's slot first, then one of the total.
//
// Invariant: held == the slots taken of sem <= max; held is the sum of the
// nodes' limiters' held.
type totalCap struct {
	max  int64
	sem  *semaphore.Weighted
	held atomic.Int64
	// shed closes an idle pooled socket of a node other than the one
	// waiting, and reports whether it found one: without it, capacity that
	// one node's pool holds idle would never move to a node that needs it
	// (after a failover, the new master would get no socket at all).
	// (The waiting node's own idle sockets it need not close: go-redis
	// dials only when its pool has none idle.)
	shed func(waiting *limiter) bool
}

// errTotalWait marks a wait for a slot of the total that ran out of time, so
// that the refusal names the total rather than the node.
var errTotalWait = errors.New("timed out waiting for a slot of the total cap")

// shedEvery is how often a wait for a slot of the total tries again to make
// room on another node.
const shedEvery = 50 * time.Millisecond

func newTotalCap(max int) *totalCap {
	return &totalCap{max: int64(max), sem: semaphore.NewWeighted(int64(max))}
}

// acquire takes a slot of the total for a socket of l's node, bounded as l's
// own waits are. While it waits it makes room, an idle socket of another
// node at a time.
func (t *totalCap) acquire(ctx context.Context, l *limiter) error {
	if t.sem.TryAcquire(1) {
		t.held.Add(1)
		return nil
	}
	err := l.wait(ctx, func(wctx context.Context) error {
		return acquireMakingRoom(wctx, t.sem, func() bool { return t.shed != nil && t.shed(l) })
	})
	if err != nil {
		if errors.Is(err, errSlotWait) {
			return errors.Join(errTotalWait, err)
		}
		return err
	}
	t.held.Add(1)
	return nil
}

// acquireMakingRoom takes a slot of sem, waiting until ctx is done, and
// while it waits calls makeRoom (when not nil) every shedEvery: each call may
// close an idle socket whose slot then comes back once the server confirms
// the close. The wait stays queued throughout, room made beside it, so that
// the slot a close frees goes to it rather than to a wait queued later: a
// wait that left the queue every shedEvery to make room, as it once did,
// lost the slot it had freed to one queued after it.
func acquireMakingRoom(ctx context.Context, sem *semaphore.Weighted, makeRoom func() bool) error {
	if makeRoom == nil {
		return sem.Acquire(ctx, 1)
	}
	if sem.TryAcquire(1) {
		return nil
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(shedEvery)
		defer tick.Stop()
		for {
			makeRoom()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	err := sem.Acquire(ctx, 1)
	close(done)
	wg.Wait()
	return err
}

func (t *totalCap) release() {
	t.held.Add(-1)
	t.sem.Release(1)
}
