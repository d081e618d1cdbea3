package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"golang.org/x/sync/semaphore"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/internal/track"
)

// listen returns a loopback listener that closes each accepted connection
// when the peer closes its side, like a server freeing a client.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var b [64]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return ln
}

// testLimiter is a limiter of a client that never closes.
func testLimiter(max int, timeout time.Duration) *limiter {
	return newLimiter(max, 0, timeout, DefaultDrainTimeout, context.Background())
}

func dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func TestSocketKeepsHealthCheckAndReleasesOnce(t *testing.T) {
	ln := listen(t)
	lim := testLimiter(2, time.Second)
	dial := lim.dialer(dialTCP, func(_ context.Context, err error) error { return err })
	conn, err := dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := conn.(syscall.Conn); !ok {
		t.Fatal("the wrapper of a TCP connection does not implement syscall.Conn: go-redis's health check would turn off")
	}
	if nc, ok := conn.(interface{ NetConn() net.Conn }); !ok || nc.NetConn() == nil {
		t.Fatal("the wrapper does not expose NetConn")
	}
	if got := lim.counts().held; got != 1 {
		t.Fatalf("held = %d after a dial, want 1", got)
	}
	_ = conn.Close()
	_ = conn.Close()
	lim.waitIdle()
	if got := lim.counts().held; got != 0 {
		t.Fatalf("held = %d after two Closes, want 0", got)
	}
	// Both slots are free again: a third socket would need one.
	if !lim.sem.TryAcquire(2) {
		t.Fatal("a slot was released twice or not at all")
	}
}

func TestSocketWithoutSyscallConn(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	lim := testLimiter(1, time.Second)
	if err := lim.acquireSlot(context.Background()); err != nil {
		t.Fatal(err)
	}
	lim.open[rolePool].Add(1) // as the dialer counts it
	s := newSocket(a, lim, rolePool, track.Token{})
	if _, ok := s.(syscall.Conn); ok {
		t.Fatal("the wrapper claims syscall.Conn for a connection that has none")
	}
	_ = s.Close()
	lim.waitIdle()
	if lim.counts().held != 0 || !lim.sem.TryAcquire(1) {
		t.Fatal("slot not released")
	}
}

