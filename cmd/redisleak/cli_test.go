package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/internal/testserver"
)

// TestMain fails the package if a goroutine outlives the tests: every
// client the command or the tests open must be closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runCLI runs the command with args and returns its exit status, stdout
// and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// wantOneLineError checks a failed run: the exit status, exactly one line
// on stderr, containing each of wants.
func wantOneLineError(t *testing.T, code int, stderr string, wantCode int, wants ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit status %d, want %d (stderr %q)", code, wantCode, stderr)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not exactly one line: %q", stderr)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Errorf("stderr looks like a stack trace: %q", stderr)
	}
	for _, w := range wants {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q lacks %q", stderr, w)
		}
	}
}

// newTestClient returns a single-connection client named name, connected
// (so it shows in CLIENT LIST) and closed when the test ends.
func newTestClient(t *testing.T, addr, name string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ClientName: name, PoolSize: 1, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("client %s: PING: %v", name, err)
	}
	return c
}

// newSubscriber returns a client named name whose only connection is
// subscribed to channel, closed when the test ends.
func newSubscriber(t *testing.T, addr, name, channel string) {
	t.Helper()
	ctx := context.Background()
	// Not newTestClient: its PING would leave a second, normal connection
	// in the pool next to the pub/sub one.
	c := redis.NewClient(&redis.Options{Addr: addr, ClientName: name, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	ps := c.Subscribe(ctx, channel)
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("client %s: SUBSCRIBE: %v", name, err)
	}
}

// populate connects the known population: three idle clients named app-a,
// one client named worker blocked in BLPOP, one named listener subscribed
// to a channel, and three named as pool.NewClient names its sockets: idle
// svc.p100.s2 and svc.p200.s1, and svc.p100.s1 subscribed to a channel
// (so not idle). The server's admin connection (named redisleak-admin) is
// there too, as a ninth client.
func populate(t *testing.T, srv *testserver.Server) (appA []*redis.Client) {
	t.Helper()
	ctx := context.Background()
	for range 3 {
		appA = append(appA, newTestClient(t, srv.Addr(), "app-a"))
	}

	worker := newTestClient(t, srv.Addr(), "worker")
	const queue = "redisleak:test:queue"
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = worker.BLPop(ctx, 0, queue).Err()
	}()
	t.Cleanup(func() {
		// Unblock the worker, then wait for its goroutine, before the
		// worker's own cleanup closes it.
		if err := srv.Admin().LPush(ctx, queue, "done").Err(); err != nil {
			t.Errorf("LPUSH to unblock the worker: %v", err)
		}
		wg.Wait()
	})

	newSubscriber(t, srv.Addr(), "listener", "redisleak:test:events")
	newTestClient(t, srv.Addr(), "svc.p100.s2")
	newTestClient(t, srv.Addr(), "svc.p200.s1")
	newSubscriber(t, srv.Addr(), "svc.p100.s1", "redisleak:test:svc")

	// Wait for the BLPOP to reach the server.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := srv.Admin().Info(ctx, "clients").Result()
		if err == nil && strings.Contains(n, "blocked_clients:1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker not blocked after 5s: %v %s", err, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return appA
}

func TestClientsAgainstServer(t *testing.T) {
	srv := testserver.Redis(t)
	populate(t, srv)

	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "clients", "--json", "--idle", "0s")
	if code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, errOut)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if r.Total != 9 {
		t.Errorf("total %d, want 9 (3 app-a, worker, listener, 3 svc, admin)\n%s", r.Total, out)
	}
	if got, want := groupCounts(r.ByName), "app-a=3,svc=3,listener=1,redisleak-admin=1,worker=1"; got != want {
		t.Errorf("by name %s, want %s", got, want)
	}
	if got, want := groupCounts(r.ByHost), "127.0.0.1=9"; got != want {
		t.Errorf("by host %s, want %s", got, want)
	}
	if b := r.AgeBuckets[0]; b.Label != "<1m" || b.Count != 9 {
		t.Errorf("first age bucket %+v, want <1m with 9", b)
	}
	if r.Blocked.Count != 1 || r.Blocked.Clients[0].Name != "worker" || r.Blocked.Clients[0].Cmd != "blpop" {
		t.Errorf("blocked %+v, want the worker in blpop", r.Blocked)
	}
	if got := names(r.PubSub); r.PubSub.Count != 2 || got != "listener,svc.p100.s1" {
		t.Errorf("pubsub %s (count %d), want the listener and svc.p100.s1", got, r.PubSub.Count)
	}
	for _, c := range r.Idle.Clients {
		if c.ID == r.SelfID {
			t.Errorf("the inspector's own connection (id %d) is listed as idle", c.ID)
		}
	}
	if got, want := names(r.Idle), "app-a,app-a,app-a,redisleak-admin,svc.p100.s2,svc.p200.s1"; r.Idle.Count != 6 || got != want {
		t.Errorf("idle %s (count %d), want %s", got, r.Idle.Count, want)
	}

	// By process: the names set over the wire parse; the subscribed
	// svc.p100.s1 is not idle, so it is listed after the idle s2.
	wantByProcess := Grouping{TotalGroups: 2, Groups: []Group{
		{Key: "svc.p100", Count: 2, Idle: 1, PubSub: 1, Sockets: []string{"svc.p100.s2", "svc.p100.s1"}},
		{Key: "svc.p200", Count: 1, Idle: 1, Sockets: []string{"svc.p200.s1"}},
	}}
	gotByProcess := r.ByProcess
	for i := range gotByProcess.Groups {
		// Ages and idle times depend on the clock: zero them.
		gotByProcess.Groups[i].OldestAgeSeconds, gotByProcess.Groups[i].MaxIdleSeconds = 0, 0
	}
	if !reflect.DeepEqual(gotByProcess, wantByProcess) {
		t.Errorf("by process\n got %+v\nwant %+v", r.ByProcess, wantByProcess)
	}
	if r.NotNamedByRedisleak != 6 {
		t.Errorf("not named by redisleak %d, want 6 (3 app-a, worker, listener, admin)", r.NotNamedByRedisleak)
	}
	if r.SelfID <= 0 {
		t.Errorf("self_id %d", r.SelfID)
	}

	code, out, errOut = runCLI(t, "-addr", srv.Addr(), "clients", "--idle", "0s", "--top", "2")
	if code != 0 {
		t.Fatalf("text: exit status %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"9 connections", "top 2 of 5 groups", "app-a", "Blocked: 1", "Pub/sub: 2", "blpop",
		"\nBy process (names set by redisleak: <client>.p<pid>.s<socket>; 2 groups)\n",
		"  6 of 9 connections not named by redisleak: only in the groupings by host and by name\n",
		"  Socket names, to look up in the service's leak report (idle first):\n" +
			"    svc.p100\n" +
			"      idle>=0s  svc.p100.s2\n" +
			"      not idle  svc.p100.s1\n" +
			"    svc.p200\n" +
			"      idle>=0s  svc.p200.s1\n\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	for key, want := range map[string]string{
		"svc.p100": "2 1 0 1",
		"svc.p200": "1 1 0 0",
	} {
		// COUNT IDLE BLOCKED PUBSUB; the ages depend on the clock.
		if got := fieldsOf(out, key); !strings.HasPrefix(got, want+" ") {
			t.Errorf("by process row %s: %q, want counts %q", key, got, want)
		}
	}
	t.Logf("clients output:\n%s", out)
}

