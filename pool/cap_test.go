package pool_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// sampler counts the server's client connections (the admin's excluded)
// every few milliseconds until stopped, and keeps the largest count.
type sampler struct {
	peak    atomic.Int64
	samples atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

func sample(srv *testserver.Server) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	admin := srv.Admin()
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			text, err := admin.ClientList(context.Background()).Result()
			if err == nil {
				infos, err := testserver.ParseClientList(text)
				if err == nil {
					n := int64(0)
					for _, ci := range infos {
						if ci.Name != testserver.AdminClientName {
							n++
						}
					}
					s.samples.Add(1)
					if n > s.peak.Load() {
						s.peak.Store(n)
					}
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return s
}

func (s *sampler) finish() (peak, samples int64) {
	close(s.stop)
	<-s.done
	return s.peak.Load(), s.samples.Load()
}

// load is the workload of the cap acceptance test: commands and pipelines
// from many goroutines, subscribers that retry until they get through, and a
// few goroutines holding dedicated connections for a while.
type load struct {
	commands, pipelines atomic.Int64 // succeeded
	cmdRefused          atomic.Int64 // failed with ErrMaxConnections
	subscribed          atomic.Int64 // subscribers that got through
	subRefused          atomic.Int64 // subscribe attempts refused
	refusalText         atomic.Value // one refusal's text
	unexpected          atomic.Value // first unexpected error
}

func (l *load) fail(err error) { l.unexpected.CompareAndSwap(nil, err) }

// runLoad runs the workload against c for d: cmdWorkers command goroutines,
// subscribers subscribing goroutines, and holders goroutines that hold a Conn
// for most of d and then close it, which lets the refused subscribers in.
// dedicated is what runLoad needs of a dedicated connection: a *redis.Conn
// or a *pool.Conn.
type dedicated interface {
	Ping(context.Context) *redis.StatusCmd
	Close() error
}

// sampledLoad runs the cap test's workload against c while sampling the
// server, and returns the workload's counts and the peak the server saw.
func sampledLoad(srv *testserver.Server, c redis.UniversalClient, conn func() dedicated, d time.Duration) (l *load, peak, samples int64) {
	s := sample(srv)
	l = runLoad(c, conn, d, 200, 12, 3)
	peak, samples = s.finish()
	return l, peak, samples
}

func runLoad(c redis.UniversalClient, conn func() dedicated, d time.Duration, cmdWorkers, subscribers, holders int) *load {
	l := &load{}
	ctx := context.Background()
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range cmdWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("key-%d", i)
			for j := 0; time.Now().Before(stop); j++ {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				var err error
				if j%4 == 3 {
					_, err = c.Pipelined(cctx, func(p redis.Pipeliner) error {
						p.Incr(cctx, key)
						p.Get(cctx, key)
						return nil
					})
					if err == nil {
						l.pipelines.Add(1)
					}
				} else {
					err = c.Set(cctx, key, j, 0).Err()
					if err == nil {
						err = c.Get(cctx, key).Err()
					}
					if err == nil {
						l.commands.Add(1)
					}
				}
				cancel()
				switch {
				case err == nil:
				case errors.Is(err, pool.ErrMaxConnections):
					l.cmdRefused.Add(1)
				case errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout):
					// Bare go-redis waits the same way; not a failure.
				default:
					l.fail(fmt.Errorf("command: %w", err))
				}
			}
		}()
	}
	for range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn := conn()
			defer cn.Close()
			for time.Now().Before(stop.Add(-d / 3)) {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := cn.Ping(cctx).Err()
				cancel()
				if err != nil && !errors.Is(err, pool.ErrMaxConnections) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, redis.ErrPoolTimeout) {
					l.fail(fmt.Errorf("conn: %w", err))
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	for i := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Let the commands warm the pool first; then retry until
			// through, and hold the subscription for a while.
			time.Sleep(d / 6)
			for time.Now().Before(stop.Add(10 * time.Second)) {
				ps := c.Subscribe(ctx, fmt.Sprintf("ch-%d", i))
				rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				_, err := ps.Receive(rctx)
				cancel()
				if err == nil {
					l.subscribed.Add(1)
					time.Sleep(d / 6)
					_ = ps.Close()
					return
				}
				_ = ps.Close()
				if errors.Is(err, pool.ErrMaxConnections) {
					l.subRefused.Add(1)
					l.refusalText.CompareAndSwap(nil, err.Error())
				} else if !errors.Is(err, context.DeadlineExceeded) {
					l.fail(fmt.Errorf("subscribe: %w", err))
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return l
}

func TestCapHoldsUnderLoad(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last, once the server is stopped
	srv := testserver.Redis(t)
	const capacity = 5
	const d = 3 * time.Second

	// Bare go-redis under the same load, for the record.
	bareOpt := withPoolTimeout(options(srv), 500*time.Millisecond)
	bareOpt.PoolSize, bareOpt.MaxActiveConns = capacity, capacity
	bare := redis.NewClient(bareOpt)
	bl, barePeak, _ := sampledLoad(srv, bare, func() dedicated { return bare.Conn() }, d)
	_ = bare.Close()
	t.Logf("bare go-redis, PoolSize=MaxActiveConns=%d: server saw up to %d connections (%d commands, %d subscribers through)",
		capacity, barePeak, bl.commands.Load(), bl.subscribed.Load())
	waitClients(t, srv, 0)

	tr := tracker.New()
	c, err := pool.NewClient(withPoolTimeout(options(srv), 500*time.Millisecond),
		pool.WithMaxConnections(capacity), pool.WithTracker(tr))
	if err != nil {
		t.Fatal(err)
	}
	l, peak, samples := sampledLoad(srv, c, func() dedicated { return c.Conn() }, d)
	t.Logf("redisleak, MaxConnections=%d: server saw up to %d connections in %d samples; %d commands, %d pipelines, %d refused; %d subscribers through, %d refusals",
		capacity, peak, samples, l.commands.Load(), l.pipelines.Load(), l.cmdRefused.Load(), l.subscribed.Load(), l.subRefused.Load())

	if err, _ := l.unexpected.Load().(error); err != nil {
		t.Fatalf("unexpected error under load: %v", err)
	}
	if peak > capacity {
		t.Errorf("server saw %d connections from a client capped at %d", peak, capacity)
	}
	if samples < 100 {
		t.Errorf("only %d samples of CLIENT LIST; the check is too weak", samples)
	}
	if l.commands.Load() == 0 || l.pipelines.Load() == 0 {
		t.Errorf("no command or pipeline got through")
	}
	if got := l.subscribed.Load(); got != 12 {
		t.Errorf("%d of 12 subscribers got through", got)
	}
	if l.subRefused.Load() == 0 {
		t.Errorf("no subscriber was refused: the cap was never full")
	} else if text, _ := l.refusalText.Load().(string); !strings.Contains(text, "held by") || !strings.Contains(text, "conn") || !strings.Contains(text, fmt.Sprintf("of %d slots held", capacity)) {
		t.Errorf("refusal does not name the cap and the holders:\n%s", text)
	}
	// At rest, slots held == sockets the server sees. Both are read anew
	// each time: a socket may still be draining when the load stops.
	deadline := time.Now().Add(5 * time.Second)
	for open, seen := c.Stats().OpenConnections, srv.ConnectedClients(t); open != seen; open, seen = c.Stats().OpenConnections, srv.ConnectedClients(t) {
		if time.Now().After(deadline) {
			t.Fatalf("at rest: %d slots held, server sees %d sockets", open, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := c.Stats(); st.Outstanding != 0 || st.Open.PubSub != 0 || st.Open.Conn != 0 || st.OpenConnections != st.Idle {
		t.Fatalf("at rest: %+v", st)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if st := c.Stats(); st.OpenConnections != 0 || st.Outstanding != 0 {
		t.Fatalf("after Close: %+v", st)
	}
	if st := tr.Stats(); st.Outstanding != 0 || st.InvalidReleases != 0 {
		t.Fatalf("tracker after Close: %+v", st)
	}
	waitClients(t, srv, 0)
}

// waitClients waits until the server counts want client connections; the
// server notices a closed socket a moment after the client closes it.
func waitClients(t *testing.T, srv *testserver.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := srv.ConnectedClients(t)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server counts %d clients, want %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCapWaitCancelled(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	srv := testserver.Redis(t)
	c, err := pool.NewClient(withPoolTimeout(options(srv), 10*time.Second),
		pool.WithMaxConnections(1), pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cn := c.Conn() // takes the only socket
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	// A subscriber and a command wait for the socket; their contexts are
	// cancelled long before PoolTimeout.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	ps := c.Subscribe(cctx, "ch")
	if _, err := ps.Receive(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive with a cancelled wait = %v, want context.Canceled", err)
	}
	_ = ps.Close()
	cctx, cancel = context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := c.Get(cctx, "k").Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled wait = %v, want context.Canceled", err)
	}

	st := c.Stats()
	if st.OpenConnections != 1 || st.Open.Conn != 1 || st.Canceled < 1 {
		t.Fatalf("after cancelled waits: %+v; want 1 open socket (the Conn) and a cancelled wait", st)
	}
	if n := srv.ConnectedClients(t); n != 1 {
		t.Fatalf("server counts %d clients, want 1", n)
	}

	// With the Conn closed, the same calls go through.
	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	ps = c.Subscribe(ctx, "ch")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("Receive once the socket is free = %v", err)
	}
	if err := ps.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.OpenConnections != 0 {
		t.Fatalf("after Close: %+v", st)
	}
}

func TestCapRefusalNamesHolders(t *testing.T) {
	srv := testserver.Redis(t)
	c, err := pool.NewClient(withPoolTimeout(options(srv), 200*time.Millisecond),
		pool.WithMaxConnections(2), pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	conns, connLine := leakConns(ctx, t, c, 2)

	start := time.Now()
	ps := c.Subscribe(ctx, "ch")
	_, err = ps.Receive(ctx)
	waited := time.Since(start)
	_ = ps.Close()
	var limit *pool.LimitError
	if !errors.As(err, &limit) || !errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("Receive under a full cap = %v, want a *pool.LimitError", err)
	}
	if waited < 200*time.Millisecond || waited > 5*time.Second {
		t.Errorf("waited %s, want about PoolTimeout (200ms)", waited)
	}
	if limit.Max != 2 || limit.Open != 2 {
		t.Errorf("LimitError{Max: %d, Open: %d}, want 2 and 2", limit.Max, limit.Open)
	}
	text := err.Error()
	for _, want := range []string{"2 of 2 slots held (2 open: 2 by Conns", "2 × conn", fmt.Sprintf("acceptance_test.go:%d", connLine)} {
		if !strings.Contains(text, want) {
			t.Errorf("refusal text lacks %q:\n%s", want, text)
		}
	}
	// A command waits for a pool turn the same way and is refused the same way.
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, pool.ErrMaxConnections) || !errors.Is(err, redis.ErrPoolTimeout) {
		t.Fatalf("Get under a full cap = %v, want ErrMaxConnections wrapping redis.ErrPoolTimeout", err)
	}
	for _, cn := range conns {
		_ = cn.Close()
	}
	if err := c.Get(ctx, "k").Err(); err != nil && err != redis.Nil {
		t.Fatalf("Get once the conns are closed = %v", err)
	}
	if st := c.Stats(); st.Timeouts < 2 {
		t.Fatalf("Stats().Timeouts = %d, want the 2 refusals counted", st.Timeouts)
	}
}

// TestCapDeadlineWhileWaiting: a command whose own deadline passes while it
// waits for a socket under a full cap is refused like one whose PoolTimeout
// passes: ErrMaxConnections naming the holders, matching the deadline too. A
// deadline that passes after the command got its socket stays the plain
// error it is with go-redis alone.
func TestCapDeadlineWhileWaiting(t *testing.T) {
	srv := testserver.Redis(t, "--enable-debug-command", "local")
	opt := withPoolTimeout(options(srv), 10*time.Second)
	opt.ContextTimeoutEnabled = true // so that the deadline also bounds reads
	c, err := pool.NewClient(opt, pool.WithMaxConnections(1), pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	// The server is slow and the deadline passes during the read: not the
	// cap's doing.
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = c.Do(dctx, "DEBUG", "SLEEP", "0.4").Err()
	cancel()
	if err == nil || errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("a command slower than its deadline = %v, want a timeout that is not ErrMaxConnections", err)
	}
	time.Sleep(400 * time.Millisecond) // the server finishes the sleep

	conns, connLine := leakConns(ctx, t, c, 1) // takes the only socket
	refusals := c.Stats().Timeouts
	for _, tc := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"command", func(ctx context.Context) error { return c.Get(ctx, "k").Err() }},
		{"pipeline", func(ctx context.Context) error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "k"); return nil })
			return err
		}},
		{"first command of a Conn", func(ctx context.Context) error {
			cn := c.Conn()
			defer cn.Close()
			return cn.Ping(ctx).Err()
		}},
	} {
		dctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		start := time.Now()
		err := tc.run(dctx)
		waited := time.Since(start)
		cancel()
		if !errors.Is(err, pool.ErrMaxConnections) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s whose deadline passed waiting for a socket = %v, want ErrMaxConnections and context.DeadlineExceeded", tc.name, err)
			continue
		}
		if waited < 150*time.Millisecond || waited > 5*time.Second {
			t.Errorf("%s waited %s, want about its deadline (150ms)", tc.name, waited)
		}
		if want := fmt.Sprintf("acceptance_test.go:%d", connLine); !strings.Contains(err.Error(), want) {
			t.Errorf("%s refusal does not name the holder's line %d:\n%s", tc.name, connLine, err)
		}
	}
	if got := c.Stats().Timeouts - refusals; got != 3 {
		t.Errorf("Stats().Timeouts rose by %d, want 3", got)
	}

	// A cancelled wait is no refusal.
	cctx, cancelWait := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancelWait)
	if err := c.Get(cctx, "k").Err(); !errors.Is(err, context.Canceled) || errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("Get with a cancelled wait = %v, want context.Canceled only", err)
	}
	_ = conns[0].Close()
	if err := c.Get(ctx, "k").Err(); err != nil && err != redis.Nil {
		t.Fatalf("Get once the socket is free = %v", err)
	}
}

