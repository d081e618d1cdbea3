package pool_test

// Every claim the library makes must be true: a definite leak is definite,
// a refusal is the cap's and names who holds the sockets, and without a cap
// the client refuses nothing bare go-redis would allow. Each test below
// reproduces one false claim found by trying the library from outside.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// testOptions are the go-redis options of these tests. Maintenance
// notifications are off: redis-server 7.0 refuses them, and go-redis v9.23
// then settles the shared setting without a lock, a race of its own.
func testOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                     addr,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// claimClient is a client of its own tracker whose logs logs records.
func claimClient(t *testing.T, opt *redis.Options, logs *logRecorder, opts ...pool.Option) *pool.Client {
	t.Helper()
	if logs == nil {
		logs = &logRecorder{}
	}
	opts = append([]pool.Option{pool.WithTracker(tracker.New()), pool.WithLogger(slog.New(logs))}, opts...)
	c, err := pool.NewClient(opt, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const definiteLeak = "redisleak: definite leak: garbage-collected without Close"

// collect runs the garbage collector until the runtime's cleanups of what the
// test dropped have had their chance to run.
func collect() {
	for range 5 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

// noDefiniteLeak fails t when the tracker counted, or the client logged, a
// definite leak.
func noDefiniteLeak(t *testing.T, tr *tracker.Tracker, logs *logRecorder) {
	t.Helper()
	if d := tr.Stats().Dropped; d != 0 {
		t.Errorf("tracker counts %d definite leaks; every handle was closed", d)
	}
	if found := logs.find(definiteLeak); len(found) != 0 {
		t.Errorf("%d WARN lines %q for closed handles: %v", len(found), definiteLeak, found[0])
	}
}

// TestClosedPubSubsAreNoLeaks: Pub/Subs closed and then collected, in
// whatever order, are never called definite leaks.
func TestClosedPubSubsAreNoLeaks(t *testing.T) {
	srv := testserver.Redis(t)
	logs := &logRecorder{}
	tr := tracker.New()
	c := claimClient(t, testOptions(srv.Addr()), logs, pool.WithTracker(tr))
	defer c.Close()
	ctx := context.Background()
	clone := c.WithTimeout(time.Minute)
	subscribe := []func() *redis.PubSub{
		func() *redis.PubSub { return c.Subscribe(ctx, "a") },
		func() *redis.PubSub { return c.PSubscribe(ctx, "a*") },
		func() *redis.PubSub { return c.SSubscribe(ctx, "s") },
		func() *redis.PubSub { return clone.Subscribe(ctx, "b") },
	}
	for i := range 200 {
		ps := subscribe[i%len(subscribe)]()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ps.Close(); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			runtime.GC()
		}
	}
	collect()
	noDefiniteLeak(t, tr, logs)
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v, want nil: every Pub/Sub was closed", err)
	}
}

// TestConnClosedThroughGoRedisIsNoLeak: a Conn closed through its embedded
// *redis.Conn is closed; and a *redis.Conn the caller keeps after dropping
// the wrapper is neither closed by the library nor reported.
func TestConnClosedThroughGoRedisIsNoLeak(t *testing.T) {
	srv := testserver.Redis(t)
	logs := &logRecorder{}
	tr := tracker.New()
	c := claimClient(t, testOptions(srv.Addr()), logs, pool.WithTracker(tr))
	ctx := context.Background()

	cn := c.Conn()
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cn.Conn.Close(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Open.Conn != 0 {
		t.Errorf("Stats().Open.Conn = %d after the Conn was closed through go-redis, want 0", s.Open.Conn)
	}
	for _, g := range c.Report().Groups {
		if g.Kind == tracker.KindConn {
			t.Errorf("report still lists a Conn closed through go-redis:\n%s", c.Report())
		}
	}
	runtime.KeepAlive(cn)

	var kept *redis.Conn
	func() {
		cn := c.Conn()
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Error(err)
		}
		kept = cn.Conn // the wrapper goes; the go-redis Conn stays in use
	}()
	collect()
	if err := kept.Ping(ctx).Err(); err != nil {
		t.Fatalf("a *redis.Conn the caller kept was closed under it: %v", err)
	}
	if err := kept.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v; both Conns were closed through go-redis", err)
	}
	collect()
	noDefiniteLeak(t, tr, logs)
}

