package pool_test

// The fault suite runs a capped client against a real redis-server while
// faults come and go. It runs in two routes, one after the other:
//
//   - proxied: the client connects through Toxiproxy, which injects the
//     network faults: latency, resets, stalls, sliced replies, the proxy
//     going down;
//   - direct: the client connects straight to redis-server, which injects
//     its own faults: killing, pausing, sleeping, refusing new clients,
//     restarting and asking for a password. With no proxy between them, the
//     server is the peer that confirms the client's closes, so what the
//     server lists is what the cap bounds.
//
// Whatever the fault, the client must never hold more slots than the cap,
// never refuse a caller while a slot is free, and hold nothing, client- or
// server-side, once closed. TestFaults checks that in about half a minute;
// TestFaultSoak cycles through the faults for as long as REDISLEAK_SOAK says,
// half of it in each route, and reports what the server saw, phase by phase,
// which RELIABILITY.md records.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

const (
	// faultCap and faultPoolSize leave two slots of the cap to Pub/Subs: of
	// the four subscribers, two borrow turns of the pool.
	faultCap      = 6
	faultPoolSize = 4
	// soakEnv holds the soak's duration; the soak is skipped without it.
	soakEnv = "REDISLEAK_SOAK"
)

// route is how the client under test reaches the server, and so which
// faults a run injects.
type route int

const (
	proxied route = iota // through Toxiproxy, under the network faults
	direct               // straight to redis-server, under the server's faults
)

// routes are the routes the tests run, in order.
var routes = []route{proxied, direct}

func (rt route) String() string {
	if rt == direct {
		return "direct"
	}
	return "proxied"
}

// faultPlan is how long and how hard a fault run goes.
type faultPlan struct {
	route      route
	clientName string        // the prefix of the client's sockets' names on the server
	commanders int           // goroutines running commands and pipelines
	faultFor   time.Duration // how long each fault lasts
	normalFor  time.Duration // the quiet phase after each fault, in which the client recovers
	total      time.Duration // cycle through the faults until this much time passed; 0: once
}

// TestFaults runs every fault once, in its route, and checks the cap's
// invariants, none of which depends on the machine's speed.
func TestFaults(t *testing.T) {
	runRoutes(t, faultPlan{
		clientName: "faults",
		commanders: 60,
		faultFor:   1500 * time.Millisecond,
		normalFor:  500 * time.Millisecond,
	})
}

// TestFaultSoak cycles through the faults for the duration in
// REDISLEAK_SOAK, for example:
//
//	REDISLEAK_SOAK=10m go test -run TestFaultSoak -v -timeout 30m ./pool/
//
// It spends half of the duration in each route, reports what the server and
// the client saw in each, and asserts what TestFaults does.
func TestFaultSoak(t *testing.T) {
	v := os.Getenv(soakEnv)
	if v == "" {
		t.Skipf("set %s to a duration (e.g. %s=10m) to run the soak", soakEnv, soakEnv)
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 10m", soakEnv, v)
	}
	runRoutes(t, faultPlan{
		clientName: "soak",
		commanders: 100,
		faultFor:   8 * time.Second,
		normalFor:  4 * time.Second,
		total:      d / time.Duration(len(routes)),
	})
}

// runRoutes runs plan in each route, one after the other, as subtests named
// after the routes, and logs and checks each run.
func runRoutes(t *testing.T, plan faultPlan) {
	for _, rt := range routes {
		t.Run(rt.String(), func(t *testing.T) {
			p := plan
			p.route = rt
			p.clientName = plan.clientName + "-" + rt.String()
			r := runFaults(t, p)
			r.log(t)
			r.check(t)
		})
	}
}

// faultResult is what a fault run measured.
type faultResult struct {
	plan     faultPlan
	duration time.Duration
	runs     map[string]int // how many times each phase ran
	slots    slotSamples
	server   serverSamples
	calls    callTally

	closeErr          error
	afterClose        pool.Stats
	socketsAfterClose int // the client's connections the server still listed
	goroutinesBefore  int
	goroutinesAfter   int
}

