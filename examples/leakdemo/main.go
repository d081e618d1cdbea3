// Command leakdemo shows what redisleak reports when code forgets to close
// what it checks out, and how the connection cap refuses a caller once the
// leaks hold every socket.
//
//	go run ./examples/leakdemo              # embedded miniredis
//	go run ./examples/leakdemo -addr :6379  # a running Redis (writes leakdemo:* keys)
//
// It exits 0 when the outcome is the expected one (two leaks found, the cap
// refused a Pub/Sub, Close returned ErrLeaked) and 1 otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/examples/internal/example"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// Sockets the demo's bugs leave open: three Conns from lookupUser and one
// Pub/Sub from watchEvents.
const (
	leakedConns   = 3
	leakedPubSubs = 1
	leakedSockets = leakedConns + leakedPubSubs
)

func main() {
	addr := example.AddrFlag()
	maxConns := flag.Int("max", leakedSockets, "connection cap (pool.WithMaxConnections); the leaks fill a cap of 4")
	flag.Parse()

	example.Exit("leakdemo", run(context.Background(), *addr, *maxConns, os.Stdout))
}

// run runs the demo against addr (an embedded miniredis when empty) with a cap
// of maxConns, writes its output to out, and returns an error when the outcome
// is not the expected one.
func run(ctx context.Context, addr string, maxConns int, out io.Writer) error {
	res, err := demo(ctx, addr, maxConns, out)
	if err != nil {
		return err
	}
	return res.check()
}

// outcome is what the demo observed, checked by run and by the tests.
type outcome struct {
	max       int
	report    tracker.Report // the client's report before the cap was tried
	capErr    error          // the Pub/Sub's Receive under a full cap (nil when the cap was not full)
	stats     pool.Stats     // after the refusal
	closeErr  error          // client.Close
	closeLeft int            // outstanding checkouts in the LeakError's report
}

// held keeps the values the buggy functions leak reachable until the demo has
// printed its report. A real program simply drops them; the garbage collector
// would then collect them, and the report would mark them "garbage-collected
// without Close" (and give the Conns' sockets back to the pool).
var held []any