func TestSocketGarbageCollectedReleasesSlot(t *testing.T) {
	ln := listen(t)
	lim := testLimiter(1, time.Second)
	dial := lim.dialer(dialTCP, func(_ context.Context, err error) error { return err })
	func() {
		if _, err := dial(context.Background(), "tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for lim.counts().held != 0 || lim.collected.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a socket dropped without Close kept its slot")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDialRefusedAndCancelled(t *testing.T) {
	ln := listen(t)
	lim := testLimiter(1, 100*time.Millisecond)
	refuse := func(_ context.Context, err error) error { return err }
	dial := lim.dialer(dialTCP, refuse)
	held, err := dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, errSlotWait) {
		t.Fatalf("dial over the cap = %v, want a slot timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := dial(ctx, "tcp", ln.Addr().String()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled dial over the cap = %v, want context.Canceled", err)
	}
	// A dial that fails gives its slot back.
	_ = held.Close()
	lim.waitIdle()
	if _, err := dial(context.Background(), "tcp", "127.0.0.1:1"); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	// Neither wait got a slot: WaitCount counts those that did.
	if lim.counts().held != 0 || lim.waitCount.Load() != 0 || lim.canceled.Load() != 1 {
		t.Fatalf("held %d, waits %d, canceled %d; want 0, 0, 1", lim.counts().held, lim.waitCount.Load(), lim.canceled.Load())
	}
}

func TestSettle(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		name      string
		opt       redis.Options
		max       int
		want      settings
		notes     []string
		pipelines int           // PipelinePoolSize go-redis gets
		perTry    time.Duration // PoolTimeout go-redis gets
	}{
		{"no cap", redis.Options{PoolSize: 7}, 0, // PoolTimeout: read from the client once built
			settings{capFrom: "WithMaxConnections"}, nil, 0, 0},
		{"cap lowers pool", redis.Options{PoolSize: 50, MaxActiveConns: 60}, 8,
			settings{maxConnections: 8, capFrom: "WithMaxConnections", poolSize: 8, poolTimeout: 6 * time.Second},
			[]string{"MaxActiveConns 60 replaced", "PoolSize 50"}, -1, 1500 * time.Millisecond},
		{"cap with pipeline pool", redis.Options{PipelinePoolSize: 3, MaxRetries: -1}, 8,
			settings{maxConnections: 8, capFrom: "WithMaxConnections", poolSize: 5, poolTimeout: 6 * time.Second}, nil, 3, 6 * time.Second},
		{"cap above pool", redis.Options{PoolSize: 4, PoolTimeout: time.Second, MaxRetries: 1}, 16,
			settings{maxConnections: 16, capFrom: "WithMaxConnections", poolSize: 4, pubsubShare: 12, poolTimeout: time.Second}, nil, -1, 500 * time.Millisecond},
		{"MaxActiveConns is the cap", redis.Options{MaxActiveConns: 3, ReadTimeout: -1}, 0,
			settings{maxConnections: 3, capFrom: "MaxActiveConns", poolSize: 3, poolTimeout: 30 * time.Second},
			[]string{"MaxActiveConns is the cap"}, -1, 7500 * time.Millisecond},
		{"default pool under a large cap", redis.Options{}, 20 * procs,
			settings{maxConnections: 20 * procs, capFrom: "WithMaxConnections", poolSize: 10 * procs, pubsubShare: 10 * procs, poolTimeout: 6 * time.Second}, nil, -1, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config{}
			WithMaxConnections(tc.max)(&cfg)
			o, set, notes, err := settle(&tc.opt, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			if set != tc.want {
				t.Errorf("settings = %+v, want %+v", set, tc.want)
			}
			if len(notes) != len(tc.notes) {
				t.Fatalf("notes = %v, want %d", notes, len(tc.notes))
			}
			for i, w := range tc.notes {
				if text := fmt.Sprint(notes[i].msg, notes[i].attrs); !strings.Contains(text, w) {
					t.Errorf("note %q does not name %q", text, w)
				}
			}
			if o.PipelinePoolSize != tc.pipelines || o.PoolTimeout != tc.perTry || o.MaxActiveConns != 0 {
				t.Errorf("options: PipelinePoolSize %d, PoolTimeout %s, MaxActiveConns %d; want %d, %s, 0", o.PipelinePoolSize, o.PoolTimeout, o.MaxActiveConns, tc.pipelines, tc.perTry)
			}
			if tc.max > 0 && o.PoolSize != set.poolSize {
				t.Errorf("options: PoolSize %d, settings %d", o.PoolSize, set.poolSize)
			}
			if tc.opt.PipelinePoolSize == -1 || tc.opt.MaxActiveConns == 0 && tc.name == "MaxActiveConns is the cap" {
				t.Error("settle modified the caller's options")
			}
		})
	}
	cfg := config{}
	WithMaxConnections(4)(&cfg)
	if _, _, _, err := settle(&redis.Options{PipelinePoolSize: 4}, &cfg); err == nil || !strings.Contains(err.Error(), "PipelinePoolSize is 4") {
		t.Errorf("settle with a pipeline pool as large as the cap = %v, want an error naming it", err)
	}
}

// TestSettleKeepsASlotForPubSubs: for pools go-redis built (a failover
// cluster client's nodes), which cannot lend a Pub/Sub a turn, one slot of
// the cap is kept out of the pool when the cap has room for it, and a
// PoolSize the caller chose is lowered for it with a WARN saying so.
func TestSettleKeepsASlotForPubSubs(t *testing.T) {
	for _, tc := range []struct {
		opt         redis.Options
		max         int
		pool, share int
		note        string
	}{
		{redis.Options{}, 3, 2, 1, ""},
		{redis.Options{PoolSize: 3}, 3, 2, 1, "one slot kept for Pub/Subs; lowered to 2"},
		{redis.Options{PoolSize: 1}, 3, 1, 2, ""},
		{redis.Options{}, 1, 1, 0, ""}, // no room: the one slot is the pool's
	} {
		cfg := config{pubsubSlot: true, poolSizeUnset: tc.opt.PoolSize == 0}
		WithMaxConnections(tc.max)(&cfg)
		o, set, notes, err := settle(&tc.opt, &cfg)
		if err != nil {
			t.Fatal(err)
		}
		if o.PoolSize != tc.pool || set.poolSize != tc.pool || set.pubsubShare != tc.share {
			t.Errorf("PoolSize %d under a cap of %d: pool %d (options %d), share %d; want %d and %d", tc.opt.PoolSize, tc.max, set.poolSize, o.PoolSize, set.pubsubShare, tc.pool, tc.share)
		}
		text := fmt.Sprint(notes)
		if tc.note == "" && len(notes) != 0 || tc.note != "" && !strings.Contains(text, tc.note) {
			t.Errorf("PoolSize %d under a cap of %d: notes %s, want %q", tc.opt.PoolSize, tc.max, text, tc.note)
		}
	}
}

