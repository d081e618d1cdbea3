// Command blockingnotimeout shows a worker that pops jobs with BLPOP and a
// timeout of 0.
//
// The pattern: a queue worker loops on BLPOP (or XREAD BLOCK 0), checking its
// context between jobs. A timeout of 0 waits for ever, and cancelling the
// context does not interrupt a read in go-redis: while the queue is empty the
// worker never gets back to its check.
//
// The symptom in production: shutdowns hang until the orchestrator kills the
// process; each idle worker pins a pooled connection, so a few workers starve
// the pool ("redis: connection pool timeout"); connected_clients shows
// clients blocked for hours (CLIENT LIST: cmd=blpop, long idle).
//
// What redisleak reports: the command as kind "blocking", op "blpop (no
// timeout)", at the worker's line; Client.Close returns an error matching
// pool.ErrLeaked, and closing the client is what finally unblocks the worker.
//
// The fix: a finite timeout (here 1s), treating redis.Nil as "no job yet" and
// checking the context on every turn of the loop.
//
//	go run ./examples/blockingnotimeout [-variant bad|fixed|both] [-addr host:port]
//
// It exits 0 when the bad variant is reported and the fixed one is clean.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/examples/internal/example"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// jobs is how many jobs each variant's worker handles before the shutdown.
const jobs = 3

// queueOf is each variant's own queue: a BLPOP left blocked by the bad variant
// must not take the fixed variant's jobs.
func queueOf(variant string) string { return "blockingnotimeout:jobs:" + variant }

func main() { example.Main("blockingnotimeout", run) }

// workerBad handles jobs from the queue until ctx is cancelled.
//
// BUG: BLPOP with timeout 0 never returns while the queue is empty, so the
// worker never sees the cancellation.
func workerBad(ctx context.Context, c *pool.Client, queue string, done chan<- string) error {
	for ctx.Err() == nil {
		kv, err := c.BLPop(ctx, 0, queue).Result()
		if err != nil {
			return err
		}
		done <- kv[1]
	}
	return nil
}

// workerFixed waits at most a second per BLPOP and checks ctx in between.
func workerFixed(ctx context.Context, c *pool.Client, queue string, done chan<- string) error {
	for ctx.Err() == nil {
		kv, err := c.BLPop(ctx, time.Second, queue).Result()
		switch {
		case errors.Is(err, redis.Nil): // no job within the timeout
		case ctx.Err() != nil:
			return nil
		case err != nil:
			return err
		default:
			done <- kv[1]
		}
	}
	return nil
}

type outcome struct {
	stopped  bool           // the worker returned within stopWait of the cancellation
	report   tracker.Report // then
	closeErr error
	workErr  error // the worker's return value
}

const stopWait = 2500 * time.Millisecond // the fixed worker needs up to its 1s timeout, plus room for a loaded machine

func demo(ctx context.Context, addr, variant string, out io.Writer) (*outcome, error) {
	c, err := pool.NewClient(&redis.Options{Addr: addr}, pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))) // Close's WARN: printed below instead
	if err != nil {
		return nil, err
	}
	worker := map[string]func(context.Context, *pool.Client, string, chan<- string) error{"bad": workerBad, "fixed": workerFixed}[variant]
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done, exited := make(chan string, jobs), make(chan error, 1)
	queue := queueOf(variant)
	go func() { exited <- worker(wctx, c, queue, done) }()
	for i := range jobs {
		if err := c.RPush(ctx, queue, fmt.Sprint("job", i)).Err(); err != nil {
			_ = c.Close()
			return nil, err
		}
		<-done
	}

	// Shut down, as on SIGTERM, once the worker waits on the empty queue.
	for deadline := time.Now().Add(2 * time.Second); c.Report().Len() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	res := &outcome{}
	select {
	case res.workErr = <-exited:
		res.stopped = true
	case <-time.After(stopWait):
	}
	res.report = c.Report()
	fmt.Fprintf(out, "[%s] %d jobs done; worker returned within %s of the cancellation: %t\n", variant, jobs, stopWait, res.stopped)
	fmt.Fprintf(out, "[%s] client.Report(): %d outstanding\n", variant, res.report.Len())
	for _, g := range res.report.Groups {
		fmt.Fprintf(out, "  %d × %s %q at %s\n", g.Count, g.Kind, g.Op, g.Site)
	}
	res.closeErr = c.Close()
	fmt.Fprintf(out, "[%s] Close: errors.Is(err, pool.ErrLeaked) = %t: %s\n", variant, errors.Is(res.closeErr, pool.ErrLeaked), example.FirstLine(res.closeErr))
	if !res.stopped {
		select { // Close shut the worker's socket down: its BLPOP fails
		case res.workErr = <-exited:
			fmt.Fprintf(out, "[%s] worker returned after Close: %v\n", variant, res.workErr)
		case <-time.After(5 * time.Second):
			return nil, errors.New("the worker is still blocked 5s after Close")
		}
	}
	return res, nil
}

// Check returns an error unless res is what variant is expected to show.
func (res *outcome) Check(variant string) error {
	if variant == "bad" {
		if res.stopped || res.report.Len() != 1 || res.report.Groups[0].Op != "blpop (no timeout)" || !errors.Is(res.closeErr, pool.ErrLeaked) {
			return fmt.Errorf("bad: want a blocked worker, one \"blpop (no timeout)\" and ErrLeaked; stopped %t; report:\n%s\nClose: %v",
				res.stopped, res.report, res.closeErr)
		}
		return nil
	}
	if !res.stopped || res.workErr != nil || res.report.Len() != 0 || res.closeErr != nil {
		return fmt.Errorf("fixed: stopped %t (%v); report %s; Close: %v", res.stopped, res.workErr, res.report, res.closeErr)
	}
	return nil
}

// run runs the variants that variant names against addr (an embedded
// miniredis when empty) and returns an error unless each outcome is the
// expected one.
func run(ctx context.Context, addr, variant string, out io.Writer) error {
	return example.Run(ctx, addr, variant, out, demo)
}