// runFaults runs plan's workload and its route's faults against a capped
// client, closes the client, and returns what it measured.
func runFaults(t *testing.T, plan faultPlan) *faultResult {
	// go-redis logs every failed dial and reconnect to stderr: thousands of
	// lines that would bury the results.
	logging.Disable()
	t.Cleanup(logging.Enable)

	srv := testserver.Redis(t, "--enable-debug-command", "local")
	var proxy *testserver.Proxy
	if plan.route == proxied {
		proxy = testserver.Toxiproxy(t, srv.Addr())
	}
	env := newFaultEnv(t, srv, proxy)
	r := &faultResult{plan: plan, goroutinesBefore: runtime.NumGoroutine()}
	run := startRun(t, env, plan)
	// Stops everything the run started, should a fault end the test early.
	defer run.stop()

	began := time.Now()
	r.runs = drive(env, plan, &run.phase)
	r.duration = time.Since(began)

	run.stop()
	r.slots, r.server, r.calls = run.slots, run.server, run.calls.result()
	r.closeErr, r.afterClose = run.closeErr, run.afterClose
	r.socketsAfterClose = socketsAfterClose(t, srv)
	r.goroutinesAfter = settledGoroutines(r.goroutinesBefore)
	return r
}

// check asserts the invariants: no slot over the cap, no refusal while a slot
// was free, and nothing held once the client is closed.
func (r *faultResult) check(t *testing.T) {
	t.Helper()
	if r.slots.violations != 0 {
		t.Errorf("%d of %d Stats samples held more slots than the cap %d; first: %s", r.slots.violations, r.slots.samples, faultCap, r.slots.first)
	}
	// Straight to the server, the server is the peer that confirms a close:
	// it never lists more of the client's sockets than the cap. Through the
	// proxy it may, for the proxy's own delay (see WithDrainTimeout).
	if r.plan.route == direct && r.server.over != 0 {
		t.Errorf("%d of %d server samples listed more of the client's sockets than the cap %d; first: %s", r.server.over, r.server.samples, faultCap, r.server.first)
	}
	if r.calls.falseRefusals != 0 {
		t.Errorf("%d of %d refusals did not have every slot of the cap held; first: %s", r.calls.falseRefusals, r.calls.refusals, r.calls.firstFalse)
	}
	if r.closeErr != nil {
		t.Errorf("Close = %v, want nil: every Conn and Pub/Sub was closed first", r.closeErr)
	}
	if s := r.afterClose; s.SlotsHeld() != 0 || s.OpenConnections != 0 {
		t.Errorf("after Close, Stats holds %d slots and %d open sockets, want 0: %+v", s.SlotsHeld(), s.OpenConnections, s)
	}
	if r.socketsAfterClose != 0 {
		t.Errorf("after Close, the server still lists %d connections of the client", r.socketsAfterClose)
	}
}