// TestSettleFollowsGoRedisDefaults checks that under a cap the pool's size
// and the wait for a socket are those go-redis completes the options with,
// whatever they are: the client reads them back from go-redis rather than
// copying go-redis's defaults, which a go-redis release may change.
func TestSettleFollowsGoRedisDefaults(t *testing.T) {
	for _, opt := range []redis.Options{
		{},
		{ReadTimeout: -1},
		{ReadTimeout: -2},
		{ReadTimeout: 2 * time.Second},
		{PoolTimeout: 3 * time.Second, MaxRetries: -1},
		{PoolSize: 3, MaxRetries: 5},
	} {
		c := redis.NewClient(&opt)
		want := *c.Options()
		_ = c.Close()
		cfg := config{}
		WithMaxConnections(1000)(&cfg)
		o, set, _, err := settle(&opt, &cfg)
		if err != nil {
			t.Fatal(err)
		}
		if set.poolTimeout != want.PoolTimeout || set.poolSize != want.PoolSize {
			t.Errorf("%+v: settled PoolTimeout %s, PoolSize %d; go-redis runs with %s, %d", opt, set.poolTimeout, set.poolSize, want.PoolTimeout, want.PoolSize)
		}
		if perTry := want.PoolTimeout / time.Duration(want.MaxRetries+1); o.PoolTimeout != perTry {
			t.Errorf("%+v: PoolTimeout per attempt %s, want %s over %d attempts", opt, o.PoolTimeout, perTry, want.MaxRetries+1)
		}
	}
}

// TestGoRedisInternals fails when a go-redis upgrade changes the private
// fields the library reads (see internals.go): a Pub/Sub's dial and exit
// channel, and the socket under the connection OnConnect and a Conn get.
func TestGoRedisInternals(t *testing.T) {
	t.Run("PubSub", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		defer c.Close()
		ps := c.Subscribe(context.Background())
		hooks, err := pubsubHooksOf(ps)
		if err != nil {
			t.Fatalf("redis.PubSub internals changed: %v", err)
		}
		called := 0
		hooks.aroundDial(func(ctx context.Context) (context.Context, error) {
			called++
			return ctx, errors.New("refused by test")
		}, func(*socket) { t.Error("connected called for a refused dial") })
		if err := ps.Subscribe(context.Background(), "ch"); err == nil || !strings.Contains(err.Error(), "refused by test") || called != 1 {
			t.Fatalf("Subscribe through the wrapped dial = %v (called %d), want the hook's error", err, called)
		}
		select {
		case <-hooks.exit:
			t.Fatal("exit closed before Close")
		default:
		}
		_ = ps.Close()
		select {
		case <-hooks.exit:
		default:
			t.Fatal("exit not closed by PubSub.Close")
		}
	})

	t.Run("Closed", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		if closed, err := closedByGoRedis(c); err != nil || closed {
			t.Fatalf("an open client: closed %v, %v; redis.Client's close flag moved", closed, err)
		}
		_ = c.Close()
		if closed, err := closedByGoRedis(c); err != nil || !closed {
			t.Fatalf("a closed client: closed %v, %v; redis.Client's close flag moved", closed, err)
		}
	})

	t.Run("Sockets", func(t *testing.T) {
		srv := testserver.Any(t)
		ctx := context.Background()
		lim := testLimiter(4, time.Second)
		var mu sync.Mutex
		var initSockets []*socket
		c := redis.NewClient(&redis.Options{
			Addr:                     srv.Addr(),
			Dialer:                   lim.dialer(dialTCP, func(_ context.Context, err error) error { return err }),
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
			OnConnect: func(_ context.Context, cn *redis.Conn) error {
				s, err := socketOfInitConn(cn)
				if err != nil {
					t.Errorf("the connection OnConnect gets: %v", err)
					return nil
				}
				mu.Lock()
				initSockets = append(initSockets, s)
				mu.Unlock()
				return nil
			},
		})
		defer c.Close()

		rc := c.Conn()
		defer rc.Close()
		var first []*socket
		if err := onFirstSocket(rc, tookFunc(func(s *socket, _ poolConn) { first = append(first, s) })); err != nil {
			t.Fatalf("a Conn's pool: %v", err)
		}
		for range 2 {
			if err := rc.Ping(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(initSockets) != 1 || len(first) != 1 || first[0] != initSockets[0] {
			t.Fatalf("OnConnect saw sockets %v, the Conn's first command %v; want the same one socket once", initSockets, first)
		}
		if first[0].id == 0 || first[0].id != socketIDs.Load() {
			t.Errorf("socket id %d; want the last one given out, %d", first[0].id, socketIDs.Load())
		}
	})

	t.Run("Conn closed", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		defer c.Close()
		rc := c.Conn()
		p, err := stickyOf(rc)
		if err != nil {
			t.Fatalf("a Conn's pool: %v", err)
		}
		if p.closed() {
			t.Fatal("a new Conn reads as closed")
		}
		_ = rc.Close()
		if !p.closed() {
			t.Fatal("a Conn closed through go-redis does not read as closed")
		}
		if err := p.close(); !errors.Is(err, redis.ErrClosed) {
			t.Fatalf("closing a closed Conn's pool = %v, want redis.ErrClosed", err)
		}
	})
}

