package pool_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// options returns the go-redis options of the tests for srv (see
// testOptions).
func options(srv *testserver.Server) *redis.Options { return testOptions(srv.Addr()) }

// newClient returns a client of srv with its own tracker, so that a test sees
// only its own checkouts.
func newClient(t *testing.T, srv *testserver.Server, opts ...pool.Option) *pool.Client {
	t.Helper()
	opts = append([]pool.Option{pool.WithTracker(tracker.New())}, opts...)
	c, err := pool.NewClient(options(srv), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// leakConns opens n dedicated connections, uses them, and forgets to close
// them. It returns them so the test keeps them reachable, and the line that
// opened them.
func leakConns(ctx context.Context, t *testing.T, c *pool.Client, n int) ([]*pool.Conn, int) {
	var conns []*pool.Conn
	var at int
	for range n {
		cn, l := c.Conn(), thisLine()
		at = l
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
	}
	return conns, at
}

// leakPubSub subscribes and forgets to close the subscription.
func leakPubSub(ctx context.Context, t *testing.T, c *pool.Client) (*redis.PubSub, int) {
	ps, l := c.Subscribe(ctx, "news"), thisLine()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	return ps, l
}

// closeEverything runs the well-behaved code: commands, a pipeline, a
// transaction with WATCH, a blocking command that returns, a Conn and a
// PubSub that are closed.
func closeEverything(ctx context.Context, t *testing.T, c *pool.Client) {
	t.Helper()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "n")
		p.Get(ctx, "k")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, "n").Int()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "n", n+1, 0)
			return nil
		})
		return err
	}, "n"); err != nil {
		t.Fatal(err)
	}
	if err := c.RPush(ctx, "queue", "job").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.BLPop(ctx, time.Second, "queue").Err(); err != nil {
		t.Fatal(err)
	}
	cn := c.Conn()
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	ps := c.Subscribe(ctx, "closed")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ps.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseReportsLeaks(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	c := newClient(t, srv)

	closeEverything(ctx, t, c)
	conns, connLine := leakConns(ctx, t, c, 3)
	ps, psLine := leakPubSub(ctx, t, c)

	err := c.Close()
	if !errors.Is(err, pool.ErrLeaked) {
		t.Fatalf("Close() = %v, want ErrLeaked", err)
	}
	var leak *pool.LeakError
	if !errors.As(err, &leak) {
		t.Fatalf("Close() = %T, want *pool.LeakError", err)
	}
	groups := leak.Report.Groups
	if len(groups) != 2 {
		t.Fatalf("report has %d groups, want 2:\n%s", len(groups), leak.Report)
	}
	checkGroup(t, groups[0], tracker.KindConn, 3, "pool_test.leakConns", connLine)
	checkGroup(t, groups[1], tracker.KindPubSub, 1, "pool_test.leakPubSub", psLine)
	if !strings.Contains(err.Error(), "acceptance_test.go:") {
		t.Errorf("error text does not name the leaking file:line:\n%v", err)
	}
	runtime.KeepAlive(conns)
	runtime.KeepAlive(ps)
}

func checkGroup(t *testing.T, g tracker.Group, kind tracker.Kind, count int, function string, line int) {
	t.Helper()
	if g.Kind != kind || g.Count != count {
		t.Errorf("group = %d × %s, want %d × %s", g.Count, g.Kind, count, kind)
	}
	if !strings.HasSuffix(g.Site.Function, function) || !strings.HasSuffix(g.Site.File, "/acceptance_test.go") || g.Site.Line != line {
		t.Errorf("group %s site = %s:%d (%s), want acceptance_test.go:%d (%s)", kind, g.Site.File, g.Site.Line, g.Site.Function, line, function)
	}
	if len(g.Stack) == 0 || g.Stack[0] != g.Site {
		t.Errorf("group %s stack does not start at its site: %v", kind, g.Stack)
	}
}

