// Command heldtoolong shows a connection held across a slow call: not a leak,
// the connection comes back, but far too late.
//
// The pattern: a handler takes a Conn (or runs a transaction, or holds a
// lock), then calls a slow service (HTTP, a database, a model) before it
// finishes its Redis work and closes the Conn.
//
// The symptom in production: under load the pool is empty though Redis is
// idle; callers fail with "redis: connection pool timeout" and p99 latency
// tracks the slow service; nothing stays leaked once traffic drops.
//
// What redisleak reports: with pool.WithHeldTooLong(tracker.KindConn, d) a
// Conn held longer than d is logged once at WARN ("redisleak: connection held
// too long", with its origin and the holders' stacks), and at INFO when it
// comes back. The watch for Conns and Pub/Subs is off by default.
//
// The fix: finish the Redis work and close the Conn before the slow call;
// take a connection again afterwards if needed.
//
//	go run ./examples/heldtoolong [-variant bad|fixed|both] [-addr host:port]
//
// It exits 0 when the bad variant is reported and the fixed one is clean.
package main

import (
	"context"
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

const (
	threshold = 100 * time.Millisecond
	slowCall  = 300 * time.Millisecond
	key       = "heldtoolong:user:1"
)

func main() { example.Main("heldtoolong", run) }

// score stands for a slow external service.
func score(name string) int { time.Sleep(slowCall); return len(name) }

// enrichBad scores a user and stores the score.
//
// BUG: the Conn is held across the slow call.
func enrichBad(ctx context.Context, c *pool.Client) error {
	cn := c.Conn()
	defer cn.Close()
	name, err := cn.Get(ctx, key).Result()
	if err != nil {
		return err
	}
	return cn.Set(ctx, key+":score", score(name), 0).Err()
}

// enrichFixed holds a connection only for the Redis work.
func enrichFixed(ctx context.Context, c *pool.Client) error {
	cn := c.Conn()
	name, err := cn.Get(ctx, key).Result()
	_ = cn.Close()
	if err != nil {
		return err
	}
	return c.Set(ctx, key+":score", score(name), 0).Err()
}

// records keeps what the client logs.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, r.Clone())
	return nil
}

func (h *records) all() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.list...)
}

type outcome struct {
	logs   []slog.Record
	report tracker.Report // taken once the WARN was logged, while the Conn was held
	err    error          // enrich's
}

func demo(ctx context.Context, addr, variant string, out io.Writer) (*outcome, error) {
	logs := &records{}
	c, err := pool.NewClient(&redis.Options{Addr: addr}, pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(logs)), pool.WithHeldTooLong(tracker.KindConn, threshold))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Set(ctx, key, "ada", time.Minute).Err(); err != nil {
		return nil, err
	}
	enrich := map[string]func(context.Context, *pool.Client) error{"bad": enrichBad, "fixed": enrichFixed}[variant]
	done := make(chan error, 1)
	go func() { done <- enrich(ctx, c) }() // a request in flight
	res := &outcome{}
	for tick := time.Tick(5 * time.Millisecond); ; <-tick {
		if len(res.report.Groups) == 0 && len(logs.all()) > 0 {
			res.report = c.Report() // what /debug/redisleak shows meanwhile
		}
		if len(done) > 0 {
			break
		}
	}
	res.err = <-done
	res.logs = logs.all()
	fmt.Fprintf(out, "[%s] enrich: %v; %d log records (threshold %s, slow call %s)\n", variant, res.err, len(res.logs), threshold, slowCall)
	for _, r := range res.logs {
		fmt.Fprintf(out, "  %s %q", r.Level, r.Message)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key != "holders" { // the holders' goroutine stacks: long
				fmt.Fprintf(out, " %s=%q", a.Key, a.Value)
			}
			return true
		})
		fmt.Fprintln(out)
	}
	for _, g := range res.report.Groups {
		fmt.Fprintf(out, "  meanwhile client.Report(): %d × %s at %s\n", g.Count, g.Kind, g.Site)
	}
	return res, nil
}

// Check returns an error unless res is what variant is expected to show.
func (res *outcome) Check(variant string) error {
	want := 0
	if variant == "bad" {
		want = 2 // the WARN and the INFO
	}
	if res.err != nil || len(res.logs) != want || (want > 0 && (res.logs[0].Level != slog.LevelWarn || res.logs[1].Level != slog.LevelInfo)) {
		return fmt.Errorf("%s: enrich: %v; %d log records, want %d (a WARN, then an INFO)", variant, res.err, len(res.logs), want)
	}
	return nil
}

// run runs the variants that variant names against addr (an embedded
// miniredis when empty) and returns an error unless each outcome is the
// expected one.
func run(ctx context.Context, addr, variant string, out io.Writer) error {
	return example.Run(ctx, addr, variant, out, demo)
}
