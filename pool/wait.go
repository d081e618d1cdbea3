package pool

import (
	"context"
	"runtime"
	"strings"
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
	ended atomic.Bool // the deadline ended a wait in go-redis's connection pool
}

// watchSocketWait returns the context to run a command with, and the
// socketWait to ask afterwards; a context without a deadline, or one already
// past it, is returned as it is, with a nil socketWait.
func watchSocketWait(ctx context.Context) (context.Context, *socketWait) {
	if _, ok := ctx.Deadline(); !ok || ctx.Err() != nil {
		return ctx, nil
	}
	w := &socketWait{Context: ctx}
	return w, w
}

// Err is the parent's Err; see socketWait.
func (w *socketWait) Err() error {
	err := w.Context.Err()
	if err != nil && !w.ended.Load() && calledFromConnPool() {
		w.ended.Store(true)
	}
	return err
}

// connPoolFuncs prefixes the functions in which go-redis waits for a pool
// turn or for a connection: its connection pool's methods and the semaphore
// that counts the turns.
var connPoolFuncs = []string{
	"github.com/redis/go-redis/v9/internal/pool.(*ConnPool).",
	"github.com/redis/go-redis/v9/internal.(*FastSemaphore).",
}

// calledFromConnPool reports whether the caller of socketWait.Err is
// go-redis's connection pool. It runs only once a deadline has passed.
func calledFromConnPool() bool {
	var pcs [2]uintptr
	// Skip runtime.Callers, calledFromConnPool and socketWait.Err.
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		for _, prefix := range connPoolFuncs {
			if strings.HasPrefix(f.Function, prefix) {
				return true
			}
		}
		if !more {
			return false
		}
	}
}
