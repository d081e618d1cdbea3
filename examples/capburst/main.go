// Command capburst shows a burst of goroutines that each run commands and
// subscribe, against bare go-redis with PoolSize 5 and against redisleak with
// pool.WithMaxConnections(5), counting the sockets the server sees.
//
// The pattern: PoolSize looks like a connection limit, but go-redis opens each
// Pub/Sub's socket outside the pool (and dedicated Conns, retries and
// probes add more), so a burst opens as many sockets as it has subscribers.
//
// The symptom in production: during bursts (a deploy, a reconnect storm)
// connected_clients spikes far above PoolSize × instances and Redis answers
// "ERR max number of clients reached", or a proxy's limit refuses connections.
//
// What redisleak does: every socket takes a slot of one cap, Pub/Sub
// included; callers wait for a slot (and get an error matching
// pool.ErrMaxConnections if none frees up in time), and the server never sees
// more than the cap. Here "bad" is bare go-redis and "fixed" the capped client.
//
//	go run ./examples/capburst [-variant bad|fixed|both] [-addr host:port]
//
// It exits 0 when the bare client's peak exceeds 5 and the capped one's does not.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/examples/internal/example"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

const (
	workers = 50
	maxConn = 5
	hold    = 200 * time.Millisecond // each subscriber listens this long: over twice connCounter's window
)

func main() { example.Main("capburst", run) }

// client is what the burst needs; *redis.Client and *pool.Client have it.
type client interface {
	Ping(ctx context.Context) *redis.StatusCmd
	Incr(ctx context.Context, key string) *redis.IntCmd
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
	Close() error
}

// burst runs the workers: a command, then a subscription held for a while.
func burst(ctx context.Context, c client) error {
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			if errs[i] = c.Incr(ctx, "capburst:hits").Err(); errs[i] != nil {
				return
			}
			ps := c.Subscribe(ctx, fmt.Sprint("capburst:", i))
			defer ps.Close()
			if _, errs[i] = ps.Receive(ctx); errs[i] == nil {
				time.Sleep(hold)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

type outcome struct {
	peak     int // the most sockets the server counted at once
	err      error
	closeErr error
}

// demo runs the burst with one variant's client, sampling count meanwhile.
func demo(ctx context.Context, addr, variant string, count func() int, out io.Writer) (*outcome, error) {
	// The server's connections before the run, once the last run's are gone:
	// a client's Close returns before the server has seen every socket go,
	// and a dial already under way may still land, so wait for the count to
	// hold still for 100ms (at most 3s).
	base, still := count(), 0
	for deadline := time.Now().Add(3 * time.Second); still < 5 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if n := count(); n != base {
			base, still = n, 0
		} else {
			still++
		}
	}
	opt := &redis.Options{Addr: addr, PoolSize: maxConn}
	var c client
	if variant == "bad" {
		c = redis.NewClient(opt)
	} else {
		pc, err := pool.NewClient(opt, pool.WithMaxConnections(maxConn), pool.WithTracker(tracker.New()),
			pool.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))))
		if err != nil {
			return nil, err
		}
		c = pc
	}
	// A first command before going concurrent: go-redis v9.23 races on its
	// options when a Conn (which Subscribe uses under the cap) and the client
	// open their first sockets at once to a server that refuses its
	// maintenance-notifications handshake, such as miniredis.
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, err
	}
	var peak atomic.Int64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for tick := time.Tick(time.Millisecond); ; {
			peak.Store(max(peak.Load(), int64(count()-base)))
			select {
			case <-stop:
				return
			case <-tick:
			}
		}
	}()
	start := time.Now()
	res := &outcome{err: burst(ctx, c)}
	close(stop)
	<-sampled
	res.peak = int(peak.Load())
	res.closeErr = c.Close()
	fmt.Fprintf(out, "[%s] %d workers (INCR, then SUBSCRIBE for %s) in %s; errors: %s\n",
		variant, workers, hold, time.Since(start).Round(time.Millisecond), example.FirstLine(res.err))
	fmt.Fprintf(out, "[%s] peak sockets seen by the server: %d (PoolSize %d)\n", variant, res.peak, maxConn)
	return res, nil
}

// Check returns an error unless res is what variant is expected to show.
func (res *outcome) Check(variant string) error {
	if variant == "bad" {
		if res.peak <= maxConn {
			return fmt.Errorf("bad: peak %d, want above %d", res.peak, maxConn)
		}
		return nil
	}
	if res.peak > maxConn || res.err != nil || res.closeErr != nil {
		return fmt.Errorf("fixed: peak %d (cap %d); burst: %v; Close: %v", res.peak, maxConn, res.err, res.closeErr)
	}
	return nil
}

// connCounter counts the server's connections: miniredis's own count, or a
// real server's connected_clients less the probe's own connection.
func connCounter(ctx context.Context, mr *miniredis.Miniredis, addr string) (count func() int, stop func()) {
	if mr != nil {
		// miniredis closes a socket whose peer hung up before it drops it
		// from its count (after its disconnect handlers, which can take a
		// few milliseconds, more under -race on a loaded machine, since they
		// wait for the server's lock), so a socket closed and the one opened
		// right after can overlap in its count; redis-server forgets a client
		// before it closes the socket, and -addr counts exactly. Read the
		// count four times over 60ms and keep the lowest: a socket over the
		// cap for 60ms or more is counted in all four (the lag reached 20ms
		// under a loaded -race run), and a subscriber held for hold is seen.
		return func() int {
			lowest := mr.CurrentConnectionCount()
			for range 3 {
				time.Sleep(20 * time.Millisecond)
				lowest = min(lowest, mr.CurrentConnectionCount())
			}
			return lowest
		}, func() {}
	}
	probe := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
	return func() int { return example.ConnectedClients(ctx, probe) }, func() { _ = probe.Close() }
}

// run runs the variants that variant names against addr (an embedded
// miniredis when empty), counting the server's connections, and returns an
// error unless each outcome is the expected one.
func run(ctx context.Context, addr, variant string, out io.Writer) error {
	return example.Run(ctx, addr, variant, out, func(ctx context.Context, _, variant string, out io.Writer) (*outcome, error) {
		// Each variant gets its own embedded server: sockets the bare client
		// leaves closing, which miniredis may accept late, must not count
		// against the capped one.
		srv, mr, stop, err := example.Server(addr)
		if err != nil {
			return nil, err
		}
		defer stop()
		count, stopCount := connCounter(ctx, mr, srv)
		defer stopCount()
		return demo(ctx, srv, variant, count, out)
	})
}
