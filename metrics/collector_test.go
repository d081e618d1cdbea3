package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/metrics"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

const maxConns = 8

var kinds = []string{"command", "blocking", "pipeline", "conn", "pubsub"}

// newClient returns a client of a fresh miniredis with a tracker of its own,
// closed at the end of the test.
func newClient(t *testing.T, opts ...pool.Option) (*pool.Client, *miniredis.Miniredis) {
	t.Helper()
	srv := miniredis.RunT(t)
	cl := newClientOf(t, srv.Addr(), opts...)
	t.Cleanup(func() { _ = cl.Close() })
	return cl, srv
}

func newClientOf(t *testing.T, addr string, opts ...pool.Option) *pool.Client {
	t.Helper()
	opts = append([]pool.Option{
		pool.WithMaxConnections(maxConns),
		pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)
	cl, err := pool.NewClient(&redis.Options{Addr: addr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// series gathers reg and returns every sample as "name{l1="v1",l2="v2"}" →
// value, labels in the order the registry sorts them (by name).
func series(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			if _, dup := out[key]; dup {
				t.Fatalf("series %s gathered twice", key)
			}
			out[key] = value(mf.GetType(), m)
		}
	}
	return out
}

func value(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// expected renders the exposition text of the gathered family name with the
// given sample lines, taking HELP from the registry: GatherAndCompare then
// checks the type, the label sets and the values, not the wording.
func expected(t *testing.T, reg prometheus.Gatherer, name, body string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return fmt.Sprintf("# HELP %s %s\n# TYPE %s %s\n%s", name, mf.GetHelp(), name,
				strings.ToLower(mf.GetType().String()), body)
		}
	}
	t.Fatalf("%s not gathered", name)
	return ""
}

// perKind renders one sample line per kind of a client-and-kind gauge,
// values from want (0 for kinds not in it).
func perKind(name, client string, want map[string]float64) string {
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s{client=%q,kind=%q} %g\n", name, client, k, want[k])
	}
	return b.String()
}

