package pool

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/tracker"
)

// hook checks out every command and pipeline for as long as go-redis runs it,
// retries included. go-redis copies hooks into Conn, Tx and WithTimeout clones
// and into the connections it initialises, so one hook sees them all.
type hook struct{ st *state }

// DialHook passes dials through: the cap lives in the dialer itself, which
// every pool, Pub/Sub and probe dial reaches.
func (h *hook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook tracks one command while it holds a connection.
func (h *hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		tok := h.st.scope.Checkout(ctx, commandKind(cmd), cmd.Name(), 0)
		err := next(ctx, cmd)
		tok.Release()
		if err != nil && err != redis.Nil {
			if refused := h.st.refusePoolTimeout(err); refused != err {
				cmd.SetErr(refused)
				err = refused
			}
		}
		return err
	}
}

// ProcessPipelineHook tracks one pipeline or transaction while it holds a
// connection.
func (h *hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		op := "pipeline"
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			op = "multi"
		}
		tok := h.st.scope.Checkout(ctx, tracker.KindPipeline, op, 0)
		err := next(ctx, cmds)
		tok.Release()
		if err != nil && err != redis.Nil {
			if refused := h.st.refusePoolTimeout(err); refused != err {
				for _, cmd := range cmds {
					cmd.SetErr(refused)
				}
				err = refused
			}
		}
		return err
	}
}

// refusePoolTimeout turns go-redis's pool timeout into a LimitError naming the
// holders when the pool is as large as the cap, so that waiting for a turn is
// waiting for the cap. Other errors pass unchanged.
func (st *state) refusePoolTimeout(err error) error {
	if st.set.poolSize != st.set.maxConnections || !errors.Is(err, redis.ErrPoolTimeout) {
		return err
	}
	var limit *LimitError
	if errors.As(err, &limit) {
		return err
	}
	return st.limitError(err)
}

func commandKind(cmd redis.Cmder) tracker.Kind {
	// Blocking commands hold their connection until data arrives or their
	// timeout passes, so they are tracked with a stack, like a Conn.
	switch cmd.Name() {
	case "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "wait", "waitaof":
		return tracker.KindBlocking
	case "xread", "xreadgroup":
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && strings.EqualFold(s, "block") {
				return tracker.KindBlocking
			}
		}
	}
	return tracker.KindCommand
}