func demo(ctx context.Context, addr string, maxConns int, out io.Writer) (*outcome, error) {
	if maxConns < leakedSockets {
		return nil, fmt.Errorf("-max %d: the demo itself leaks %d sockets; use -max %d or more", maxConns, leakedSockets, leakedSockets)
	}
	addr, _, stopServer, err := example.Server(addr)
	if err != nil {
		return nil, err
	}
	defer stopServer()
	held = nil
	defer func() { held = nil }()

	// Errors only: the library logs at WARN when it lowers PoolSize to the cap
	// and when Close finds leaks, and this demo prints both itself. An ERROR
	// from the library (e.g. an unsupported go-redis version) still shows.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	client, err := pool.NewClient(
		&redis.Options{Addr: addr, PoolTimeout: 300 * time.Millisecond},
		pool.WithMaxConnections(maxConns),
		pool.WithTracker(tracker.New()),
		pool.WithLogger(logger),
	)
	if err != nil {
		return nil, fmt.Errorf("NewClient: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = client.Close()
		}
	}()
	res := &outcome{max: maxConns}

	// 1. Work that closes everything it takes.
	if err := healthyWork(ctx, client); err != nil {
		return nil, err
	}

	// 2. The bugs.
	if name, err := lookupUser(ctx, client, "1"); err != nil || name != "ada" {
		return nil, fmt.Errorf("lookupUser(1) = %q, %v; want \"ada\", nil", name, err)
	}
	for _, id := range []string{"2", "3", "4"} {
		if _, err := lookupUser(ctx, client, id); !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("lookupUser(%s) = %v; want an error matching redis.Nil", id, err)
		}
	}
	if err := watchEvents(ctx, client, "leakdemo:events"); err != nil {
		return nil, err
	}

	fmt.Fprintf(out, "leakdemo: client %s, cap %d sockets\n", addr, maxConns)
	fmt.Fprintf(out, "ran: commands, a pipeline, a transaction, lookupUser ×4 (3 failed), watchEvents ×1\n")

	// 3. What is still checked out.
	res.report = client.Report()
	heading(out, "LEAKS (client.Report)")
	for _, g := range res.report.Groups {
		fmt.Fprintf(out, "  %d × %-6s %s  %s\n", g.Count, g.Kind, g.Site.ShortPos(), g.Site.Function)
	}
	fmt.Fprintln(out)
	fmt.Fprint(out, res.report.String())

	// 4. The cap at work: the leaks hold every socket, so a new Pub/Sub waits
	// for one and is refused.
	heading(out, "CAP")
	st := client.Stats()
	fmt.Fprintf(out, "open sockets: %d of %d (conn %d, pubsub %d, pool %d)\n",
		st.OpenConnections, st.MaxConnections, st.Open.Conn, st.Open.PubSub, st.Open.Pool)
	if st.OpenConnections < maxConns {
		fmt.Fprintf(out, "cap not full: skipping the refusal (run with -max %d to see one)\n", leakedSockets)
	} else {
		res.capErr = subscribeUnderFullCap(ctx, client, out)
	}
	res.stats = client.Stats()
	st = res.stats
	fmt.Fprintf(out, "stats: open %d/%d, waits %d, refusals %d, shed %d, outstanding %d\n",
		st.OpenConnections, st.MaxConnections, st.WaitCount, st.Timeouts, st.Shed, st.Outstanding)

	// 5. Close reports the leaks once more, as an error.
	heading(out, "CLOSE")
	closed = true
	res.closeErr = client.Close()
	var leak *pool.LeakError
	if errors.As(res.closeErr, &leak) {
		res.closeLeft = leak.Report.Len()
	}
	fmt.Fprintf(out, "client.Close: errors.Is(err, pool.ErrLeaked) = %t, %d outstanding checkouts\n",
		errors.Is(res.closeErr, pool.ErrLeaked), res.closeLeft)
	fmt.Fprintf(out, "  %s\n", example.FirstLine(res.closeErr))
	return res, nil
}

// healthyWork is the well-behaved part of the workload.
func healthyWork(ctx context.Context, c *pool.Client) error {
	if err := c.HSet(ctx, "leakdemo:user:1", "name", "ada").Err(); err != nil {
		return fmt.Errorf("HSET: %w", err)
	}
	if err := c.Incr(ctx, "leakdemo:visits").Err(); err != nil {
		return fmt.Errorf("INCR: %w", err)
	}
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "leakdemo:a", "1", time.Minute)
		p.Get(ctx, "leakdemo:a")
		return nil
	}); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "leakdemo:visits")
		p.Expire(ctx, "leakdemo:visits", time.Minute)
		return nil
	}); err != nil {
		return fmt.Errorf("transaction: %w", err)
	}
	return nil
}

// lookupUser reads a user's name on a dedicated connection.
//
// BUG: the error path returns without cn.Close(), so the Conn, and the socket
// it took with its first command, stay checked out.
func lookupUser(ctx context.Context, c *pool.Client, id string) (string, error) {
	cn := c.Conn()
	name, err := cn.HGet(ctx, "leakdemo:user:"+id, "name").Result()
	if err != nil {
		held = append(held, cn)
		return "", fmt.Errorf("lookup user %s: %w", id, err)
	}
	if err := cn.Close(); err != nil {
		return "", err
	}
	return name, nil
}

// watchEvents subscribes to channel and waits for the confirmation.
//
// BUG: it returns without ps.Close(), so the subscription and its socket stay
// open.
func watchEvents(ctx context.Context, c *pool.Client, channel string) error {
	ps := c.Subscribe(ctx, channel)
	msg, err := ps.Receive(ctx)
	if err != nil {
		_ = ps.Close()
		return fmt.Errorf("subscribe %s: %w", channel, err)
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		_ = ps.Close()
		return fmt.Errorf("subscribe %s: got %T, want *redis.Subscription", channel, msg)
	}
	held = append(held, ps)
	return nil
}

