// Command connerrorpath shows a dedicated connection left open on an error
// path.
//
// The pattern: code takes a Conn (for commands that must share one socket:
// SELECT, CLIENT SETNAME, WATCH ... EXEC) and closes it on the happy path
// only; an early return, here "sold out", skips cn.Close().
//
// The symptom in production: each such return keeps one socket out of the
// pool for good. Once the leaks fill the pool every command waits PoolTimeout
// and fails with "redis: connection pool timeout"; restarts "fix" it for a
// while. Without a cap, connected_clients just keeps climbing.
//
// What redisleak reports: every open Conn is kind "conn" with the line that
// took it, and Client.Close returns an error matching pool.ErrLeaked.
//
// The fix: defer cn.Close() right after c.Conn().
//
//	go run ./examples/connerrorpath [-variant bad|fixed|both] [-addr host:port]
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

const (
	stock  = 2 // tickets on sale
	buyers = 5 // so buyers-stock requests take the sold-out path
	maxCap = buyers - stock
	key    = "connerrorpath:tickets"
)

var errSoldOut = errors.New("sold out")

func main() { example.Main("connerrorpath", run) }

// takeTicketBad takes one ticket on a dedicated connection.
//
// BUG: the sold-out path returns without cn.Close().
func takeTicketBad(ctx context.Context, c *pool.Client) error {
	cn := c.Conn()
	left, err := cn.Decr(ctx, key).Result()
	if err != nil {
		_ = cn.Close()
		return err
	}
	if left < 0 {
		return errSoldOut // cn stays open, holding its socket
	}
	return cn.Close()
}

// takeTicketFixed closes the connection on every path.
func takeTicketFixed(ctx context.Context, c *pool.Client) error {
	cn := c.Conn()
	defer cn.Close()
	left, err := cn.Decr(ctx, key).Result()
	if err != nil {
		return err
	}
	if left < 0 {
		return errSoldOut
	}
	return nil
}

type outcome struct {
	report   tracker.Report // before Close
	nextErr  error          // a plain command after the sales
	closeErr error
}

func demo(ctx context.Context, addr, variant string, out io.Writer) (*outcome, error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil)) // Close's WARN: printed below instead
	c, err := pool.NewClient(&redis.Options{Addr: addr, PoolTimeout: 200 * time.Millisecond},
		pool.WithTracker(tracker.New()), pool.WithMaxConnections(maxCap), pool.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	if err := c.Set(ctx, key, stock, time.Minute).Err(); err != nil {
		_ = c.Close()
		return nil, err
	}
	take := map[string]func(context.Context, *pool.Client) error{"bad": takeTicketBad, "fixed": takeTicketFixed}[variant]
	sold, soldOut := 0, 0
	for range buyers {
		switch err := take(ctx, c); {
		case err == nil:
			sold++
		case errors.Is(err, errSoldOut):
			soldOut++
		default:
			_ = c.Close()
			return nil, err
		}
	}
	res := &outcome{}
	res.nextErr = c.Get(ctx, key).Err()
	res.report = c.Report()
	res.closeErr = c.Close()

	fmt.Fprintf(out, "[%s] %d buyers: %d sold, %d sold out; cap %d sockets\n", variant, buyers, sold, soldOut, maxCap)
	fmt.Fprintf(out, "[%s] next GET: %v\n", variant, example.FirstLine(res.nextErr))
	fmt.Fprintf(out, "[%s] client.Report(): %d outstanding\n", variant, res.report.Len())
	for _, g := range res.report.Groups {
		fmt.Fprintf(out, "  %d × %s at %s\n", g.Count, g.Kind, g.Site)
	}
	fmt.Fprintf(out, "[%s] Close: errors.Is(err, pool.ErrLeaked) = %t: %s\n", variant, errors.Is(res.closeErr, pool.ErrLeaked), example.FirstLine(res.closeErr))
	return res, nil
}

// Check returns an error unless res is what variant is expected to show.
func (res *outcome) Check(variant string) error {
	if variant == "bad" {
		if res.report.Len() != maxCap || !errors.Is(res.closeErr, pool.ErrLeaked) {
			return fmt.Errorf("bad: want %d leaked conns and ErrLeaked; report:\n%s\nClose: %v", maxCap, res.report, res.closeErr)
		}
		return nil
	}
	if res.report.Len() != 0 || res.nextErr != nil || res.closeErr != nil {
		return fmt.Errorf("fixed: report %s; next GET: %v; Close: %v", res.report, res.nextErr, res.closeErr)
	}
	return nil
}

// run runs the variants that variant names against addr (an embedded
// miniredis when empty) and returns an error unless each outcome is the
// expected one.
func run(ctx context.Context, addr, variant string, out io.Writer) error {
	return example.Run(ctx, addr, variant, out, demo)
}
