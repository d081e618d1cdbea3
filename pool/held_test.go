package pool_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// logRecorder keeps every log record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// find returns the records with message msg, each as its attributes.
func (l *logRecorder) find(msg string) []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]string
	for _, r := range l.records {
		if r.Message != msg {
			continue
		}
		attrs := map[string]string{"level": r.Level.String()}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		out = append(out, attrs)
	}
	return out
}

func TestHeldTooLong(t *testing.T) {
	srv := testserver.Any(t)
	logs := &logRecorder{}
	c, err := pool.NewClient(&redis.Options{Addr: srv.Addr()},
		pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(logs)),
		pool.WithHeldTooLong(tracker.KindBlocking, 50*time.Millisecond),
		pool.WithHeldTooLong(tracker.KindCommand, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	// A blocking command held for a second: one WARN while it waits, one INFO
	// once it returns.
	if err := c.BLPop(ctx, time.Second, "empty").Err(); err != redis.Nil {
		t.Fatalf("BLPOP = %v, want redis.Nil", err)
	}
	warns := logs.find("redisleak: connection held too long")
	if len(warns) != 1 {
		t.Fatalf("%d WARNs, want 1: %v", len(warns), warns)
	}
	w := warns[0]
	if w["level"] != "WARN" || w["kind"] != "blocking" || w["op"] != "blpop" || !strings.Contains(w["origin"], "TestHeldTooLong") {
		t.Errorf("WARN = %v", w)
	}
	if !strings.Contains(w["holders"], "goroutine ") || !strings.Contains(w["holders"], "TestHeldTooLong") {
		t.Errorf("WARN lacks the holder's current stack: %q", w["holders"])
	}
	backs := logs.find("redisleak: connection held too long was released")
	if len(backs) != 1 || backs[0]["level"] != "INFO" || backs[0]["kind"] != "blocking" {
		t.Fatalf("INFO on return = %v, want one", backs)
	}

	// A dedicated connection is off by default, however long it is held.
	cn := c.Conn()
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	_ = cn.Close()
	if n := len(logs.find("redisleak: connection held too long")); n != 1 {
		t.Fatalf("%d WARNs after holding a Conn, want still 1", n)
	}
}

func TestHeldTooLongBadKind(t *testing.T) {
	_, err := pool.NewClient(&redis.Options{}, pool.WithHeldTooLong(tracker.Kind(0), time.Second))
	if err == nil || !strings.Contains(err.Error(), "WithHeldTooLong(kind(0)") {
		t.Fatalf("NewClient with a bad kind = %v", err)
	}
}

// A slow command records no stack; its WARN shows the stacks of the
// goroutines inside the tracking hook instead.
func TestHeldTooLongCommandHolders(t *testing.T) {
	srv := testserver.Redis(t, "--enable-debug-command", "local")
	logs := &logRecorder{}
	c, err := pool.NewClient(&redis.Options{Addr: srv.Addr()},
		pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(logs)),
		pool.WithHeldTooLong(tracker.KindCommand, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Do(context.Background(), "debug", "sleep", "0.3").Err(); err != nil {
		t.Fatal(err)
	}
	warns := logs.find("redisleak: connection held too long")
	// In debug mode (CaptureAll) commands record their origin too.
	wantOrigin := "not captured"
	if tracker.Debug() {
		wantOrigin = "pool_test.TestHeldTooLongCommandHolders"
	}
	if len(warns) != 1 || warns[0]["op"] != "debug" || !strings.Contains(warns[0]["origin"], wantOrigin) ||
		!strings.Contains(warns[0]["holders"], "TestHeldTooLongCommandHolders") {
		t.Fatalf("WARN for a slow command = %v", warns)
	}
}

// leakInGoroutine is a request handler that takes a Conn and returns on an
// error path without closing it: once the goroutine is gone, nothing
// references the Conn. It returns the line of the Conn call.
func leakInGoroutine(ctx context.Context, t *testing.T, c *pool.Client) int {
	lines := make(chan int)
	go func() {
		cn, line := c.Conn(), thisLine()
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Error(err)
		}
		lines <- line
	}()
	return <-lines
}

// TestHolderGone: a Conn left behind by a goroutine that returned is logged
// as a definite leak within a few periods of WithHolderGoneCheck, with no
// held-too-long threshold and without the test running the collector; a
// Conn handed to another goroutine that keeps using it never is.
func TestHolderGone(t *testing.T) {
	srv := testserver.Any(t)
	ctx := context.Background()
	logs := &logRecorder{}
	const period = 100 * time.Millisecond
	c, err := pool.NewClient(&redis.Options{Addr: srv.Addr()},
		pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(logs)),
		pool.WithHolderGoneCheck(period))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Handed over: made in one goroutine, used by another until the end.
	handed := make(chan *pool.Conn)
	stop := make(chan struct{})
	worker := make(chan struct{})
	go func() { handed <- c.Conn() }()
	go func() {
		defer close(worker)
		cn := <-handed
		defer cn.Close()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				if err := cn.Ping(ctx).Err(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-worker }()

	line := leakInGoroutine(ctx, t, c)
	const msg = "redisleak: definite leak: garbage-collected without Close"
	deadline := time.Now().Add(50 * period) // a bound for a loaded machine; found within a few periods
	for len(logs.find(msg)) == 0 && time.Now().Before(deadline) {
		time.Sleep(period / 4)
	}
	found := logs.find(msg)
	if len(found) != 1 {
		t.Fatalf("%d WARN lines %q within %s, want 1", len(found), msg, 50*period)
	}
	w := found[0]
	if w["level"] != "WARN" || w["kind"] != "conn" || !strings.Contains(w["origin"], "held_test.go:"+strconv.Itoa(line)) || w["conn"] == "" {
		t.Errorf("WARN %v; want kind conn, the origin held_test.go:%d and the socket", w, line)
	}
	// Some more periods: the Conn still in use is never reported, and the
	// dropped one only once.
	time.Sleep(5 * period)
	if n := len(logs.find(msg)); n != 1 {
		t.Errorf("%d leak WARN lines after more periods, want still 1", n)
	}
	r := c.Report()
	dropped, open := 0, 0
	for _, g := range r.Groups {
		if g.Kind == tracker.KindConn {
			dropped += g.Dropped
			open += g.Count
		}
	}
	if dropped != 1 || open != 2 {
		t.Errorf("report has %d conns, %d dropped; want 2 and 1:\n%s", open, dropped, r)
	}
}

func TestHolderGoneCheckBadInput(t *testing.T) {
	_, err := pool.NewClient(&redis.Options{}, pool.WithHolderGoneCheck(-time.Second))
	if err == nil || !strings.Contains(err.Error(), "WithHolderGoneCheck(-1s)") {
		t.Fatalf("NewClient with a negative period = %v, want an error naming it", err)
	}
}

// thisLine returns the line it is called from.
func thisLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

// TestHeldTooLongSkipsWaiters: a command waiting for a socket under a full
// cap is a waiter, not a holder, and is not reported held too long.
func TestHeldTooLongSkipsWaiters(t *testing.T) {
	logs := &logRecorder{}
	c, held := fullClient(t, 800*time.Millisecond, logs,
		pool.WithHeldTooLong(tracker.KindCommand, 100*time.Millisecond),
		pool.WithHeldTooLong(tracker.KindConn, 100*time.Millisecond))
	defer c.Close()
	ctx := context.Background()
	waiter := c.Conn() // never gets a socket while held is open
	defer waiter.Close()
	if err := c.Ping(ctx).Err(); !errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("Ping under a full cap = %v, want ErrMaxConnections", err)
	}
	for _, w := range logs.find("redisleak: connection held too long") {
		if w["kind"] != "conn" || !strings.Contains(w["origin"], "fullClient") {
			t.Errorf("a waiter was reported held too long: %v", w)
		}
	}
	if n := len(logs.find("redisleak: connection held too long")); n != 1 {
		t.Errorf("%d held-too-long WARNs, want 1: the Conn holding the only socket", n)
	}
	if len(logs.find("redisleak: callers waiting for a connection; commands past their held-too-long threshold are reported once none wait")) != 1 {
		t.Errorf("no INFO line about the callers waiting")
	}
	_ = held.Close()
}