// names returns the sorted names of the clients listed in s, joined by
// commas.
func names(s ClientSet) string {
	var out []string
	for _, c := range s.Clients {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestKillIdleDryRun(t *testing.T) {
	srv := testserver.Redis(t)
	appA := populate(t, srv)
	ctx := context.Background()
	var before []int64
	for _, c := range appA {
		before = append(before, c.ClientID(ctx).Val())
	}

	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "kill-idle", "--idle", "0s")
	if code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, errOut)
	}
	if n := strings.Count(out, "app-a"); n != 3 {
		t.Errorf("dry run lists app-a %d times, want 3:\n%s", n, out)
	}
	for _, never := range []string{"worker", "listener", "svc.p100.s1"} {
		if strings.Contains(out, never) {
			t.Errorf("dry run lists %s, which is blocked or pub/sub:\n%s", never, out)
		}
	}
	if !strings.Contains(out, "dry run: nothing killed") {
		t.Errorf("no dry-run notice:\n%s", out)
	}
	// Nothing was killed: the clients still have their connections (a
	// killed one would reconnect with a new id).
	for i, c := range appA {
		if id := c.ClientID(ctx).Val(); id != before[i] {
			t.Errorf("app-a #%d: id %d after the dry run, was %d", i, id, before[i])
		}
	}
}