// log reports the run as a table.
func (r *faultResult) log(t *testing.T) {
	t.Helper()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) { fmt.Fprintf(w, "%s\t%s\n", name, fmt.Sprintf(format, args...)) }
	c := r.calls
	row("run", "%s, %s: cap %d, PoolSize %d, %d commanders, 4 subscribers, 3 Conn loops; faults %s, normal %s", r.plan.route, r.duration.Round(time.Second), faultCap, faultPoolSize, r.plan.commanders, r.plan.faultFor, r.plan.normalFor)
	row("server CLIENT LIST samples", "%d, %.0f/s (%d failed while the server was unreachable or busy)", r.server.samples, float64(r.server.samples)/r.duration.Seconds(), r.server.errors)
	row("server: most sockets of the client", "%d (phase %q)", r.server.max, r.server.maxPhase)
	row("server: samples above the cap", "%d%s", r.server.over, byPhase(r.server.overByPhase()))
	row("server: samples above only with others' sockets", "%d (the test's own connections, reconnecting)", r.server.notMine)
	if r.server.first != "" {
		row("server: first sample above the cap", "%s", r.server.first)
	}
	row("client Stats samples", "%d, %.0f/s", r.slots.samples, float64(r.slots.samples)/r.duration.Seconds())
	row("client: samples above the cap", "%d%s", r.slots.violations, byPhase(r.slots.byPhase))
	row("calls", "%d (%d failed)", c.calls, c.failed)
	row("refusals (ErrMaxConnections)", "%d, false: %d", c.refusals, c.falseRefusals)
	row("calls failed past their deadline", "%d", len(c.overshoots))
	row("overshoot past the deadline", "max %s, p99 %s", c.overshootQuantile(1).Round(time.Millisecond), c.overshootQuantile(0.99).Round(time.Millisecond))
	row("Close", "%v", r.closeErr)
	row("after Close: slots, open", "%d, %d", r.afterClose.SlotsHeld(), r.afterClose.OpenConnections)
	row("after Close: server sockets", "%d", r.socketsAfterClose)
	row("goroutines before, after Close", "%d, %d", r.goroutinesBefore, r.goroutinesAfter)
	_ = w.Flush()

	// Every phase, in the order it runs, with the zeros.
	b.WriteString("\nby phase:\n")
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "phase\truns\tserver samples\tabove the cap\tmost sockets\tclient above the cap\n")
	for _, p := range phaseNames(r.plan.route) {
		s := r.server.byPhase[p]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\n", p, r.runs[p], s.samples, s.over, s.max, r.slots.byPhase[p])
	}
	_ = w.Flush()
	t.Logf("fault run, %s:\n%s", r.plan.route, b.String())
}