// TestCloseLogsOneLine: Close logs one summary line; the report is in the
// error it returns.
func TestCloseLogsOneLine(t *testing.T) {
	srv := testserver.Any(t)
	logs := &logRecorder{}
	c := claimClient(t, testOptions(srv.Addr()), logs)
	cn, line := c.Conn(), thisLine()
	if err := cn.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	err := c.Close()
	if !errors.Is(err, pool.ErrLeaked) || !strings.Contains(err.Error(), "held_test.go:"+strconv.Itoa(line)) {
		t.Fatalf("Close = %v, want ErrLeaked with the report", err)
	}
	found := logs.find("redisleak: client closed with outstanding checkouts; the error Close returns has the report")
	if len(found) != 1 {
		t.Fatalf("%d summary lines at Close, want 1", len(found))
	}
	w := found[0]
	if w["outstanding"] != "1" || !strings.Contains(w["top"], "1 × conn at pool/held_test.go:"+strconv.Itoa(line)) || w["report"] != "" {
		t.Errorf("summary %v; want the count and the top call site, not the report", w)
	}
	_ = cn.Close()
}

// TestConnContextAndName: a Conn made with a labelled context carries the
// label, and a client named in its options goes by that name in reports.
func TestConnContextAndName(t *testing.T) {
	srv := testserver.Any(t)
	opt := testOptions(srv.Addr())
	opt.ClientName = "orders"
	c := claimClient(t, opt, nil)
	defer c.Close()
	if want := "orders/" + srv.Addr(); c.Name() != want {
		t.Errorf("Name() = %q, want %q", c.Name(), want)
	}
	cn := c.ConnContext(tracker.WithLabel(context.Background(), "req-42"))
	defer cn.Close()
	r := c.Report()
	if len(r.Groups) != 1 || !slices.Contains(r.Groups[0].Labels, "req-42") || !slices.Contains(r.Groups[0].Scopes, c.Name()) {
		t.Errorf("report %+v; want one Conn labelled req-42 of client %s", r.Groups, c.Name())
	}
}

