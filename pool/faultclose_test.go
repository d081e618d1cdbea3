package pool_test

// The cap under faults: closes the server does not confirm hold their slot
// only up to the drain bound, and Close ends dials, waits and drains in
// flight, leaving no slot, socket or goroutine of the library behind.

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
)

// noSlotsHeld fails t unless c holds no slot and no socket.
func noSlotsHeld(t *testing.T, c *pool.Client) {
	t.Helper()
	if s := c.Stats(); s.SlotsHeld() != 0 || s.OpenConnections != 0 {
		t.Errorf("after Close: %d slots held, %d sockets open; want 0 and 0", s.SlotsHeld(), s.OpenConnections)
	}
}

// stall makes srv sleep for d (DEBUG SLEEP) and returns at once; the server
// reads nothing meanwhile, so it does not see a socket close either.
func stall(t *testing.T, srv *testserver.Server, d time.Duration) {
	t.Helper()
	go func() { _ = srv.Admin().Do(context.Background(), "debug", "sleep", d.Seconds()).Err() }()
	time.Sleep(50 * time.Millisecond) // let the sleep begin
}

// TestDrainBound: a close the server does not confirm holds its slot until
// the drain bound, is counted, and Close does not wait it out.
func TestDrainBound(t *testing.T) {
	srv := testserver.Redis(t, "--enable-debug-command", "local")
	ctx := context.Background()
	for _, closeClient := range []bool{false, true} {
		c := claimClient(t, testOptions(srv.Addr()), nil, pool.WithMaxConnections(4), pool.WithDrainTimeout(300*time.Millisecond))
		cn := c.EphemeralConn() // its Close discards the socket
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		stall(t, srv, time.Second)
		if err := cn.Close(); err != nil {
			t.Fatal(err)
		}
		if s := c.Stats(); s.Draining != 1 || s.SlotsHeld() != 1 {
			t.Fatalf("after the close: %d draining, %d slots held; want 1 and 1", s.Draining, s.SlotsHeld())
		}
		if closeClient {
			// Close ends the drain at once, and counts no drain timeout.
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			noSlotsHeld(t, c)
			if n := c.Stats().DrainTimeouts; n != 0 {
				t.Errorf("a drain Close ended counts as %d drain timeouts, want 0", n)
			}
		} else {
			waitFor(t, "the drain bound", func() bool { return c.Stats().DrainTimeouts == 1 })
			if s := c.Stats(); s.Draining != 0 || s.SlotsHeld() != 0 {
				t.Errorf("after the drain bound: %d draining, %d slots held; want 0 and 0", s.Draining, s.SlotsHeld())
			}
			_ = c.Close()
		}
		waitFor(t, "the server to wake", func() bool { return srv.Admin().Ping(ctx).Err() == nil })
	}
}

// TestCloseMidDial: Close cancels a dial in flight and a wait for a slot.
func TestCloseMidDial(t *testing.T) {
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	dialing := make(chan struct{}, 4)
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialing <- struct{}{}
		<-ctx.Done() // a dial that hangs until cancelled
		return nil, ctx.Err()
	}
	opt.MaxRetries = -1
	c := claimClient(t, opt, nil, pool.WithMaxConnections(1))
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- c.Ping(context.Background()).Err() }()
	}
	<-dialing
	waitFor(t, "a dial and a waiter", func() bool { s := c.Stats(); return s.Dialing == 1 && s.Waiting >= 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	noSlotsHeld(t, c)
	for range 2 {
		if err := <-errs; err == nil || errors.Is(err, pool.ErrMaxConnections) {
			t.Errorf("Ping across Close = %v, want the dial's or the closed client's error", err)
		}
	}
}

// TestTLSToPlainServer: TLS against a server that does not speak it fails
// with go-redis's error, never a refusal of the cap, and Close leaves
// nothing behind.
func TestTLSToPlainServer(t *testing.T) {
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	opt.TLSConfig = &tls.Config{InsecureSkipVerify: true} // the handshake hangs: the server waits for RESP
	opt.DialTimeout = 300 * time.Millisecond
	opt.DialerRetries = 2
	opt.DialerRetryTimeout = 10 * time.Millisecond

	bare := redis.NewClient(opt)
	start := time.Now()
	bareErr := bare.Ping(context.Background()).Err()
	bareTook := time.Since(start)
	_ = bare.Close()

	c := claimClient(t, opt, nil, pool.WithMaxConnections(2))
	start = time.Now()
	err := c.Ping(context.Background()).Err()
	t.Logf("one caller: bare go-redis failed after %s (%v), pool.NewClient after %s (%v)", bareTook, bareErr, time.Since(start), err)
	errs := make(chan error, 4)
	start = time.Now()
	for range 4 {
		go func() { errs <- c.Ping(context.Background()).Err() }()
	}
	for range 4 {
		err := <-errs
		if err == nil || errors.Is(err, pool.ErrMaxConnections) {
			t.Errorf("Ping over TLS to a plain server = %v, want go-redis's dial error (bare: %v)", err, bareErr)
		}
	}
	t.Logf("four callers under a cap of 2: pool.NewClient's failed after %s", time.Since(start))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	noSlotsHeld(t, c)
	waitFor(t, "the server to drop the sockets", func() bool { return srv.ConnectedClients(t) == 0 })
}

// TestCloseMidTLSHandshake: Close ends a TLS handshake in flight, however
// long the dial's own bound.
func TestCloseMidTLSHandshake(t *testing.T) {
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	opt.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	opt.DialTimeout = time.Hour
	c := claimClient(t, opt, nil, pool.WithMaxConnections(2))
	errc := make(chan error, 1)
	go func() { errc <- c.Ping(context.Background()).Err() }()
	waitFor(t, "a TLS dial in flight", func() bool { return c.Stats().Dialing == 1 })
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not end the TLS handshake in flight (its bound is an hour)")
	}
	noSlotsHeld(t, c)
	if err := <-errc; err == nil {
		t.Error("Ping across Close succeeded")
	}
}

