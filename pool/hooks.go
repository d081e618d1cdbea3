package pool

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/track"
)

// hook checks out every command and pipeline for as long as go-redis runs it,
// retries included. go-redis copies hooks into Conn and Tx clones and into the
// connections it initialises, so one hook sees them all; a WithTimeout clone
// starts without hooks, and Client.WithTimeout adds this one back.
type hook struct{ st *state }

// DialHook passes dials through: the cap lives in the dialer itself, which
// every pool, Pub/Sub and probe dial reaches.
func (h *hook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook tracks one command while it holds a connection.
func (h *hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		kind, op := classify(cmd)
		tok := h.st.scope.Checkout(ctx, kind, op, 0)
		defer tok.Release()
		if kind == track.KindBlocking {
			defer h.st.lim.blocking.add(cmd.Name(), tok)()
		}
		wctx, wait := h.st.watchSocketWait(ctx)
		err := next(wctx, cmd)
		if err != nil && err != redis.Nil {
			if refused := h.st.refuse(err, wait); refused != err {
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
		tok := h.st.scope.Checkout(ctx, track.KindPipeline, op, 0)
		defer tok.Release()
		wctx, wait := h.st.watchSocketWait(ctx)
		err := next(wctx, cmds)
		if err != nil && err != redis.Nil {
			if refused := h.st.refuse(err, wait); refused != err {
				for _, cmd := range cmds {
					cmd.SetErr(refused)
				}
				err = refused
			}
		}
		return err
	}
}

// refuse turns the end of a vain wait for a socket into a LimitError naming
// the holders, when every slot of the cap is held: go-redis's pool timeout,
// and the caller's deadline when it passed during that wait (wait, from
// watchSocketWait, says whether it did). Other errors pass unchanged.
func (st *state) refuse(err error, wait *socketWait) error {
	if st.lim.sem == nil || errors.Is(err, ErrMaxConnections) {
		return err
	}
	if errors.Is(err, redis.ErrPoolTimeout) ||
		(wait != nil && wait.ended.Load() != waitNone && errors.Is(err, context.DeadlineExceeded)) {
		return st.refusal(err)
	}
	return err
}

// waitsForever is appended to the name of a blocking command that has no
// timeout: it holds its connection until data arrives, perhaps for ever, so
// Close reports it; one with a timeout is only in flight.
const waitsForever = " (no timeout)"

// classify returns the kind and the op a command is tracked under: a
// blocking command holds its connection until data arrives or its timeout
// passes, so it gets its own kind, which records a stack like a Conn.
func classify(cmd redis.Cmder) (track.Kind, string) {
	name := cmd.Name()
	args := cmd.Args()
	var timeout any // the blocking command's timeout argument
	switch name {
	case "blpop", "brpop", "brpoplpush", "blmove", "bzpopmin", "bzpopmax", "wait", "waitaof":
		timeout = args[len(args)-1]
	case "blmpop", "bzmpop":
		if len(args) > 1 {
			timeout = args[1]
		}
	case "xread", "xreadgroup":
		// Options come before STREAMS (and after GROUP name consumer); what
		// follows it are keys and ids, and a stream may well be called
		// "block".
		first := 1
		if name == "xreadgroup" {
			first = 4
		}
	options:
		for i := first; i < len(args); i++ {
			s, _ := args[i].(string)
			switch {
			case strings.EqualFold(s, "streams"):
				break options
			case strings.EqualFold(s, "block") && i+1 < len(args):
				timeout = args[i+1]
				break options
			}
		}
	}
	switch {
	case timeout == nil:
		return track.KindCommand, name
	case isZero(timeout):
		return track.KindBlocking, name + waitsForever
	}
	return track.KindBlocking, name
}

// isZero reports whether a command argument is a zero number, as go-redis
// writes a timeout of 0.
func isZero(a any) bool {
	switch v := a.(type) {
	case int:
		return v == 0
	case int64:
		return v == 0
	case float64:
		return v == 0
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && f == 0
	}
	return false
}