// TestClientClosedThroughGoRedisIsNoLeak: a client closed through its
// embedded *redis.Client is closed; one whose *redis.Client the caller keeps
// is still in use.
func TestClientClosedThroughGoRedisIsNoLeak(t *testing.T) {
	srv := testserver.Redis(t)
	logs := &logRecorder{}
	tr := tracker.New()
	ctx := context.Background()
	func() {
		c := claimClient(t, testOptions(srv.Addr()), logs, pool.WithTracker(tr))
		if err := c.Ping(ctx).Err(); err != nil {
			t.Error(err)
		}
		if err := c.Client.Close(); err != nil {
			t.Error(err)
		}
	}()
	var kept *redis.Client
	func() {
		c := claimClient(t, testOptions(srv.Addr()), logs, pool.WithTracker(tr))
		if err := c.Ping(ctx).Err(); err != nil {
			t.Error(err)
		}
		kept = c.Client
	}()
	collect()
	if err := kept.Ping(ctx).Err(); err != nil {
		t.Fatalf("a *redis.Client the caller kept stopped working: %v", err)
	}
	noDefiniteLeak(t, tr, logs)
	if err := kept.Close(); err != nil {
		t.Fatal(err)
	}
	kept = nil
	collect()
	noDefiniteLeak(t, tr, logs)
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestNetworkFailureIsNoRefusal: with nothing listening, callers get the
// network's error, never ErrMaxConnections.
func TestNetworkFailureIsNoRefusal(t *testing.T) {
	opt := testOptions(deadAddr(t))
	opt.PoolTimeout = 200 * time.Millisecond // shorter than go-redis's dial retries
	opt.MaxRetries = -1                      // the first error is the caller's
	c := claimClient(t, opt, nil, pool.WithMaxConnections(2))
	defer c.Close()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = c.Ping(context.Background()).Err()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("caller %d: Ping succeeded with nothing listening", i)
		}
		if errors.Is(err, pool.ErrMaxConnections) {
			t.Errorf("caller %d: %v; nothing listens, so the cap is not the cause", i, err)
		}
	}
}