func TestKillIdleYes(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	victims := []*redis.Client{newTestClient(t, srv.Addr(), "victim"), newTestClient(t, srv.Addr(), "victim")}
	var before []int64
	for _, c := range victims {
		before = append(before, c.ClientID(ctx).Val())
	}

	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "kill-idle", "--idle", "0s", "--yes")
	if code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "killed 2 of 2 clients") {
		t.Errorf("output lacks the kill count:\n%s", out)
	}
	code, out, errOut = runCLI(t, "-addr", srv.Addr(), "clients", "--json")
	if code != 0 {
		t.Fatalf("clients after kill: exit status %d, stderr %q", code, errOut)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Total != 0 {
		t.Errorf("%d clients left after kill-idle --yes, want 0:\n%s", r.Total, out)
	}
	// The victims' next command needs a new connection.
	for i, c := range victims {
		if id, err := c.ClientID(ctx).Result(); err == nil && id == before[i] {
			t.Errorf("victim #%d still on connection %d", i, id)
		}
	}
}

func TestWatch(t *testing.T) {
	srv := testserver.Redis(t)
	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "watch", "--interval", "100ms", "--duration", "450ms")
	if code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// header, column names, >= 4 samples, "stopped after".
	if len(lines) < 7 || !strings.HasPrefix(lines[len(lines)-1], "stopped after") {
		t.Errorf("unexpected output:\n%s", out)
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("warning on an idle server:\n%s", out)
	}
}

// TestWatchChurn opens and closes connections in a loop next to 30 steady
// ones, the missing-pool pattern, and expects watch to say so.
func TestWatchChurn(t *testing.T) {
	srv := testserver.Redis(t)
	var steady []net.Conn
	for range 30 {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		steady = append(steady, c)
	}
	defer func() {
		for _, c := range steady {
			c.Close()
		}
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c, err := net.Dial("tcp", srv.Addr()); err == nil {
				c.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "watch", "--interval", "200ms", "--duration", "1100ms")
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "WARNING connection churn") {
		t.Errorf("no churn warning:\n%s", out)
	}
	t.Logf("watch output:\n%s", out)
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, cmd := range [][]string{{"clients"}, {"watch"}, {"kill-idle", "--idle", "1h"}} {
		code, _, errOut := runCLI(t, append([]string{"-addr", addr, "-timeout", "2s"}, cmd...)...)
		wantOneLineError(t, code, errOut, 1, "cannot connect to "+addr)
	}
}

func TestPassword(t *testing.T) {
	// testserver.Redis(t, "--requirepass", "secret") never becomes ready:
	// its readiness PING gets NOAUTH. Set the password once it runs; the
	// admin connection stays authenticated.
	srv := testserver.Redis(t)
	if err := srv.Admin().ConfigSet(context.Background(), "requirepass", "secret").Err(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(passwordEnv, "")

	code, _, errOut := runCLI(t, "-addr", srv.Addr(), "-password", "wrong", "clients")
	wantOneLineError(t, code, errOut, 1, "authentication failed", srv.Addr())

	code, _, errOut = runCLI(t, "-addr", srv.Addr(), "clients")
	wantOneLineError(t, code, errOut, 1, "requires authentication", passwordEnv)

	code, _, errOut = runCLI(t, "-addr", srv.Addr(), "clients", "-password", "secret")
	if code != 0 {
		t.Errorf("right password after the command: exit %d, stderr %q", code, errOut)
	}
	t.Setenv(passwordEnv, "secret")
	code, _, errOut = runCLI(t, "-addr", srv.Addr(), "clients")
	if code != 0 {
		t.Errorf("password from $%s: exit %d, stderr %q", passwordEnv, code, errOut)
	}
}

func TestACLWithoutClientPermission(t *testing.T) {
	srv := testserver.Redis(t)
	err := srv.Admin().Do(context.Background(), "ACL", "SETUSER", "limited", "on", ">pw", "~*", "+@all", "-client").Err()
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"clients"}, {"kill-idle", "--idle", "0s", "--yes"}} {
		code, _, errOut := runCLI(t, append([]string{"-addr", srv.Addr(), "-user", "limited", "-password", "pw"}, cmd...)...)
		wantOneLineError(t, code, errOut, 1, `user "limited" may not run CLIENT`, "NOPERM")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"-nosuchflag", "clients"}, "flag provided but not defined"},
		{[]string{"clients", "--idle", "soon"}, `invalid value "soon" for flag -idle`},
		{[]string{"clients", "--top", "-1"}, "--top must not be negative"},
		{[]string{"clients", "extra"}, `unexpected argument "extra"`},
		{[]string{"watch", "--interval", "0s"}, "--interval must be positive"},
		{[]string{"kill-idle"}, "--idle is required"},
		{[]string{"-timeout", "0s", "clients"}, "-timeout must be positive"},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		wantOneLineError(t, code, errOut, 2, tc.want)
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"clients", "-h"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "usage: redisleak") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
		}
	}
}