func TestCloseCleanProgram(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	c := newClient(t, srv)

	closeEverything(ctx, t, c)
	conns, _ := leakConns(ctx, t, c, 3)
	for _, cn := range conns {
		if err := cn.Close(); err != nil {
			t.Fatal(err)
		}
	}
	ps, _ := leakPubSub(ctx, t, c)
	if err := ps.Close(); err != nil {
		t.Fatal(err)
	}
	if r := c.Report(); r.Len() != 0 {
		t.Fatalf("report before Close:\n%s", r)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if r := c.Report(); r.Len() != 0 {
		t.Fatalf("report after Close:\n%s", r)
	}
	if st := c.Tracker().Stats(); st.Outstanding != 0 || st.InvalidReleases != 0 || st.Checkouts != st.Releases {
		t.Fatalf("tracker stats = %+v", st)
	}
}

// clientPerCall is the new-client-per-request leak: it returns the line that
// created the client it drops.
func clientPerCall(ctx context.Context, t *testing.T, addr string, tr *tracker.Tracker) int {
	c, err := pool.NewClient(&redis.Options{Addr: addr}, pool.WithTracker(tr))
	at := thisLine() - 1
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	return at
}

func TestDroppedClientReported(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	tr := tracker.New()
	var at int
	for range 4 {
		at = clientPerCall(ctx, t, srv.Addr(), tr)
	}
	var g tracker.Group
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		r := tr.Report().Filter(func(g tracker.Group) bool { return g.Kind == tracker.KindClient })
		if len(r.Groups) == 1 && r.Groups[0].Count == 4 {
			g = r.Groups[0]
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if g.Count != 4 || g.Dropped != 4 {
		t.Fatalf("dropped clients group = %+v, want 4 dropped; report:\n%s", g, tr.Report())
	}
	if !strings.HasSuffix(g.Site.Function, "pool_test.clientPerCall") || g.Site.Line != at {
		t.Fatalf("dropped client site = %s:%d (%s), want line %d", g.Site.File, g.Site.Line, g.Site.Function, at)
	}

	// A client that was closed is never reported once dropped.
	closedTr := tracker.New()
	func() {
		c, err := pool.NewClient(&redis.Options{Addr: srv.Addr()}, pool.WithTracker(closedTr))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if r := closedTr.Report(); r.Len() != 0 {
		t.Fatalf("a closed client was reported:\n%s", r)
	}
}

func TestBadInput(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()

	for name, tc := range map[string]struct {
		opt  *redis.Options
		opts []pool.Option
		want string
	}{
		"nil options":          {nil, nil, "nil *redis.Options"},
		"negative cap":         {&redis.Options{}, []pool.Option{pool.WithMaxConnections(-3)}, "WithMaxConnections(-3)"},
		"nil tracker":          {&redis.Options{}, []pool.Option{pool.WithTracker(nil)}, "WithTracker(nil)"},
		"nil logger":           {&redis.Options{}, []pool.Option{pool.WithLogger(nil)}, "WithLogger(nil)"},
		"nil option":           {&redis.Options{}, []pool.Option{nil}, "nil Option"},
		"negative pool size":   {&redis.Options{PoolSize: -1}, nil, "PoolSize is -1"},
		"negative active":      {&redis.Options{MaxActiveConns: -2}, nil, "MaxActiveConns is -2"},
		"negative pool timout": {&redis.Options{PoolTimeout: -time.Second}, nil, "PoolTimeout is -1s"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := pool.NewClient(tc.opt, tc.opts...)
			if err == nil || c != nil {
				t.Fatalf("NewClient = %v, %v; want an error", c, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}

	c := newClient(t, srv)
	cn := c.Conn()
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cn.Close(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("second Conn.Close() = %v, want redis.ErrClosed", err)
	}
	if err := cn.Ping(ctx).Err(); err == nil {
		t.Fatal("Ping on a closed Conn succeeded")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("second Close() = %v, want redis.ErrClosed", err)
	}
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("Get after Close = %v, want redis.ErrClosed", err)
	}
	if err := c.Conn().Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("Conn().Ping after Close = %v, want redis.ErrClosed", err)
	}
	st := c.Tracker().Stats()
	if st.InvalidReleases != 0 {
		t.Fatalf("double Close counted as invalid releases: %+v", st)
	}
}

func TestWithTimeoutKeepsTracking(t *testing.T) {
	srv := testserver.Redis(t)
	c := newClient(t, srv)
	ctx := context.Background()
	clone := c.WithTimeout(5 * time.Second)

	done := make(chan error, 1)
	go func() { done <- clone.BLPop(ctx, 0, "empty-queue").Err() }()
	var g tracker.Group
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r := c.Report().Filter(func(g tracker.Group) bool { return g.Kind == tracker.KindBlocking })
		if len(r.Groups) == 1 {
			g = r.Groups[0]
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if g.Count != 1 || g.Op != "blpop (no timeout)" || !strings.HasSuffix(g.Site.Function, "TestWithTimeoutKeepsTracking.func1") {
		t.Fatalf("blocking command on a WithTimeout clone not tracked with its origin: %+v\n%s", g, c.Report())
	}
	if err := c.LPush(ctx, "empty-queue", "job").Err(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := c.Report(); r.Len() != 0 {
		t.Fatalf("after the blocking command returned:\n%s", r)
	}
	// Closing the clone closes the client, once.
	if err := clone.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("Close after the clone's Close = %v, want redis.ErrClosed", err)
	}
}

func TestBlockingCommandLeakReportedAtClose(t *testing.T) {
	srv := testserver.Redis(t)
	c := newClient(t, srv)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- c.XRead(ctx, &redis.XReadArgs{Streams: []string{"s", "$"}, Block: 0}).Err() }()
	deadline := time.Now().Add(5 * time.Second)
	for c.Report().Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// A blocking command with a timeout is only in flight, not leaked.
	bounded := make(chan error, 1)
	go func() { bounded <- c.BLPop(ctx, time.Minute, "queue").Err() }()
	for c.Report().Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	err := c.Close()
	var leak *pool.LeakError
	if !errors.As(err, &leak) || len(leak.Report.Groups) != 1 || leak.Report.Groups[0].Kind != tracker.KindBlocking || leak.Report.Groups[0].Op != "xread (no timeout)" {
		t.Fatalf("Close with XREAD BLOCK 0 and BLPOP 60 in flight = %v", err)
	}
	if err := <-done; err == nil {
		t.Fatal("XREAD survived Close")
	}
	<-bounded
}

func TestDroppedConnAndPubSubReported(t *testing.T) {
	srv := testserver.Redis(t)
	c := newClient(t, srv)
	defer c.Close()
	ctx := context.Background()
	var connLine, psLine int
	func() {
		cn, l := c.Conn(), thisLine()
		connLine = l
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		ps, l := c.Subscribe(ctx, "ch"), thisLine()
		psLine = l
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	var r tracker.Report
	for time.Now().Before(deadline) {
		runtime.GC()
		r = c.Report()
		dropped := 0
		for _, g := range r.Groups {
			dropped += g.Dropped
		}
		if dropped == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(r.Groups) != 2 {
		t.Fatalf("report after dropping a Conn and a PubSub:\n%s", r)
	}
	for _, g := range r.Groups {
		want := map[tracker.Kind]int{tracker.KindConn: connLine, tracker.KindPubSub: psLine}[g.Kind]
		if g.Dropped != 1 || g.Site.Line != want {
			t.Errorf("group %s: dropped %d at line %d, want 1 at line %d", g.Kind, g.Dropped, g.Site.Line, want)
		}
	}
	// The dropped Conn's socket went back to the pool; nobody could use it.
	if st := c.Stats(); st.Open.Conn != 0 {
		t.Fatalf("a dropped Conn still holds its socket: %+v", st)
	}
}

func TestLabelsInReports(t *testing.T) {
	srv := testserver.Redis(t)
	c := newClient(t, srv)
	defer c.Close()
	ctx := tracker.WithLabel(context.Background(), "req-42")
	ps := c.Subscribe(ctx, "ch")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	if len(r.Groups) != 1 || len(r.Groups[0].Labels) != 1 || r.Groups[0].Labels[0] != "req-42" || !strings.Contains(r.String(), "labels req-42") {
		t.Fatalf("label not in the report:\n%s", r)
	}
}