// TestSlowDialRefusalSaysDialing: a refusal while every slot is held by a
// dial in progress says so, rather than that sockets are open.
func TestSlowDialRefusalSaysDialing(t *testing.T) {
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	release := make(chan struct{})
	var d net.Dialer
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-release
		return d.DialContext(ctx, network, addr)
	}
	c := claimClient(t, opt, nil, pool.WithMaxConnections(2))
	defer c.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	for range 2 {
		wg.Go(func() { _ = c.Ping(context.Background()).Err() })
	}
	waitFor(t, "two dials in progress", func() bool { return c.Stats().Dialing == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.Ping(ctx).Err()
	var limit *pool.LimitError
	if !errors.As(err, &limit) {
		t.Fatalf("Ping with both slots dialing = %v, want a *LimitError", err)
	}
	if limit.Open != 0 || limit.Dialing != 2 {
		t.Errorf("refusal counts %d open, %d dialing; want 0 and 2: %v", limit.Open, limit.Dialing, err)
	}
	if !strings.Contains(err.Error(), "2 dialing") || strings.Contains(err.Error(), "2 of 2 sockets open") {
		t.Errorf("refusal text does not say the slots are dialing: %v", err)
	}
	if n := srv.ConnectedClients(t); n != 0 {
		t.Errorf("server has %d clients; the dials have not reached it", n)
	}
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRefusalNamesHolders: the refusal lists the Conns and Pub/Subs that
// hold sockets, not the callers waiting for one, and says how many wait.
func TestRefusalNamesHolders(t *testing.T) {
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	opt.PoolTimeout = 300 * time.Millisecond
	c := claimClient(t, opt, nil, pool.WithMaxConnections(4))
	defer c.Close()
	ctx := context.Background()

	var held []*pool.Conn
	var connLine, subLine int
	for range 2 {
		cn, l := c.Conn(), thisLine()
		connLine = l
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		held = append(held, cn)
	}
	var subs []*redis.PubSub
	for range 2 {
		ps, l := c.Subscribe(ctx, "news"), thisLine()
		subLine = l
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, ps)
	}
	// Waiters: Conns that never get a socket, left open while the refusal is
	// made, and commands queued for a turn.
	var waiters []*pool.Conn
	var wg sync.WaitGroup
	for range 6 {
		w := c.Conn()
		waiters = append(waiters, w)
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			for wctx.Err() == nil && w.Ping(wctx).Err() != nil {
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	err := c.Ping(ctx).Err()
	var limit *pool.LimitError
	if !errors.As(err, &limit) || !errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("Ping with every slot held = %v, want a *LimitError", err)
	}
	if limit.Open != 4 || limit.Max != 4 {
		t.Errorf("refusal counts %d of %d open, want 4 of 4", limit.Open, limit.Max)
	}
	if limit.Waiting < 1 {
		t.Errorf("refusal counts %d waiters, want at least the 6 queued Conns", limit.Waiting)
	}
	kinds := map[tracker.Kind]int{}
	for _, g := range limit.Holders.Groups {
		kinds[g.Kind] += g.Count
		switch g.Kind {
		case tracker.KindConn:
			checkHolder(t, g, connLine)
		case tracker.KindPubSub:
			checkHolder(t, g, subLine)
		default:
			t.Errorf("holder group of kind %s: %v", g.Kind, g)
		}
	}
	if kinds[tracker.KindConn] != 2 || kinds[tracker.KindPubSub] != 2 {
		t.Errorf("holders %v, want 2 Conns and 2 Pub/Subs:\n%v", kinds, err)
	}
	text := err.Error()
	for _, want := range []string{"4 of 4", "waiting", "claims_test.go:" + strconv.Itoa(connLine), "claims_test.go:" + strconv.Itoa(subLine), "raise"} {
		if !strings.Contains(text, want) {
			t.Errorf("refusal text lacks %q:\n%s", want, text)
		}
	}
	if s := c.Stats(); s.Open.Conn != 2 || s.Open.PubSub != 2 {
		t.Errorf("Stats().Open = %+v while 6 Conns wait; want 2 Conns and 2 Pub/Subs", s.Open)
	}
	for _, cn := range held {
		_ = cn.Close()
	}
	for _, ps := range subs {
		_ = ps.Close()
	}
	wg.Wait()
	for _, w := range waiters {
		_ = w.Close()
	}
}

func checkHolder(t *testing.T, g tracker.Group, line int) {
	t.Helper()
	if g.Count != 2 || g.Site.Line != line || !strings.HasSuffix(g.Site.File, "claims_test.go") {
		t.Errorf("holder group %s at %s (%d), want 2 at claims_test.go:%d", g.Kind, g.Site, g.Count, line)
	}
}

// fullClient returns a client of a new redis-server with a cap of one socket,
// held by the Conn it returns too.
func fullClient(t *testing.T, poolTimeout time.Duration, logs *logRecorder, opts ...pool.Option) (*pool.Client, *pool.Conn) {
	t.Helper()
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	opt.PoolTimeout = poolTimeout
	c := claimClient(t, opt, logs, append([]pool.Option{pool.WithMaxConnections(1)}, opts...)...)
	cn := c.Conn()
	if err := cn.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return c, cn
}

// TestRefusalWaitsOnce: a command refused by the cap waits about PoolTimeout
// in all, not PoolTimeout for each of go-redis's retries.
func TestRefusalWaitsOnce(t *testing.T) {
	c, cn := fullClient(t, 300*time.Millisecond, nil)
	defer c.Close()
	defer cn.Close()
	ctx := context.Background()
	start := time.Now()
	err := c.Ping(ctx).Err()
	waited := time.Since(start)
	if !errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("Ping = %v, want ErrMaxConnections", err)
	}
	// go-redis retries a pool timeout MaxRetries (3) times: four waits of
	// 300ms would be 1.2s. One wait and the retries' backoff stay under 2×.
	if waited > 2*300*time.Millisecond {
		t.Errorf("refused after %s; PoolTimeout is 300ms", waited)
	}
}

// TestDropInSubscribers: without a cap, as many subscribers succeed as with
// bare go-redis, and commands keep working.
func TestDropInSubscribers(t *testing.T) {
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	opt.PoolSize = 4
	bare := redis.NewClient(opt)
	defer bare.Close()
	c := claimClient(t, opt, nil)
	defer c.Close()
	for name, rc := range map[string]redis.UniversalClient{"bare": bare, "pool.NewClient": c} {
		ok := subscribeMany(t, rc, 25)
		if ok != 25 {
			t.Errorf("%s: %d of 25 subscribers got through", name, ok)
		}
	}
}

// subscribeMany subscribes n times and keeps every Pub/Sub open, then runs a
// command, and returns how many subscribers got through.
func subscribeMany(t *testing.T, rc redis.UniversalClient, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok := 0
	var subs []*redis.PubSub
	for i := range n {
		ps := rc.Subscribe(ctx, "ch"+strconv.Itoa(i))
		subs = append(subs, ps)
		if _, err := ps.Receive(ctx); err == nil {
			ok++
		}
	}
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Errorf("Ping with %d subscribers open: %v", n, err)
	}
	for _, ps := range subs {
		_ = ps.Close()
	}
	return ok
}