// byPhase lists counts by phase, largest first.
func byPhase(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	phases := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Compare(m[b], m[a]) })
	var parts []string
	for _, p := range phases {
		parts = append(parts, fmt.Sprintf("%s: %d", p, m[p]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// socketsAfterClose polls the server for up to five seconds until it lists
// none of the closed client's connections, and returns how many it listed
// last. The server drops a connection only once it has read its close, so
// it may list one for a moment after Close.
func socketsAfterClose(t *testing.T, srv *testserver.Server) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := srv.ConnectedClients(t)
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settledGoroutines returns the number of goroutines once it is back to
// before, or after a second: goroutines that just ended may not have exited.
func settledGoroutines(before int) int {
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

// faultEnv is what the faults act on; proxy is nil in the direct route.
// observer and control are clients of their own, straight to the server and
// named as the admin connection, so that the counts of the client's sockets
// leave them out: observer samples CLIENT LIST and control injects the
// server-side faults.
type faultEnv struct {
	t        *testing.T
	srv      *testserver.Server
	proxy    *testserver.Proxy
	observer *redis.Client
	control  *redis.Client
	// password is the server's requirepass now, so that the admin clients
	// reconnect during the password fault.
	password atomic.Pointer[string]
	// owners maps the local address of every socket dialed to the server,
	// straight, to who dialed it last and when (a dialOwner). A socket shows
	// no name on the server until its handshake is done: its address tells
	// whose it is then, if that dial is recent (ports are reused, and
	// testserver's own admin client does not note its dials).
	owners sync.Map
	// clientName is what the client's sockets' names start with.
	clientName string
}

const (
	ownerClient = "client"
	ownerAdmin  = "admin"
)

// dialOwner is who dialed a local address, and when.
type dialOwner struct {
	owner string
	at    time.Time
}

// recordingDialer dials as go-redis does and notes owner as the owner of
// each socket's local address.
func (e *faultEnv) recordingDialer(owner string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, network, addr)
		if err == nil {
			e.owners.Store(conn.LocalAddr().String(), dialOwner{owner, time.Now()})
		}
		return conn, err
	}
}

// isClients reports whether the server's connection c, listed at the time
// at, is the client's: its name says so or, before it has one, its address,
// which the client dialed within the second before (CLIENT LIST's age counts
// whole seconds); through the proxy every connection but the admin clients'
// is the proxy's, for the client.
func (e *faultEnv) isClients(c testserver.ClientInfo, at time.Time) bool {
	v, _ := e.owners.Load(c.Addr)
	d, _ := v.(dialOwner)
	if e.proxy != nil {
		return d.owner != ownerAdmin && c.Name != testserver.AdminClientName
	}
	if strings.HasPrefix(c.Name, e.clientName+".") {
		return true
	}
	return c.Name == "" && d.owner == ownerClient && at.Sub(d.at) <= c.Age+time.Second && d.at.Sub(at) < time.Second
}

func newFaultEnv(t *testing.T, srv *testserver.Server, proxy *testserver.Proxy) *faultEnv {
	e := &faultEnv{t: t, srv: srv, proxy: proxy}
	e.password.Store(new(string))
	e.observer, e.control = e.adminClient(), e.adminClient()
	return e
}

func (e *faultEnv) adminClient() *redis.Client {
	opt := testOptions(e.srv.Addr())
	opt.ClientName = testserver.AdminClientName
	opt.PoolSize = 1
	opt.DisableIdentity = true
	opt.ReadTimeout = 10 * time.Second // outlasts DEBUG SLEEP
	opt.CredentialsProvider = func() (string, string) { return "", *e.password.Load() }
	opt.Dialer = e.recordingDialer(ownerAdmin)
	return redis.NewClient(opt)
}

// clientAddr is where the client under test connects: the proxy, or in the
// direct route the server.
func (e *faultEnv) clientAddr() string {
	if e.proxy == nil {
		return e.srv.Addr()
	}
	return e.proxy.Addr
}

func (e *faultEnv) close() {
	_ = e.observer.Close()
	_ = e.control.Close()
}

// clientSockets lists the server's connections but the admin ones: the
// client's sockets, direct or through the proxy, named or about to be.
func clientSockets(ctx context.Context, admin *redis.Client) ([]testserver.ClientInfo, error) {
	text, err := admin.ClientList(ctx).Result()
	if err != nil {
		return nil, err
	}
	all, err := testserver.ParseClientList(text)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(c testserver.ClientInfo) bool { return c.Name == testserver.AdminClientName }), nil
}

// do runs a control command, failing the test if the fault could not be
// injected or undone.
func (e *faultEnv) do(args ...any) { e.checkControl(args, e.controlCommand(args)) }

// background runs a control command that blocks the server, while the
// phase goes on; end waits for it.
func (e *faultEnv) background(args ...any) (end func()) {
	done := make(chan error, 1)
	go func() { done <- e.controlCommand(args) }()
	return func() { e.checkControl(args, <-done) }
}

func (e *faultEnv) controlCommand(args []any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return e.control.Do(ctx, args...).Err()
}

func (e *faultEnv) checkControl(args []any, err error) {
	if err != nil {
		e.t.Errorf("fault control %v: %v", args, err)
	}
}

// killClientSockets has the server close every connection of the client,
// one by one, leaving the admin ones.
func (e *faultEnv) killClientSockets() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	list, err := clientSockets(ctx, e.control)
	if err != nil {
		e.t.Errorf("listing the client's connections to kill them: %v", err)
		return
	}
	for _, c := range list {
		if !e.isClients(c, time.Now()) {
			continue // the test's own, reconnecting
		}
		// A connection that closed meanwhile counts 0; that is no error.
		if err := e.control.ClientKillByFilter(ctx, "ID", strconv.FormatInt(c.ID, 10)).Err(); err != nil {
			e.t.Errorf("CLIENT KILL ID %d: %v", c.ID, err)
		}
	}
}

// lowMaxClients lets the server accept only two of the client's sockets
// beside the admin's two, and closes the client's, so that its reconnects
// meet the limit.
func (e *faultEnv) lowMaxClients() (end func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	orig, err := e.control.ConfigGet(ctx, "maxclients").Result()
	if err != nil || orig["maxclients"] == "" {
		e.t.Errorf("CONFIG GET maxclients = %v, %v", orig, err)
		return func() {}
	}
	e.do("CONFIG", "SET", "maxclients", "4")
	e.killClientSockets()
	return func() { e.do("CONFIG", "SET", "maxclients", orig["maxclients"]) }
}