// TestProfileLeafIsCaller: each kind of long-lived checkout has a pprof
// profile of its own, and in it the checkout's stack starts at the caller's
// own frame, not in the library: a Conn's (under CaptureAll), a Pub/Sub's
// (which takes its checkout when it dials, deep in go-redis) and a blocking
// command's (taken in the client's hook).
func TestProfileLeafIsCaller(t *testing.T) {
	srv := testserver.Any(t)
	c := claimClient(t, testOptions(srv.Addr()), nil, pool.WithTracker(tracker.New(tracker.WithCapture(tracker.CaptureAll))))
	defer c.Close()
	ctx := context.Background()
	cn := c.Conn()
	defer cn.Close()
	ps := c.Subscribe(ctx, "profile")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.BLPop(ctx, 0, "profile:list").Err()
	}()
	waitFor(t, "the BLPOP in the report", func() bool {
		return c.Report().Filter(func(g tracker.Group) bool { return g.Kind == tracker.KindBlocking }).Len() == 1
	})
	for kind, leafFunc := range map[tracker.Kind]string{
		tracker.KindConn:     "pool_test.TestProfileLeafIsCaller",
		tracker.KindPubSub:   "pool_test.TestProfileLeafIsCaller",
		tracker.KindBlocking: "pool_test.TestProfileLeafIsCaller.func",
	} {
		p := pprof.Lookup(tracker.ProfileNameOf(kind))
		if p == nil {
			t.Errorf("no pprof profile %q", tracker.ProfileNameOf(kind))
			continue
		}
		var b strings.Builder
		if err := p.WriteTo(&b, 1); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, entry := range strings.Split(b.String(), "\n\n") {
			if !strings.Contains(entry, "TestProfileLeafIsCaller") {
				continue
			}
			found = true
			// The entry's frames are its lines that start with "#", leaf first.
			_, frames, _ := strings.Cut(entry, "\n#")
			leaf, _, _ := strings.Cut(frames, "\n")
			if !strings.Contains(leaf, leafFunc) {
				t.Errorf("%s: the profile's stack starts at %q, want %s", kind, leaf, leafFunc)
			}
		}
		if !found {
			t.Errorf("%s: no entry of this test in profile %s:\n%s", kind, tracker.ProfileNameOf(kind), b.String())
		}
	}
	if err := c.LPush(ctx, "profile:list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	<-done
}