// TestCapBoundsPubSubsNotPoolSize: under a cap, PoolSize bounds the pool and
// Pub/Subs use the rest of the cap.
func TestCapBoundsPubSubsNotPoolSize(t *testing.T) {
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	opt.PoolSize = 2
	c := claimClient(t, opt, nil, pool.WithMaxConnections(10))
	defer c.Close()
	if ok := subscribeMany(t, c, 8); ok != 8 {
		t.Errorf("%d of 8 subscribers got through with PoolSize 2 and a cap of 10", ok)
	}
}

// TestPubSubCloseWakesReceiverAsGoRedis: a goroutine blocked in
// ReceiveMessage sees the error go-redis gives when its Pub/Sub is closed.
func TestPubSubCloseWakesReceiverAsGoRedis(t *testing.T) {
	srv := testserver.Redis(t)
	c := claimClient(t, testOptions(srv.Addr()), nil)
	defer c.Close()
	ctx := context.Background()
	for i := range 20 {
		ps := c.Subscribe(ctx, "mychannel")
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := ps.ReceiveMessage(ctx)
			errc <- err
		}()
		time.Sleep(5 * time.Millisecond)
		if err := ps.Close(); err != nil {
			t.Fatal(err)
		}
		err := <-errc
		if err == nil || (err.Error() != "redis: client is closed" && !errors.Is(err, net.ErrClosed)) {
			t.Fatalf("run %d: ReceiveMessage after Close = %v, want net.ErrClosed or redis: client is closed", i, err)
		}
	}
}

// TestNoCapKeepsGoRedisSettings: without a cap the pipeline pool and the
// pool's sizes are go-redis's.
func TestNoCapKeepsGoRedisSettings(t *testing.T) {
	opt := testOptions("127.0.0.1:1")
	opt.PoolSize = 3
	c := claimClient(t, opt, nil)
	defer c.Close()
	got := c.Options()
	if got.PipelinePoolSize != 0 || got.PoolSize != 3 {
		t.Errorf("go-redis runs with PipelinePoolSize %d, PoolSize %d; want the caller's 0 and 3", got.PipelinePoolSize, got.PoolSize)
	}
	if s := c.Stats(); s.MaxConnections != 0 {
		t.Errorf("Stats().MaxConnections = %d without a cap, want 0 (none)", s.MaxConnections)
	}
}