// requirePassword sets a password the client does not know and closes the
// client's sockets: its new ones fail authentication until end.
func (e *faultEnv) requirePassword() (end func()) {
	pw := "fault-password"
	e.do("CONFIG", "SET", "requirepass", pw)
	e.password.Store(&pw)
	e.killClientSockets()
	return func() {
		e.do("CONFIG", "SET", "requirepass", "")
		e.password.Store(new(string))
	}
}

// fault is one fault: start injects it, in runs of route, and returns what
// ends it.
type fault struct {
	name  string
	route route
	start func(*faultEnv) (end func())
}

func nothing() {}

// faults are the faults the runs go through, in order, each in its route's
// runs only.
var faults = []fault{
	{"latency 1.5s", proxied, func(e *faultEnv) func() { return e.proxy.Latency(e.t, 1500*time.Millisecond) }},
	{"reset_peer", proxied, func(e *faultEnv) func() {
		return e.proxy.AddToxic(e.t, "reset_peer", "downstream", map[string]any{"timeout": 200})
	}},
	// Replies stop and connections close after 2s: longer than the
	// client's deadlines, so its sockets close while the proxy stalls.
	{"timeout 2s", proxied, func(e *faultEnv) func() {
		return e.proxy.AddToxic(e.t, "timeout", "downstream", map[string]any{"timeout": 2000})
	}},
	{"slicer", proxied, func(e *faultEnv) func() {
		return e.proxy.AddToxic(e.t, "slicer", "downstream", map[string]any{"average_size": 8, "size_variation": 4, "delay": 500})
	}},
	{"proxy down", proxied, func(e *faultEnv) func() { return e.proxy.Disable(e.t) }},
	{"CLIENT KILL", direct, func(e *faultEnv) func() { e.killClientSockets(); return nothing }},
	{"CLIENT PAUSE 1000", direct, func(e *faultEnv) func() { e.do("CLIENT", "PAUSE", "1000"); return nothing }},
	{"DEBUG SLEEP 3", direct, func(e *faultEnv) func() { return e.background("DEBUG", "SLEEP", "3") }},
	{"maxclients 4", direct, (*faultEnv).lowMaxClients},
	{"restart", direct, func(e *faultEnv) func() { e.srv.Restart(e.t); return nothing }},
	{"requirepass", direct, (*faultEnv).requirePassword},
}

// routeFaults are the faults of rt, in order.
func routeFaults(rt route) []fault {
	return slices.DeleteFunc(slices.Clone(faults), func(f fault) bool { return f.route != rt })
}

// afterFault is the name of the normal phase after the fault named f.
func afterFault(f string) string { return "normal after " + f }

// phaseNames are the phases of a run in rt, in the order they run.
func phaseNames(rt route) []string {
	names := []string{"normal"}
	for _, f := range routeFaults(rt) {
		names = append(names, f.name, afterFault(f.name))
	}
	return names
}

// drive runs the faults of plan's route in turn, each followed by a normal
// phase, once or until plan.total has passed, recording the phase's name in
// phase. It returns how many times each phase ran.
func drive(e *faultEnv, plan faultPlan, phase *atomic.Pointer[string]) (runs map[string]int) {
	runs = map[string]int{}
	enter := func(name string, d time.Duration) {
		phase.Store(&name)
		runs[name]++
		time.Sleep(d)
	}
	enter("normal", plan.normalFor)
	start := time.Now()
	for pass := 0; ; pass++ {
		for _, f := range routeFaults(plan.route) {
			if pass > 0 && time.Since(start) >= plan.total {
				return runs
			}
			phase.Store(&f.name)
			runs[f.name]++
			end := f.start(e)
			time.Sleep(plan.faultFor)
			end()
			enter(afterFault(f.name), plan.normalFor)
		}
		if time.Since(start) >= plan.total {
			return runs
		}
	}
}