// TestConnProfiledOnlyUnderCaptureAll: outside CaptureAll a Conn stays out
// of its pprof profile, whose entry would cost more than the rest of the Conn
// (see tracker.ProfileName), while a Pub/Sub of the same client goes into its
// own; the client's report lists both, with their stacks.
func TestConnProfiledOnlyUnderCaptureAll(t *testing.T) {
	srv := testserver.Any(t)
	c := claimClient(t, testOptions(srv.Addr()), nil, pool.WithTracker(tracker.New(tracker.WithCapture(tracker.CaptureLongLived))))
	defer c.Close()
	ctx := context.Background()
	cn := connOutsideProfile(c)
	defer cn.Close()
	ps := pubSubInProfile(ctx, c)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[tracker.Kind]bool{tracker.KindConn: false, tracker.KindPubSub: true} {
		var b strings.Builder
		if err := pprof.Lookup(tracker.ProfileNameOf(kind)).WriteTo(&b, 1); err != nil {
			t.Fatal(err)
		}
		fn := map[tracker.Kind]string{tracker.KindConn: "connOutsideProfile", tracker.KindPubSub: "pubSubInProfile"}[kind]
		if got := strings.Contains(b.String(), fn); got != want {
			t.Errorf("profile %s lists %s: %v, want %v:\n%s", tracker.ProfileNameOf(kind), fn, got, want, b.String())
		}
	}
	r := c.Report()
	for _, fn := range []string{"connOutsideProfile", "pubSubInProfile"} {
		if !strings.Contains(r.String(), fn) {
			t.Errorf("the report does not name %s:\n%s", fn, r)
		}
	}
}

//go:noinline
func connOutsideProfile(c *pool.Client) *pool.Conn { return c.Conn() }

//go:noinline
func pubSubInProfile(ctx context.Context, c *pool.Client) *redis.PubSub {
	return c.Subscribe(ctx, "outside-profile")
}

// TestGoStatementIsTheSite: a blocking command run by a goroutine started
// directly on the client's method (go c.BLPop(...)) has no frame of the
// caller's own but the wrapper of the go statement: the report names the go
// statement's line.
func TestGoStatementIsTheSite(t *testing.T) {
	srv := testserver.Any(t)
	c := claimClient(t, testOptions(srv.Addr()), nil)
	defer c.Close()
	ctx := context.Background()
	go c.BLPop(ctx, 0, "gostatement:list")
	line := thisLine() - 1
	var blocking tracker.Report
	waitFor(t, "the BLPOP in the report", func() bool {
		blocking = c.Report().Filter(func(g tracker.Group) bool { return g.Kind == tracker.KindBlocking })
		return blocking.Len() == 1
	})
	if site := blocking.Groups[0].Site; !strings.HasSuffix(site.File, "held_test.go") || site.Line != line {
		t.Errorf("the BLPOP's site is %s, want held_test.go:%d, the go statement\n%s", site, line, blocking)
	}
	if err := c.LPush(ctx, "gostatement:list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the BLPOP's return", func() bool { return c.Report().Len() == 0 })
}

// TestBlockingNamesItsSocket: a blocking command's checkout carries the name
// of the socket it blocks on, the name CLIENT LIST shows with cmd=blpop, so
// that the inspector leads to it as it leads to a Conn.
func TestBlockingNamesItsSocket(t *testing.T) {
	srv := testserver.Redis(t)
	c := claimClient(t, testOptions(srv.Addr()), nil)
	defer c.Close()
	ctx := context.Background()
	// Busy sockets beside it, so that the name is not a lucky guess.
	for range 3 {
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- c.BLPop(ctx, 0, "blocking:names").Err() }()
	var served string
	waitFor(t, "the BLPOP on the server", func() bool {
		for _, cl := range srv.Clients(t) {
			if cl.Cmd == "blpop" {
				served = cl.Name
				return true
			}
		}
		return false
	})
	var names []string
	waitFor(t, "the blocking checkout naming its socket", func() bool {
		r := c.Report().Filter(func(g tracker.Group) bool { return g.Kind == tracker.KindBlocking })
		if len(r.Groups) != 1 {
			return false
		}
		names = r.Groups[0].ConnNames
		return len(names) == 1 && names[0] != ""
	})
	if names[0] != served {
		t.Errorf("the BLPOP's checkout names socket %q, the server serves it on %q", names[0], served)
	}
	if err := c.LPush(ctx, "blocking:names", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