func TestClassify(t *testing.T) {
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, tc := range []struct {
		cmd  redis.Cmder
		kind string
		op   string
	}{
		{redis.NewStringCmd(ctx, "get", "k"), "command", "get"},
		{redis.NewStringSliceCmd(ctx, "blpop", "q", int64(0)), "blocking", "blpop (no timeout)"},
		{redis.NewStringSliceCmd(ctx, "blpop", "q", int64(5)), "blocking", "blpop"},
		{redis.NewStringSliceCmd(ctx, "bzpopmin", "z", 0.5), "blocking", "bzpopmin"},
		{redis.NewStringSliceCmd(ctx, "blmpop", "0", 1, "q", "left"), "blocking", "blmpop (no timeout)"},
		{redis.NewXStreamSliceCmd(ctx, "xread", "count", 1, "block", int64(0), "streams", "s", "$"), "blocking", "xread (no timeout)"},
		{redis.NewXStreamSliceCmd(ctx, "xread", "streams", "s", "0"), "command", "xread"},
		// A stream named "block" is a key, not the BLOCK option.
		{redis.NewXStreamSliceCmd(ctx, "xread", "streams", "block", "0", "0"), "command", "xread"},
		{redis.NewXStreamSliceCmd(ctx, "xreadgroup", "group", "g", "c", "streams", "BLOCK", "0", ">"), "command", "xreadgroup"},
		{redis.NewXStreamSliceCmd(ctx, "xreadgroup", "group", "block", "c", "count", 1, "streams", "s", ">"), "command", "xreadgroup"},
		{redis.NewXStreamSliceCmd(ctx, "xreadgroup", "group", "g", "c", "block", int64(0), "streams", "s", ">"), "blocking", "xreadgroup (no timeout)"},
		{redis.NewIntCmd(ctx, "wait", 1, int64(100)), "blocking", "wait"},
	} {
		kind, op := classify(tc.cmd)
		if kind.String() != tc.kind || op != tc.op {
			t.Errorf("classify(%v) = %s %q, want %s %q", tc.cmd.Args(), kind, op, tc.kind, tc.op)
		}
	}
}

// replyError is a reply of the server, as go-redis returns one.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