// faultRun is one fault run in progress: the client, its workload and the
// samplers.
type faultRun struct {
	env   *faultEnv
	c     *pool.Client
	phase atomic.Pointer[string]
	calls *tally

	quit    chan struct{} // closed to stop the workload and the samplers
	work    sync.WaitGroup
	samples sync.WaitGroup

	stopOnce   sync.Once
	slots      slotSamples
	server     serverSamples
	closeErr   error
	afterClose pool.Stats
}

// faultClient is the client under test: capped, connecting to e's server
// or proxy, honouring its callers' deadlines on the wire too, and logging
// nowhere. Its dialer notes its sockets' addresses, so that the server's
// samples can tell the client's sockets that have no name yet from the
// test's own.
func faultClient(t *testing.T, e *faultEnv, name string) *pool.Client {
	opt := testOptions(e.clientAddr())
	opt.PoolSize = faultPoolSize
	opt.ClientName = name
	opt.ContextTimeoutEnabled = true
	opt.Dialer = e.recordingDialer(ownerClient)
	c, err := pool.NewClient(opt,
		pool.WithMaxConnections(faultCap),
		pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startRun(t *testing.T, env *faultEnv, plan faultPlan) *faultRun {
	env.clientName = plan.clientName
	r := &faultRun{env: env, c: faultClient(t, env, plan.clientName), calls: &tally{}, quit: make(chan struct{})}
	name := "normal"
	r.phase.Store(&name)
	for i := range plan.commanders {
		r.work.Go(func() { r.loop(func(ctx context.Context) error { return r.command(ctx, i) }) })
	}
	for range 3 {
		r.work.Go(func() { r.loop(r.conn) })
	}
	for range 4 {
		r.work.Go(r.subscriber)
	}
	r.samples.Go(func() { r.slots = sampleSlots(r.c, &r.phase, r.quit) })
	r.samples.Go(func() { r.server = sampleServer(env.observer, &r.phase, r.quit, env.isClients) })
	return r
}

// stop ends the workload and the samplers, then closes the client, the
// Conns and Pub/Subs having closed first, and the admin clients. It runs
// once.
func (r *faultRun) stop() {
	r.stopOnce.Do(func() {
		close(r.quit)
		r.work.Wait()
		r.samples.Wait()
		r.closeErr = r.c.Close()
		r.afterClose = r.c.Stats()
		r.env.close()
	})
}

func (r *faultRun) stopped() bool { return isClosed(r.quit) }

// callContext is one call's context: a deadline from 50ms to 2s and, for one
// call in twenty, a cancellation within 100ms, as a caller that gives up.
func callContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond+rand.N(1950*time.Millisecond))
	if rand.IntN(20) != 0 {
		return ctx, cancel
	}
	timer := time.AfterFunc(rand.N(100*time.Millisecond), cancel)
	return ctx, func() {
		timer.Stop()
		cancel()
	}
}

// loop runs call with a fresh context, with a short pause between calls,
// until the run stops.
func (r *faultRun) loop(call func(context.Context) error) {
	for !r.stopped() {
		ctx, cancel := callContext()
		r.calls.observe(ctx, call(ctx))
		cancel()
		time.Sleep(rand.N(10 * time.Millisecond))
	}
}

// command runs one command or pipeline of the commanders' mix.
func (r *faultRun) command(ctx context.Context, i int) error {
	key := "k" + strconv.Itoa(rand.IntN(100))
	switch rand.IntN(10) {
	case 0, 1, 2:
		return r.c.Get(ctx, key).Err()
	case 3, 4:
		return r.c.Set(ctx, key, i, 0).Err()
	case 5, 6:
		return r.c.Incr(ctx, "counter").Err()
	case 7:
		return r.c.Publish(ctx, "news", i).Err()
	default:
		_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Incr(ctx, "counter")
			p.Get(ctx, key)
			p.Set(ctx, key, i, 0)
			return nil
		})
		return err
	}
}