// subscribeUnderFullCap tries a new Pub/Sub while the cap is full and returns
// the error its Receive got.
func subscribeUnderFullCap(ctx context.Context, c *pool.Client, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	ps := c.Subscribe(ctx, "leakdemo:audit")
	_, err := ps.Receive(ctx)
	waited := time.Since(start).Round(10 * time.Millisecond)
	_ = ps.Close()

	fmt.Fprintf(out, "Subscribe + Receive with a 200ms deadline: after %s,\n", waited)
	fmt.Fprintf(out, "  errors.Is(err, pool.ErrMaxConnections) = %t\n", errors.Is(err, pool.ErrMaxConnections))
	var limit *pool.LimitError
	if !errors.As(err, &limit) {
		fmt.Fprintf(out, "  %v\n", err)
		return err
	}
	// The error's text is a header, then the holders' full report; print
	// the header and one line per holder.
	header, _, _ := strings.Cut(err.Error(), "held by:")
	for line := range strings.Lines(header + "held by:") {
		fmt.Fprintf(out, "  %s", line)
	}
	fmt.Fprintln(out)
	for _, g := range limit.Holders.Groups {
		site := "(no stack recorded)"
		if g.Site.Line != 0 {
			site = g.Site.ShortPos() + "  " + g.Site.Function
		}
		fmt.Fprintf(out, "    %d × %-6s %s\n", g.Count, g.Kind, site)
	}
	return err
}

// check returns an error describing the first way res differs from the
// expected outcome.
func (res *outcome) check() error {
	var errs []error
	if n := len(res.report.Groups); n != 2 {
		errs = append(errs, fmt.Errorf("report has %d groups, want 2:\n%s", n, res.report))
	}
	want := []struct {
		kind  tracker.Kind
		count int
		fn    string
	}{
		{tracker.KindConn, leakedConns, ".lookupUser"},
		{tracker.KindPubSub, leakedPubSubs, ".watchEvents"},
	}
	for _, w := range want {
		g, ok := findGroup(res.report, w.kind)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("report has no %s group", w.kind))
		case g.Count != w.count:
			errs = append(errs, fmt.Errorf("%s group has count %d, want %d", w.kind, g.Count, w.count))
		case !strings.HasSuffix(g.Site.Function, w.fn):
			errs = append(errs, fmt.Errorf("%s group is at %s, want a function ending in %s", w.kind, g.Site, w.fn))
		}
	}
	if res.max == leakedSockets && !errors.Is(res.capErr, pool.ErrMaxConnections) {
		errs = append(errs, fmt.Errorf("a Pub/Sub under a full cap returned %v, want an error matching pool.ErrMaxConnections", res.capErr))
	}
	if res.stats.OpenConnections > res.stats.MaxConnections {
		errs = append(errs, fmt.Errorf("%d sockets open, over the cap of %d", res.stats.OpenConnections, res.stats.MaxConnections))
	}
	if !errors.Is(res.closeErr, pool.ErrLeaked) {
		errs = append(errs, fmt.Errorf("client.Close returned %v, want an error matching pool.ErrLeaked", res.closeErr))
	} else if res.closeLeft != leakedSockets {
		errs = append(errs, fmt.Errorf("the LeakError of Close lists %d checkouts, want %d", res.closeLeft, leakedSockets))
	}
	return errors.Join(errs...)
}

func findGroup(r tracker.Report, k tracker.Kind) (tracker.Group, bool) {
	for _, g := range r.Groups {
		if g.Kind == k {
			return g, true
		}
	}
	return tracker.Group{}, false
}

func heading(out io.Writer, title string) {
	fmt.Fprintf(out, "\n== %s ==\n", title)
}
