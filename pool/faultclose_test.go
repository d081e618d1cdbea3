package pool_test

// The cap under faults: closes the server does not confirm hold their slot
// only up to the drain bound, and Close ends dials, waits and drains in
// flight, leaving no slot, socket or goroutine of the library behind.

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
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
	t.Logf("bare go-redis failed after %s, pool.NewClient's 4 callers after %s", bareTook, time.Since(start))
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