// TestCapSlowDialIsNoRefusal: a deadline that passes while a socket is being
// dialed, with slots of the cap free, is the network's: no ErrMaxConnections.
func TestCapSlowDialIsNoRefusal(t *testing.T) {
	srv := testserver.Redis(t)
	opt := options(srv)
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(300 * time.Millisecond) // a slow network
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	c, err := pool.NewClient(opt, pool.WithMaxConnections(3), pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = c.Get(ctx, "k").Err()
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("Get whose deadline passed during a slow dial = %v, want context.DeadlineExceeded and no ErrMaxConnections", err)
	}
	if n := c.Stats().Timeouts; n != 0 {
		t.Errorf("Stats().Timeouts = %d, want 0", n)
	}
	// go-redis finishes the dial in the background and pools the socket;
	// let it, so that no dial outlives the test.
	for deadline := time.Now().Add(5 * time.Second); c.Stats().Idle != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the background dial did not finish: %+v", c.Stats())
		}
	}
}

func TestCapShedsIdleSockets(t *testing.T) {
	srv := testserver.Redis(t)
	c := newClient(t, srv, pool.WithMaxConnections(3))
	defer c.Close()
	ctx := context.Background()

	// Fill the cap with idle pooled sockets: three connections held at
	// once, then returned to the pool.
	var held []*pool.Conn
	for range 3 {
		cn := c.Conn()
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		held = append(held, cn)
	}
	for _, cn := range held {
		_ = cn.Close()
	}
	waitClients(t, srv, 3)
	if st := c.Stats(); st.OpenConnections != 3 || st.Idle != 3 {
		t.Fatalf("before: %+v, want 3 idle sockets", st)
	}

	// Three subscribers need sockets the pool holds idle: each sheds one.
	var subs []*redis.PubSub
	for i := range 3 {
		ps := c.Subscribe(ctx, fmt.Sprint("ch", i))
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		subs = append(subs, ps)
	}
	st := c.Stats()
	if st.Shed != 3 || st.Open.PubSub != 3 || st.OpenConnections != 3 {
		t.Fatalf("after subscribing: %+v; want 3 shed, 3 Pub/Sub sockets, 3 open", st)
	}
	waitClients(t, srv, 3)
	if pubsubs := countFlag(srv.Clients(t), 'P'); pubsubs != 3 {
		t.Fatalf("server counts %d Pub/Sub clients, want 3", pubsubs)
	}
	for _, ps := range subs {
		_ = ps.Close()
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("command after the subscribers closed: %v", err)
	}
}

