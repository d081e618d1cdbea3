package pool

import (
	"context"
	"sync/atomic"
)

// socketWait is the context a command with a deadline runs with, so that the
// command's error can tell a deadline that passed while the command waited
// for a socket (a refusal under the cap) from one that passed later. go-redis
// returns the same context.DeadlineExceeded in both cases, but in the first
// it takes it from ctx.Err() in its connection pool's own code: the wrapper
// notes when ctx.Err() reports the deadline to a caller in that pool.
type socketWait struct {
	context.Context
	ended atomic.Int32 // waitNone, or which wait in go-redis's connection pool the deadline ended
}

const (
	waitNone int32 = iota
	waitTurn       // for a pool turn: the cap, since the pool is as large as the cap
	waitDial       // for a new socket to be dialed: the cap only when every slot is taken
)

// watchSocketWait returns the context to run a command with, and the
// socketWait to ask afterwards. It wraps only while every slot of the cap is
// held, when a wait for a socket is the cap's: otherwise, and for a context
// without a deadline or already past it, it returns ctx as it is, with a nil
// socketWait, and costs no allocation. (A command that starts before the cap
// fills and then waits gets go-redis's own deadline error.)
func (st *state) watchSocketWait(ctx context.Context) (context.Context, *socketWait) {
	if st.lim.sem == nil || st.lim.held.Load() < st.lim.max {
		return ctx, nil
	}
	if _, ok := ctx.Deadline(); !ok || ctx.Err() != nil {
		return ctx, nil
	}
	w := &socketWait{Context: ctx}
	return w, w
}

// Err is the parent's Err; see socketWait.
func (w *socketWait) Err() error {
	err := w.Context.Err()
	if err != nil && w.ended.Load() == waitNone {
		w.ended.CompareAndSwap(waitNone, poolWaitOfCaller())
	}
	return err
}