func TestRefusesNames(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{replyError("NOPERM User app has no permissions to run the 'client|setname' command"), true},
		{replyError("ERR unknown command 'CLIENT', with args beginning with: 'SETNAME'"), true},
		{replyError("ERR unknown subcommand 'setname'. Try CLIENT HELP."), true},
		{replyError("NOAUTH Authentication required."), false},
		{replyError("LOADING Redis is loading the dataset in memory"), false},
		{errors.New("read: connection reset by peer"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := refusesNames(tc.err); got != tc.want {
			t.Errorf("refusesNames(%q) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A dial whose context ended may have reached the server: its slot is held,
// as draining, for a moment before it goes back.
func TestFailedDialGrace(t *testing.T) {
	ln := listen(t)
	lim := testLimiter(1, time.Second)
	slow := func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	dial := lim.dialer(slow, func(_ context.Context, err error) error { return err })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := dial(ctx, "tcp", ln.Addr().String()); err == nil {
		t.Fatal("dial succeeded")
	}
	if c := lim.counts(); c.held != 1 || c.draining != 1 {
		t.Errorf("after a dial whose context ended: %d held, %d draining; want 1 and 1", c.held, c.draining)
	}
	lim.waitIdle()
	if c := lim.counts(); c.held != 0 || c.draining != 0 {
		t.Errorf("after the grace: %d held, %d draining; want 0 and 0", c.held, c.draining)
	}
	// A dial refused by the network gives its slot back at once.
	if _, err := lim.dialer(dialTCP, func(_ context.Context, err error) error { return err })(context.Background(), "tcp", "127.0.0.1:1"); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if c := lim.counts(); c.held != 0 {
		t.Errorf("after a refused dial: %d held, want 0", c.held)
	}
}

func TestFirstCommandName(t *testing.T) {
	for in, want := range map[string]string{
		"*3\r\n$5\r\nblpop\r\n$1\r\nk\r\n$1\r\n0\r\n": "blpop",
		"*1\r\n$4\r\nPING\r\n":                        "PING",
		"*2\r\n$5\r\nbl":                              "",
		"+OK\r\n":                                     "",
		"*1\r\n$0\r\n\r\n":                            "",
		"*1\r\n$99\r\nx\r\n":                          "",
		"":                                            "",
		"*":                                           "",
	} {
		if got := firstCommandName([]byte(in)); got != want {
			t.Errorf("firstCommandName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConnSet: the list of open Conns keeps every Conn added and not yet
// removed, removing one twice or one never added changes nothing, and a
// sweep may remove the Conn it is looking at.
func TestConnSet(t *testing.T) {
	var cs connSet
	us := make([]*connUse, 5)
	for i := range us {
		us[i] = &connUse{}
		cs.add(us[i])
	}
	listed := func() []*connUse {
		var out []*connUse
		cs.each(func(u *connUse) bool { out = append(out, u); return true })
		return out
	}
	cs.remove(us[2])
	cs.remove(us[2])
	cs.remove(&connUse{})
	cs.remove(us[4]) // moved to where us[2] was
	cs.remove(us[0]) // the first: the last takes its place
	if got := listed(); len(got) != 2 || !slices.Contains(got, us[1]) || !slices.Contains(got, us[3]) {
		t.Fatalf("listed %v, want us[1] and us[3]", got)
	}
	cs.each(func(u *connUse) bool { cs.remove(u); return true })
	if got := listed(); len(got) != 0 {
		t.Fatalf("after removing every Conn in a sweep: listed %v", got)
	}
	cs.add(us[2])
	if got := listed(); len(got) != 1 || got[0] != us[2] {
		t.Fatalf("a removed Conn added again: listed %v", got)
	}
}

// TestMakingRoomKeepsItsPlace: a wait that makes room (a node's Pub/Sub
// closing idle pooled sockets of its node) keeps its place among the
// waiters while it does, so that the slot a close frees is its own, not
// that of a wait that began after it. It used to leave the queue every
// shedEvery to make room again: under load, the pool's own dials took each
// freed slot and the Pub/Sub shed socket after socket.
func TestMakingRoomKeepsItsPlace(t *testing.T) {
	sem := semaphore.NewWeighted(1)
	if !sem.TryAcquire(1) {
		t.Fatal("a fresh semaphore of 1 is full")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var sheds atomic.Int32
	first := make(chan error, 1)
	go func() {
		first <- acquireMakingRoom(ctx, sem, func() bool { sheds.Add(1); return false })
	}()
	time.Sleep(4*shedEvery + shedEvery/2) // the first wait is queued, and has made room a few times
	later := make(chan error, 1)
	go func() { later <- sem.Acquire(ctx, 1) }()
	time.Sleep(2 * shedEvery) // the later wait is queued too
	sem.Release(1)            // a close the first wait made room for is confirmed
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("the first wait: %v", err)
		}
	case err := <-later:
		t.Fatalf("the wait that began later took the slot (err %v); the first one lost its place", err)
	}
	if sheds.Load() < 2 {
		t.Errorf("made room %d times while waiting %v; want about once per %v", sheds.Load(), 6*shedEvery, shedEvery)
	}
	sem.Release(1)
	if err := <-later; err != nil {
		t.Fatalf("the later wait: %v", err)
	}
}