// TestMaxActiveConnsIsTheCap: a MaxActiveConns the caller set holds over
// every socket, and its refusals match ErrMaxConnections.
func TestMaxActiveConnsIsTheCap(t *testing.T) {
	srv := testserver.Redis(t)
	opt := testOptions(srv.Addr())
	opt.MaxActiveConns = 3
	opt.PoolTimeout = 200 * time.Millisecond
	logs := &logRecorder{}
	c := claimClient(t, opt, logs)
	defer c.Close()
	if s := c.Stats(); s.MaxConnections != 3 {
		t.Fatalf("Stats().MaxConnections = %d, want MaxActiveConns 3", s.MaxConnections)
	}
	ctx := context.Background()
	ps := c.Subscribe(ctx, "x")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	var held []*pool.Conn
	for range 2 {
		cn := c.Conn()
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		held = append(held, cn)
	}
	err := c.Ping(ctx).Err()
	if !errors.Is(err, pool.ErrMaxConnections) {
		t.Errorf("Ping beyond MaxActiveConns = %v, want ErrMaxConnections", err)
	}
	if n := srv.ConnectedClients(t); n > 3 {
		t.Errorf("server counts %d clients, MaxActiveConns is 3", n)
	}
	for _, cn := range held {
		_ = cn.Close()
	}
	found := false
	for _, r := range logs.find("redisleak: MaxActiveConns is the cap on every socket") {
		found = r["level"] == "INFO"
	}
	if !found {
		t.Errorf("no INFO line saying MaxActiveConns is the cap")
	}
}

// TestRefusedSubscribeCountsOnce: one refused Subscribe is one refusal.
func TestRefusedSubscribeCountsOnce(t *testing.T) {
	c, cn := fullClient(t, 100*time.Millisecond, nil)
	defer c.Close()
	defer cn.Close()
	ctx := context.Background()
	ps := c.Subscribe(ctx, "x")
	defer ps.Close()
	if _, err := ps.Receive(ctx); !errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("Receive = %v, want ErrMaxConnections", err)
	}
	if n := c.Stats().Timeouts; n != 1 {
		t.Errorf("Stats().Timeouts = %d after one refused Subscribe, want 1", n)
	}
}

// panicHook panics inside every command.
type panicHook struct{}