func TestCollectorCountsConnsAndPubSubs(t *testing.T) {
	ctx := context.Background()
	cl, srv := newClient(t)
	addr := srv.Addr()
	c := metrics.NewCollector(cl)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	cn1, cn2 := cl.Conn(), cl.Conn()
	for _, cn := range []*pool.Conn{cn1, cn2} {
		if err := cn.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sub := cl.Subscribe(ctx, "news")
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	// 28 series per client (17 of its statistics, 5+5 per kind, 1
	// dropped), 4 per tracker.
	if n, want := testutil.CollectAndCount(c), statSeries+reportSeries+trackerSeries; n != want {
		t.Errorf("CollectAndCount = %d, want %d", n, want)
	}
	checkMetrics(t, c)
	if n := testutil.CollectAndCount(c, "redisleak_outstanding_checkouts"); n != len(kinds) {
		t.Errorf("outstanding series = %d, want one per kind (%d)", n, len(kinds))
	}

	err := testutil.GatherAndCompare(reg, strings.NewReader(
		expected(t, reg, "redisleak_outstanding_checkouts",
			perKind("redisleak_outstanding_checkouts", addr, map[string]float64{"conn": 2, "pubsub": 1}))+
			expected(t, reg, "redisleak_max_connections",
				fmt.Sprintf("redisleak_max_connections{client=%q} %d\n", addr, maxConns))+
			expected(t, reg, "redisleak_dropped_checkouts",
				fmt.Sprintf("redisleak_dropped_checkouts{client=%q} 0\n", addr))+
			expected(t, reg, "redisleak_refusals_total",
				fmt.Sprintf("redisleak_refusals_total{client=%q} 0\n", addr)),
	), "redisleak_outstanding_checkouts", "redisleak_max_connections", "redisleak_dropped_checkouts", "redisleak_refusals_total")
	if err != nil {
		t.Fatal(err)
	}

	s := series(t, reg)
	open := func(kind string) float64 {
		return s[fmt.Sprintf("redisleak_open_connections{client=%q,kind=%q}", addr, kind)]
	}
	client := func(name string) float64 { return s[fmt.Sprintf("%s{client=%q}", name, addr)] }
	if open("conn") != 2 || open("pubsub") != 1 {
		t.Errorf("open conn, pubsub = %v, %v; want 2, 1", open("conn"), open("pubsub"))
	}
	total := open("pool") + open("conn") + open("pubsub")
	if total < 3 || total > maxConns {
		t.Errorf("open connections = %v, want between 3 and %d", total, maxConns)
	}
	if inUse, idle := client("redisleak_in_use_connections"), client("redisleak_idle_connections"); inUse+idle != total || inUse < 3 {
		t.Errorf("in use %v + idle %v, want %v with at least 3 in use", inUse, idle, total)
	}
	oldest := func(kind string) float64 {
		return s[fmt.Sprintf("redisleak_oldest_checkout_age_seconds{client=%q,kind=%q}", addr, kind)]
	}
	if oldest("conn") <= 0 || oldest("pubsub") <= 0 || oldest("blocking") != 0 {
		t.Errorf("oldest conn, pubsub, blocking = %v, %v, %v; want > 0, > 0, 0", oldest("conn"), oldest("pubsub"), oldest("blocking"))
	}
	tr := func(name string) float64 { return s[name+`{tracker="1"}`] }
	if co, rel := tr("redisleak_tracker_checkouts_total"), tr("redisleak_tracker_releases_total"); co-rel != 3 {
		t.Errorf("tracker checkouts %v - releases %v, want 3 outstanding", co, rel)
	}

	for _, cn := range []*pool.Conn{cn1, cn2} {
		if err := cn.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	err = testutil.GatherAndCompare(reg, strings.NewReader(
		expected(t, reg, "redisleak_outstanding_checkouts", perKind("redisleak_outstanding_checkouts", addr, nil))+
			expected(t, reg, "redisleak_oldest_checkout_age_seconds", perKind("redisleak_oldest_checkout_age_seconds", addr, nil)),
	), "redisleak_outstanding_checkouts", "redisleak_oldest_checkout_age_seconds")
	if err != nil {
		t.Fatal(err)
	}
	s = series(t, reg)
	if open("conn") != 0 || open("pubsub") != 0 {
		t.Errorf("after Close, open conn, pubsub = %v, %v; want 0, 0", open("conn"), open("pubsub"))
	}
	if co, rel := tr("redisleak_tracker_checkouts_total"), tr("redisleak_tracker_releases_total"); co != rel || co < 3 {
		t.Errorf("after Close, tracker checkouts %v, releases %v; want equal, at least 3", co, rel)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

// openAndDrop opens a Conn, runs a command on it and drops it without Close.
func openAndDrop(t *testing.T, cl *pool.Client) {
	t.Helper()
	if err := cl.Conn().Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorReportsDroppedConn(t *testing.T) {
	srv := miniredis.RunT(t)
	cl := newClientOf(t, srv.Addr())
	c := metrics.NewCollector(cl)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	openAndDrop(t, cl)
	dropped := fmt.Sprintf("redisleak_dropped_checkouts{client=%q}", srv.Addr())
	deadline := time.Now().Add(5 * time.Second)
	var s map[string]float64
	for {
		runtime.GC()
		s = series(t, reg)
		if s[dropped] == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s[dropped] != 1 {
		t.Fatalf("%s = %v, want 1", dropped, s[dropped])
	}
	if v := s[`redisleak_tracker_dropped_total{tracker="1"}`]; v != 1 {
		t.Errorf("tracker dropped = %v, want 1", v)
	}
	// The dropped Conn stays outstanding (and reported), its socket returned.
	if v := s[fmt.Sprintf("redisleak_outstanding_checkouts{client=%q,kind=\"conn\"}", srv.Addr())]; v != 1 {
		t.Errorf("outstanding conn = %v, want 1", v)
	}
	if err := cl.Close(); !errors.Is(err, pool.ErrLeaked) {
		t.Errorf("Close = %v, want ErrLeaked", err)
	}
}

func TestCollectorNamesAndTrackers(t *testing.T) {
	srv := miniredis.RunT(t)
	shared := tracker.New()
	a := newClientOf(t, srv.Addr(), pool.WithTracker(shared))
	b := newClientOf(t, srv.Addr(), pool.WithTracker(shared))
	d := newClientOf(t, srv.Addr())
	def, err := pool.NewClient(&redis.Options{Addr: srv.Addr()}, pool.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*pool.Client{a, b, d, def} {
		t.Cleanup(func() { _ = cl.Close() })
	}

	c := metrics.NewCollector(a, b)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	c.Add("cache", d)
	c.Add("default", def)

	clientsOf := func(s map[string]float64) []string {
		var out []string
		for k := range s {
			if name, ok := strings.CutPrefix(k, "redisleak_max_connections{client="); ok {
				out = append(out, strings.Trim(name, `"}`))
			}
		}
		slices.Sort(out)
		return out
	}
	trackersOf := func(s map[string]float64) []string {
		var out []string
		for k := range s {
			if name, ok := strings.CutPrefix(k, "redisleak_tracker_checkouts_total{tracker="); ok {
				out = append(out, strings.Trim(name, `"}`))
			}
		}
		slices.Sort(out)
		return out
	}

	s := series(t, reg)
	wantClients := []string{srv.Addr(), srv.Addr() + "#2", "cache", "default"}
	slices.Sort(wantClients)
	if got := clientsOf(s); !slices.Equal(got, wantClients) {
		t.Errorf("clients = %q, want %q", got, wantClients)
	}
	// a and b share a tracker: its counters are exported once.
	if got, want := trackersOf(s), []string{"1", "2", "default"}; !slices.Equal(got, want) {
		t.Errorf("trackers = %q, want %q", got, want)
	}

	// Add under a name in use replaces the client; its tracker goes when unused.
	c.Add("cache", a)
	c.Remove(srv.Addr() + "#2")
	c.Remove("no such client")
	s = series(t, reg)
	if got, want := clientsOf(s), []string{srv.Addr(), "cache", "default"}; !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("after Add and Remove, clients = %q, want %q", got, want)
	}
	if got, want := trackersOf(s), []string{"1", "default"}; !slices.Equal(got, want) {
		t.Errorf("after Add and Remove, trackers = %q, want %q", got, want)
	}
	c.Remove(srv.Addr())
	c.Remove("cache")
	c.Remove("default")
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("empty collector collected %d series", n)
	}
}

// dropClient creates a client, uses it and drops it without Close.
func dropClient(t *testing.T, c *metrics.Collector, addr string, tr *tracker.Tracker) {
	t.Helper()
	cl := newClientOf(t, addr, pool.WithTracker(tr))
	if err := cl.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	c.Add("dropped", cl)
}

// The collector does not keep its clients alive: one dropped without Close is
// still reported by its tracker.
func TestCollectorDoesNotHideDroppedClient(t *testing.T) {
	srv := miniredis.RunT(t)
	tr := tracker.New()
	c := metrics.NewCollector()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	dropClient(t, c, srv.Addr(), tr)

	deadline := time.Now().Add(5 * time.Second)
	var s map[string]float64
	for {
		runtime.GC()
		s = series(t, reg)
		if s[`redisleak_tracker_dropped_total{tracker="1"}`] == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := s[`redisleak_tracker_dropped_total{tracker="1"}`]; v != 1 {
		t.Fatalf("tracker dropped = %v, want 1 (the client)", v)
	}
	if _, ok := s[`redisleak_max_connections{client="dropped"}`]; ok {
		t.Error("a garbage-collected client is still exported")
	}
	if r := tr.Report(); r.Len() != 1 || r.Groups[0].Kind != tracker.KindClient {
		t.Errorf("tracker report:\n%s\nwant one dropped client", r)
	}
}

func TestCollectorConcurrentUse(t *testing.T) {
	cl, _ := newClient(t)
	c := metrics.NewCollector()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	var wg sync.WaitGroup
	for i := range 4 {
		name := fmt.Sprintf("c%d", i)
		wg.Go(func() {
			for range 50 {
				c.Add(name, cl)
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
				c.Remove(name)
			}
		})
	}
	wg.Wait()
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("collected %d series after every client was removed", n)
	}
}

func TestNewCollectorPanicsOnNil(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewCollector(nil) did not panic")
		}
	}()
	metrics.NewCollector(nil)
}