// killClients closes every connection of srv but the admin's, as the
// inspector's kill-idle or the server's timeout would.
func killClients(t *testing.T, srv *testserver.Server) {
	t.Helper()
	if err := srv.Admin().Do(context.Background(), "client", "kill", "type", "normal", "skipme", "yes").Err(); err != nil {
		t.Fatal(err)
	}
}

// TestDeadConns: the sockets of leaked Conns that the server closed are found
// and named; with WithReclaimAbandoned the client gets their turns back.
func TestDeadConns(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	for _, reclaim := range []bool{false, true} {
		opt := testOptions(srv.Addr())
		opt.PoolTimeout = 200 * time.Millisecond
		opts := []pool.Option{pool.WithMaxConnections(3)}
		if reclaim {
			opts = append(opts, pool.WithReclaimAbandoned(0))
		}
		c := claimClient(t, opt, nil, opts...)
		var leaked []*pool.Conn
		for range 3 {
			cn := c.Conn()
			if err := cn.Ping(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			leaked = append(leaked, cn)
		}
		killClients(t, srv)
		if !reclaim {
			waitFor(t, "the dead sockets to be found", func() bool { return c.Stats().DeadConns == 3 })
			if r := c.Report().String(); !strings.Contains(r, "3 connection closed by the server") {
				t.Errorf("report does not say the server closed the Conns' sockets:\n%s", r)
			}
			if err := c.Ping(ctx).Err(); !errors.Is(err, pool.ErrMaxConnections) {
				t.Errorf("Ping with every turn held by a dead Conn = %v, want ErrMaxConnections", err)
			}
		} else {
			waitFor(t, "the Conns to be reclaimed", func() bool { return c.Stats().Reclaimed == 3 })
			// go-redis still lists the dead sockets as idle in its pool:
			// nobody waits for all that.
			if s := c.Stats(); s.Waiting != 0 || s.DeadConns != 0 {
				t.Errorf("stats once the dead Conns were reclaimed: %d waiting, %d dead Conns; want 0 and 0 (they hold no turn any more)", s.Waiting, s.DeadConns)
			}
			if err := c.Ping(ctx).Err(); err != nil {
				t.Errorf("Ping after the dead Conns were reclaimed: %v", err)
			}
			err := leaked[0].Ping(ctx).Err()
			if !errors.Is(err, redis.ErrClosed) || !strings.Contains(err.Error(), "reclaimed") || !strings.Contains(err.Error(), "faultclose_test.go:") {
				t.Errorf("a reclaimed Conn's command = %v, want an error naming the reclaim and the Conn's origin", err)
			}
			if r := c.Report().String(); !strings.Contains(r, "3 reclaimed by the client") {
				t.Errorf("report does not list the reclaimed Conns as leaks:\n%s", r)
			}
			if s := c.Stats(); s.DeadConns != 0 || s.Open.Conn != 0 {
				t.Errorf("stats after the reclaim: %d dead Conns, %d Conn sockets; want 0 and 0", s.DeadConns, s.Open.Conn)
			}
		}
		for _, cn := range leaked {
			if err := cn.Close(); err != nil {
				t.Errorf("Close of a leaked Conn: %v", err)
			}
		}
		if s := c.Stats(); s.DeadConns != 0 {
			t.Errorf("%d dead Conns counted after every Conn was closed", s.DeadConns)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