func countFlag(clients []testserver.ClientInfo, flag rune) int {
	n := 0
	for _, ci := range clients {
		if strings.ContainsRune(ci.Flags, flag) {
			n++
		}
	}
	return n
}

func TestCapDialFailuresHoldNoSlot(t *testing.T) {
	srv := testserver.Redis(t)
	c := newClient(t, srv, pool.WithMaxConnections(4))
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ps := c.Subscribe(ctx, "ch")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	defer ps.Close()

	srv.Stop(t)
	for range 10 {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if err := c.Get(cctx, "k").Err(); err == nil {
			t.Fatal("Get succeeded with the server stopped")
		}
		cancel()
	}
	// The failed dials hold nothing. The Pub/Sub's socket stays open, dead,
	// until go-redis closes it on the Pub/Sub's next receive.
	waitOpen(t, c, 1)

	srv.Restart(t)
	// go-redis's dial circuit breaker, tripped by the refused dials, probes
	// once a second before it lets dials through again.
	deadline := time.Now().Add(5 * time.Second)
	for err := c.Set(ctx, "k", "v", 0).Err(); err != nil; err = c.Set(ctx, "k", "v", 0).Err() {
		if time.Now().After(deadline) {
			t.Fatalf("Set after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The Pub/Sub reconnects on its next receive: not a new checkout.
	if err := c.Publish(ctx, "ch", "hello").Err(); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for {
		msg, err := ps.Receive(rctx)
		if err != nil {
			if rctx.Err() != nil {
				t.Fatalf("Pub/Sub did not reconnect: %v", err)
			}
			_ = c.Publish(ctx, "ch", "hello").Err()
			continue
		}
		if _, ok := msg.(*redis.Message); ok {
			break
		}
	}
	if r := c.Report().Filter(func(g tracker.Group) bool { return g.Kind == tracker.KindPubSub }); r.Len() != 1 {
		t.Fatalf("after a reconnect the report has %d Pub/Subs, want 1:\n%s", r.Len(), r)
	}
	st := c.Stats()
	if st.OpenConnections > 4 || st.OpenConnections != srv.ConnectedClients(t) {
		t.Fatalf("open sockets %d, server counts %d (cap 4)", st.OpenConnections, srv.ConnectedClients(t))
	}
}

// waitOpen waits until the client's open sockets are want: a closed socket
// holds its slot until the server confirms the close.
func waitOpen(t *testing.T, c *pool.Client, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().OpenConnections != want {
		if time.Now().After(deadline) {
			t.Fatalf("open sockets = %d, want %d: %+v", c.Stats().OpenConnections, want, c.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func withPoolTimeout(o *redis.Options, d time.Duration) *redis.Options {
	o.PoolTimeout = d
	return o
}

// A user whose ACL forbids ECHO, the marker of a reservation, still gets
// its Pub/Sub under the cap.
func TestCapReservationWithoutEcho(t *testing.T) {
	srv := testserver.Redis(t)
	admin := srv.Admin()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all", "-echo").Err(); err != nil {
		t.Fatal(err)
	}
	opt := options(srv)
	opt.Username, opt.Password = "limited", "pw"
	c, err := pool.NewClient(opt, pool.WithMaxConnections(2), pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Echo(ctx, "x").Err(); err == nil {
		t.Fatal("ECHO allowed: the ACL does not test what it should")
	}
	ps := c.Subscribe(ctx, "ch")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("Subscribe without ECHO permission: %v", err)
	}
	if st := c.Stats(); st.Open.PubSub != 1 || st.Shed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestWaitCountCountsWaitsThatGotASocket: Stats counts a wait for a socket
// once it gets one, as go-redis counts its waits for a turn; a wait that ends
// in a refusal counts in Timeouts, not in WaitCount.
func TestWaitCountCountsWaitsThatGotASocket(t *testing.T) {
	srv := testserver.Any(t)
	ctx := context.Background()
	opt := testOptions(srv.Addr())
	opt.PoolTimeout = 300 * time.Millisecond
	c := claimClient(t, opt, nil, pool.WithMaxConnections(1))
	defer c.Close()
	cn := c.Conn()
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); !errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("Ping with the one socket held: %v, want a refusal", err)
	}
	if s := c.Stats(); s.WaitCount != 0 || s.Timeouts != 1 {
		t.Errorf("after a refused wait: WaitCount %d, Timeouts %d; want 0 and 1", s.WaitCount, s.Timeouts)
	}
	done := make(chan error, 1)
	go func() { done <- c.Ping(ctx).Err() }()
	waitFor(t, "the Ping to wait", func() bool { return c.Stats().Waiting > 0 })
	_ = cn.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.WaitCount != 1 || s.WaitDuration <= 0 {
		t.Errorf("after a wait that got the socket: WaitCount %d, WaitDuration %s; want 1 and more than 0", s.WaitCount, s.WaitDuration)
	}
}