func (panicHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (panicHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(context.Context, redis.Cmder) error { panic("boom") }
}
func (panicHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestPanicBelowHookReleases: a panic under the tracking hook does not leave
// the command's checkout outstanding for ever.
func TestPanicBelowHookReleases(t *testing.T) {
	c := claimClient(t, testOptions("127.0.0.1:1"), nil)
	defer c.Close()
	c.AddHook(panicHook{})
	func() {
		defer func() { _ = recover() }()
		_ = c.Ping(context.Background())
	}()
	if n := c.Stats().Outstanding; n != 0 {
		t.Errorf("%d checkouts outstanding after a panic under the hook, want 0", n)
	}
}

// TestSubscribeBehindLatency: behind 400ms of latency, a Pub/Sub of an idle
// client under a cap that has room is never refused by the cap: it gets
// through, or meets its own deadline.
func TestSubscribeBehindLatency(t *testing.T) {
	srv := testserver.Redis(t)
	proxy := testserver.Toxiproxy(t, srv.Addr())
	opt := testOptions(proxy.Addr)
	opt.ReadTimeout = 5 * time.Second
	c := claimClient(t, opt, nil, pool.WithMaxConnections(4))
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	defer proxy.Latency(t, 400*time.Millisecond)()
	for _, d := range []time.Duration{time.Second, 10 * time.Second} {
		sctx, cancel := context.WithTimeout(ctx, d)
		ps := c.Subscribe(sctx, "ch")
		_, err := ps.Receive(sctx)
		cancel()
		_ = ps.Close()
		if errors.Is(err, pool.ErrMaxConnections) {
			t.Errorf("Subscribe behind 400ms of latency, %s deadline, cap far from full: %v", d, err)
		}
		if d > time.Second && err != nil {
			t.Errorf("Subscribe behind 400ms of latency, %s deadline: %v", d, err)
		}
	}
	if s := c.Stats(); s.SlotsHeld() > 4 {
		t.Errorf("stats %+v: more slots held than the cap", s)
	}
}

// TestPubSubThroughEmbeddedClient: a Pub/Sub opened through the embedded
// *redis.Client is not tracked as the client's own are, but it is counted
// under the cap and reported, with its call site, until its socket closes.
func TestPubSubThroughEmbeddedClient(t *testing.T) {
	srv := testserver.Redis(t)
	logs := &logRecorder{}
	c := claimClient(t, testOptions(srv.Addr()), logs)
	defer c.Close()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil { // a pooled socket: not reported
		t.Fatal(err)
	}
	ps, line := c.Client.Subscribe(ctx, "ch"), thisLine()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	if len(r.Groups) != 1 || r.Groups[0].Kind != tracker.KindSocket || r.Groups[0].Site.Line != line {
		t.Fatalf("report %s; want one socket at claims_test.go:%d", r, line)
	}
	// Named as the server names it, so that CLIENT LIST leads to it.
	var subscribed string
	for _, cl := range srv.Clients(t) {
		if cl.Sub > 0 {
			subscribed = cl.Name
		}
	}
	if names := r.Groups[0].ConnNames; len(names) != 1 || names[0] != subscribed || subscribed == "" {
		t.Errorf("the socket's checkout names %v, the server's subscriber is %q", names, subscribed)
	}
	if s := c.Stats(); s.Open.PubSub != 1 || s.Open.Pool != 1 {
		t.Errorf("Stats().Open = %+v, want 1 Pub/Sub and 1 pooled socket", s.Open)
	}
	if len(logs.find("redisleak: a Pub/Sub was opened through the embedded go-redis client: it is counted under the cap and reported as a socket until its socket closes, but its Subscribe and Close are not tracked; use the library client's own Subscribe")) != 1 {
		t.Error("no WARN about the Pub/Sub opened through the embedded client")
	}
	_ = ps.Close()
	if n := c.Report().Len(); n != 0 {
		t.Errorf("%d checkouts after the Pub/Sub closed, want 0", n)
	}
}

// TestDroppedConnWhileReported: a Conn dropped while Stats and Report run
// is a definite leak, never taken for one its holder closed. (The client's
// collection of the Conn closes go-redis's pool behind it; a report running
// at that moment saw that pool closed and ended the checkout as closed.)
func TestDroppedConnWhileReported(t *testing.T) {
	srv := testserver.Any(t)
	logs := &logRecorder{}
	tr := tracker.New()
	c := claimClient(t, testOptions(srv.Addr()), logs, pool.WithTracker(tr))
	defer c.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !isClosed(stop) {
			_ = c.Stats()
			_ = c.Report()
		}
	}()
	const n = 20
	for range n {
		func() {
			if err := c.Conn().Ping(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}()
	}
	// Each Conn ends as a definite leak (dropped) or, wrongly, as closed
	// (its checkout released): wait until every one has ended either way.
	conns := func() (outstanding, dropped int) {
		for _, g := range c.Report().Groups {
			if g.Kind == tracker.KindConn {
				outstanding += g.Count
				dropped += g.Dropped
			}
		}
		return outstanding, dropped
	}
	// A Conn's wrapper can be collected while its first command still
	// initialises the socket, which makes go-redis reference the Conn from
	// the socket: that reference must be dropped too, or the Conn is never
	// collected.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		runtime.GC()
		if outstanding, dropped := conns(); dropped == outstanding {
			break
		}
	}
	close(stop)
	<-done
	outstanding, dropped := conns()
	if outstanding != n {
		t.Errorf("%d of %d dropped Conns taken for closed (their checkouts ended):\n%s", n-outstanding, n, c.Report())
	}
	if dropped != n {
		t.Errorf("%d of %d dropped Conns not found dropped after 5s of collections", n-dropped, n)
	}
}
