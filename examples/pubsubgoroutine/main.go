// Command pubsubgoroutine shows a goroutine that subscribes, forwards
// messages, and returns when its context is cancelled without closing its
// Pub/Sub.
//
// The pattern: one listener goroutine per websocket, tenant or job; it
// selects on ctx.Done() and ps.Channel(), and returns on cancellation. The
// goroutine ends, the subscription does not: its socket, go-redis's two
// goroutines behind ps.Channel(), and its buffer of up to 100 messages stay.
//
// The symptom in production: PUBSUB NUMSUB and connected_clients climb with
// every listener started; go-redis logs "channel is full ... (message is
// dropped)"; goroutine counts and memory grow; under a cap, new Subscribes
// fail with an error matching pool.ErrMaxConnections.
//
// What redisleak reports: the open Pub/Sub as kind "pubsub" with the line
// that subscribed, and Client.Close returns an error matching pool.ErrLeaked.
//
// The fix: defer ps.Close() right after Subscribe.
//
//	go run ./examples/pubsubgoroutine [-variant bad|fixed|both] [-addr host:port]
//
// It exits 0 when the bad variant is reported and the fixed one is clean.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/examples/internal/example"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

const channel = "pubsubgoroutine:events"

func main() { example.Main("pubsubgoroutine", run) }

// listenBad forwards the channel's messages to got until ctx is cancelled.
//
// BUG: it returns on ctx.Done() without ps.Close().
func listenBad(ctx context.Context, c *pool.Client, got chan<- string) {
	ps := c.Subscribe(ctx, channel)
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-ps.Channel():
			got <- m.Payload
		}
	}
}

// listenFixed closes the subscription on its way out.
func listenFixed(ctx context.Context, c *pool.Client, got chan<- string) {
	ps := c.Subscribe(ctx, channel)
	defer ps.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-ps.Channel():
			got <- m.Payload
		}
	}
}

type outcome struct {
	numSub   int64          // the server's subscribers to channel after the listener returned
	report   tracker.Report // then
	closeErr error
}

func demo(ctx context.Context, addr, variant string, out io.Writer) (*outcome, error) {
	c, err := pool.NewClient(&redis.Options{Addr: addr}, pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))) // Close's WARN: printed below instead
	if err != nil {
		return nil, err
	}
	// A first command before going concurrent: go-redis v9.23 races on its
	// options when a Conn (which Subscribe uses under the cap) and the client
	// open their first sockets at once to a server that refuses its
	// maintenance-notifications handshake, such as miniredis.
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, err
	}
	listen := map[string]func(context.Context, *pool.Client, chan<- string){"bad": listenBad, "fixed": listenFixed}[variant]
	lctx, cancel := context.WithCancel(ctx)
	got := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() { listen(lctx, c, got) })

	// Publish until the listener has subscribed, then wait for its message.
	perr := errors.New("the listener received nothing in 2s")
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if n, err := c.Publish(ctx, channel, "hello").Result(); err != nil || n > 0 {
			perr = err
			break
		}
	}
	if perr == nil {
		select {
		case <-got:
		case <-time.After(2 * time.Second):
			perr = errors.New("the listener did not forward the message")
		}
	}
	cancel()
	wg.Wait()
	if perr != nil {
		_ = c.Close()
		return nil, perr
	}

	// The server counts a subscriber until it has seen its socket close.
	res := &outcome{}
	for deadline := time.Now().Add(500 * time.Millisecond); ; time.Sleep(10 * time.Millisecond) {
		res.numSub = c.PubSubNumSub(ctx, channel).Val()[channel]
		if res.numSub == 0 || time.Now().After(deadline) {
			break
		}
	}
	res.report = c.Report()
	fmt.Fprintf(out, "[%s] listener returned; server PUBSUB NUMSUB %s = %d (polled up to 500ms)\n", variant, channel, res.numSub)
	fmt.Fprintf(out, "[%s] client.Report(): %d outstanding\n", variant, res.report.Len())
	for _, g := range res.report.Groups {
		fmt.Fprintf(out, "  %d × %s %s at %s\n", g.Count, g.Kind, g.Op, g.Site)
	}
	res.closeErr = c.Close()
	fmt.Fprintf(out, "[%s] Close: errors.Is(err, pool.ErrLeaked) = %t: %s\n", variant, errors.Is(res.closeErr, pool.ErrLeaked), example.FirstLine(res.closeErr))
	return res, nil
}

// Check returns an error unless res is what variant is expected to show.
func (res *outcome) Check(variant string) error {
	if variant == "bad" {
		if res.report.Len() != 1 || res.report.Groups[0].Kind != tracker.KindPubSub || !errors.Is(res.closeErr, pool.ErrLeaked) {
			return fmt.Errorf("bad: want 1 pubsub outstanding and ErrLeaked; report:\n%s\nClose: %v", res.report, res.closeErr)
		}
		return nil
	}
	if res.report.Len() != 0 || res.numSub != 0 || res.closeErr != nil {
		return fmt.Errorf("fixed: NUMSUB %d; report %s; Close: %v", res.numSub, res.report, res.closeErr)
	}
	return nil
}

// run runs the variants that variant names against addr (an embedded
// miniredis when empty) and returns an error unless each outcome is the
// expected one.
func run(ctx context.Context, addr, variant string, out io.Writer) error {
	return example.Run(ctx, addr, variant, out, demo)
}