// conn runs one command on a dedicated connection.
func (r *faultRun) conn(ctx context.Context) error {
	cn := r.c.Conn()
	defer cn.Close()
	return cn.Ping(ctx).Err()
}

// subscriber listens to "news" until the run stops, subscribing again
// whenever its Pub/Sub fails.
func (r *faultRun) subscriber() {
	for !r.stopped() {
		ctx, cancel := callContext()
		ps := r.c.Subscribe(ctx, "news")
		cancel()
		r.listen(ps)
		_ = ps.Close()
	}
}

// listen receives on ps until the run stops or ps fails; a wait that only
// timed out is no failure.
func (r *faultRun) listen(ps *redis.PubSub) {
	for !r.stopped() {
		ctx, cancel := callContext()
		_, err := ps.ReceiveTimeout(ctx, 500*time.Millisecond)
		r.calls.observe(ctx, err)
		cancel()
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return
		}
	}
}

// tally counts the workload's calls, checks every refusal, and keeps how
// far past its deadline each call that failed after its deadline returned.
type tally struct {
	calls, failed atomic.Int64

	mu            sync.Mutex
	refusals      int64
	falseRefusals int64
	firstFalse    string
	overshoots    []time.Duration
}

// callTally is a tally's result.
type callTally struct {
	calls, failed           int64
	refusals, falseRefusals int64
	firstFalse              string
	overshoots              []time.Duration // sorted
}

// observe records the outcome of a call made with ctx, just as it returned.
func (ta *tally) observe(ctx context.Context, err error) {
	ta.calls.Add(1)
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	ta.failed.Add(1)
	var overshoot time.Duration
	deadline, hasDeadline := ctx.Deadline()
	pastDeadline := hasDeadline && errors.Is(ctx.Err(), context.DeadlineExceeded)
	if pastDeadline {
		overshoot = time.Since(deadline)
	}
	refused := errors.Is(err, pool.ErrMaxConnections)
	if !refused && !pastDeadline {
		return
	}
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if pastDeadline {
		ta.overshoots = append(ta.overshoots, overshoot)
	}
	if refused {
		ta.refusals++
		if why := falseRefusal(err); why != "" {
			ta.falseRefusals++
			if ta.firstFalse == "" {
				ta.firstFalse = why
			}
		}
	}
}

// falseRefusal says what is wrong with a refusal, or "" if nothing: a
// refusal is a *LimitError whose own count of the slots held fills the cap.
// Held is the exact count; the counts by state are read one by one and may
// be off by one from it, so they are quoted, not checked.
func falseRefusal(err error) string {
	var limit *pool.LimitError
	if !errors.As(err, &limit) {
		return fmt.Sprintf("not a *pool.LimitError: %v", err)
	}
	if limit.Held != limit.Max || limit.Max != faultCap {
		return fmt.Sprintf("%d of %d slots held (%d open, %d dialing, %d draining), want %d of %d: %v",
			limit.Held, limit.Max, limit.Open, limit.Dialing, limit.Draining, faultCap, faultCap, err)
	}
	return ""
}

func (ta *tally) result() callTally {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return callTally{
		calls: ta.calls.Load(), failed: ta.failed.Load(),
		refusals: ta.refusals, falseRefusals: ta.falseRefusals, firstFalse: ta.firstFalse,
		overshoots: slices.Sorted(slices.Values(ta.overshoots)),
	}
}

// overshootQuantile is the q-quantile (0 < q <= 1) of the overshoots, 0
// without any.
func (c callTally) overshootQuantile(q float64) time.Duration {
	n := len(c.overshoots)
	if n == 0 {
		return 0
	}
	i := int(q*float64(n)+0.999999) - 1
	return c.overshoots[min(max(i, 0), n-1)]
}

// slotSamples is what the client's Stats showed.
type slotSamples struct {
	samples, violations int64
	byPhase             map[string]int64 // violations, by the phase they were taken in
	first               string           // the first sample over the cap, with its phase
}

// sampleSlots reads the client's Stats as fast as it can until quit, and
// counts the samples whose slots held exceed the cap.
func sampleSlots(c *pool.Client, phase *atomic.Pointer[string], quit <-chan struct{}) slotSamples {
	s := slotSamples{byPhase: map[string]int64{}}
	for !isClosed(quit) {
		st := c.Stats()
		s.samples++
		if st.SlotsHeld() > st.MaxConnections {
			s.violations++
			s.byPhase[*phase.Load()]++
			if s.first == "" {
				// A second reading tells a state that lasts from one
				// caught between two counters' updates.
				s.first = fmt.Sprintf("phase %q: %+v; read again at once: %d slots held", *phase.Load(), st, c.Stats().SlotsHeld())
			}
		}
	}
	return s
}

// serverSamples is what the server's CLIENT LIST showed of the client.
type serverSamples struct {
	samples, errors int64
	max             int
	maxPhase        string
	over            int64                   // samples listing more of the client's sockets than the cap
	notMine         int64                   // samples above the cap only with sockets that were not the client's
	byPhase         map[string]phaseSamples // the samples, by the phase they were taken in
	first           string                  // the first sample above the cap: its phase and the sockets it listed
}

// describeSockets tells the sockets of a sample taken in phase apart.
func describeSockets(phase string, list []testserver.ClientInfo) string {
	parts := make([]string, len(list))
	for i, c := range list {
		parts[i] = fmt.Sprintf("id=%d name=%q age=%s idle=%s flags=%s sub=%d cmd=%s", c.ID, c.Name, c.Age, c.Idle, c.Flags, c.Sub, c.Cmd)
	}
	return fmt.Sprintf("phase %q, %d sockets: %s", phase, len(list), strings.Join(parts, "; "))
}

// overByPhase is how many samples were above the cap, by phase.
func (s serverSamples) overByPhase() map[string]int64 {
	m := map[string]int64{}
	for p, ps := range s.byPhase {
		if ps.over > 0 {
			m[p] = ps.over
		}
	}
	return m
}

// phaseSamples is what the server's CLIENT LIST showed in one phase.
type phaseSamples struct {
	samples, over int64
	max           int
}

// sampleServer lists the server's clients as fast as it can until quit, and
// counts the client's sockets in each list: those mine tells are the
// client's. A socket that has no name yet is the client's only if it has
// the address of one the client dialed, and the client may note that address
// after the server lists the socket: so the samples that list more sockets
// than the cap are kept, and counted again with mine once sampling ended.
func sampleServer(observer *redis.Client, phase *atomic.Pointer[string], quit <-chan struct{}, mine func(testserver.ClientInfo, time.Time) bool) serverSamples {
	s := serverSamples{byPhase: map[string]phaseSamples{}}
	type candidate struct {
		phase string
		at    time.Time
		list  []testserver.ClientInfo
	}
	var candidates []candidate
	for !isClosed(quit) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		list, err := clientSockets(ctx, observer)
		cancel()
		if err != nil {
			// The server is restarting, paused or refusing: wait a
			// little rather than spin on the error.
			s.errors++
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.samples++
		p := *phase.Load()
		ps := s.byPhase[p]
		ps.samples++
		s.byPhase[p] = ps
		if len(list) > faultCap {
			candidates = append(candidates, candidate{p, time.Now(), list})
		} else {
			s.count(p, len(list), list)
		}
	}
	for _, c := range candidates {
		n := 0
		for _, cl := range c.list {
			if mine(cl, c.at) {
				n++
			}
		}
		if n <= faultCap {
			s.notMine++
		}
		s.count(c.phase, n, c.list)
	}
	return s
}

// count adds a sample of phase listing n of the client's sockets.
func (s *serverSamples) count(phase string, n int, list []testserver.ClientInfo) {
	if n > s.max {
		s.max, s.maxPhase = n, phase
	}
	ps := s.byPhase[phase]
	ps.max = max(ps.max, n)
	if n > faultCap {
		s.over++
		ps.over++
		if s.first == "" {
			s.first = describeSockets(phase, list)
		}
	}
	s.byPhase[phase] = ps
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
