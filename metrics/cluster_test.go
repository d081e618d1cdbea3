package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/metrics"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

var discard = slog.New(slog.DiscardHandler)

// Series per client: every family of the client's statistics (17: 5 always,
// 10 that need a pool the library built, 2 that need a cap), 11 from its
// report (5 outstanding, 5 oldest, 1 dropped). Per node of a cluster or
// ring, the 17 of the statistics again.
const (
	statSeries       = 17
	statSeriesPooled = 10
	statSeriesCapped = 2
	reportSeries     = 11
	trackerSeries    = 4
)

// checkMetrics lints what c collects, with client_golang's linter and with
// promtool check metrics (when promtool is on PATH; CI sets
// REDISLEAK_REQUIRE_SERVER=1, and then a missing promtool is a failure).
func checkMetrics(t *testing.T, c prometheus.Collector) {
	t.Helper()
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("REDISLEAK_REQUIRE_SERVER") == "1" {
			t.Fatalf("promtool not on PATH and REDISLEAK_REQUIRE_SERVER=1: %v", err)
		}
		t.Log("promtool not on PATH: metrics not checked with promtool check metrics")
		return
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	text := buf.String()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\ninput:\n%s", err, out, text)
	}
}

// labelValues returns the sorted values of label in the series of family
// name whose client is client.
func labelValues(s map[string]float64, name, client, label string) []string {
	var out []string
	prefix := name + "{"
	for k := range s {
		if !strings.HasPrefix(k, prefix) || !strings.Contains(k, fmt.Sprintf("client=%q", client)) {
			continue
		}
		_, rest, ok := strings.Cut(k, label+`="`)
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(rest, `"`)
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkNodesAddUp checks that the node series of client add up to its
// client series, for every figure exported per node.
func checkNodesAddUp(t *testing.T, s map[string]float64, client string, nodes []string) {
	t.Helper()
	for _, fam := range []string{
		"open_connections", "in_use_connections", "idle_connections", "dialing_connections", "draining_connections",
		"waiting_callers", "wait_count_total", "wait_duration_seconds_total", "refusals_total",
		"canceled_waits_total", "shed_total", "drain_timeouts_total", "dead_conns", "reclaimed_conns_total",
	} {
		kinds := []string{""}
		if fam == "open_connections" {
			kinds = []string{"conn", "pool", "pubsub"}
		}
		for _, kind := range kinds {
			kl := ""
			if kind != "" {
				kl = fmt.Sprintf(",kind=%q", kind)
			}
			total, ok := s[fmt.Sprintf("redisleak_%s{client=%q%s}", fam, client, kl)]
			if !ok {
				t.Errorf("redisleak_%s{client=%q%s} not exported", fam, client, kl)
				continue
			}
			var sum float64
			for _, n := range nodes {
				v, ok := s[fmt.Sprintf("redisleak_node_%s{client=%q%s,node=%q}", fam, client, kl, n)]
				if !ok {
					t.Errorf("redisleak_node_%s{client=%q%s,node=%q} not exported", fam, client, kl, n)
				}
				sum += v
			}
			if d := sum - total; d > 1e-9 || d < -1e-9 {
				t.Errorf("redisleak_node_%s%s: nodes add up to %v, client %v", fam, kl, sum, total)
			}
		}
	}
}

// TestCollectorRing: a Ring over two servers is exported under its name, the
// total (the cap across shards) in the client series and each shard under
// the label node, the nodes adding up to the total.
func TestCollectorRing(t *testing.T) {
	ctx := context.Background()
	a, b := testserver.Any(t), testserver.Any(t)
	r, err := pool.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": a.Addr(), "b": b.Addr()}, ClientName: "ring"},
		pool.WithTracker(tracker.New()), pool.WithLogger(discard),
		pool.WithMaxConnectionsPerNode(4), pool.WithMaxConnections(6))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	c := metrics.NewCollector(r)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	for i := range 20 {
		if err := r.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cn, err := r.ConnForKey(ctx, "ka")
	if err != nil {
		t.Fatal(err)
	}
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	sub := r.Subscribe(ctx, "news")
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	checkMetrics(t, c)
	name := r.Name()
	s := series(t, reg)
	wantNodes := []string{"ring/" + a.Addr(), "ring/" + b.Addr()}
	slices.Sort(wantNodes)
	nodes := labelValues(s, "redisleak_node_max_connections", name, "node")
	if !slices.Equal(nodes, wantNodes) {
		t.Fatalf("nodes = %q, want %q", nodes, wantNodes)
	}
	if n, want := testutil.CollectAndCount(c), statSeries+reportSeries+len(nodes)*statSeries+trackerSeries; n != want {
		t.Errorf("CollectAndCount = %d, want %d", n, want)
	}
	if v := s[fmt.Sprintf("redisleak_max_connections{client=%q}", name)]; v != 6 {
		t.Errorf("max connections = %v, want the total cap 6", v)
	}
	for _, n := range nodes {
		if v := s[fmt.Sprintf("redisleak_node_max_connections{client=%q,node=%q}", name, n)]; v != 4 {
			t.Errorf("node %s: max connections = %v, want the per-node cap 4", n, v)
		}
	}
	checkNodesAddUp(t, s, name, nodes)
	open := func(kind string) float64 {
		return s[fmt.Sprintf("redisleak_open_connections{client=%q,kind=%q}", name, kind)]
	}
	// The Conn takes an idle pooled socket, and the Pub/Sub may close one
	// (pool.Stats.Shed): the pool's count is not known.
	if open("conn") != 1 || open("pubsub") != 1 {
		t.Errorf("open conn, pubsub = %v, %v; want 1, 1", open("conn"), open("pubsub"))
	}
	var conns []float64
	for _, n := range nodes {
		conns = append(conns, s[fmt.Sprintf("redisleak_node_open_connections{client=%q,kind=\"conn\",node=%q}", name, n)])
	}
	if slices.Max(conns) != 1 {
		t.Errorf("open Conns per node = %v, want the Conn on one node", conns)
	}
	outstanding := func(kind string) float64 {
		return s[fmt.Sprintf("redisleak_outstanding_checkouts{client=%q,kind=%q}", name, kind)]
	}
	if outstanding("conn") != 1 || outstanding("pubsub") != 1 {
		t.Errorf("outstanding conn, pubsub = %v, %v; want 1, 1", outstanding("conn"), outstanding("pubsub"))
	}
	if _, ok := s[fmt.Sprintf("redisleak_sentinel_connections{client=%q}", name)]; ok {
		t.Error("a ring exports redisleak_sentinel_connections")
	}

	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	s = series(t, reg)
	if open("conn") != 0 || open("pubsub") != 0 || outstanding("conn") != 0 || outstanding("pubsub") != 0 {
		t.Errorf("after Close: open conn, pubsub = %v, %v, outstanding %v, %v; want 0", open("conn"), open("pubsub"), outstanding("conn"), outstanding("pubsub"))
	}
	checkNodesAddUp(t, s, name, nodes)
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCollectorCluster: a cluster client, as pool.NewUniversalClient returns
// it, is exported with every node it uses under the label node; with a cap
// per node and none in total, the client's max_connections is 0 (no total
// cap) and each node's is its cap.
func TestCollectorCluster(t *testing.T) {
	ctx := context.Background()
	cl := testserver.Cluster(t)
	uc, err := pool.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs(), ClientName: "clu"},
		pool.WithTracker(tracker.New()), pool.WithLogger(discard), pool.WithMaxConnectionsPerNode(5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = uc.Close() })
	cc, ok := uc.(*pool.ClusterClient)
	if !ok {
		t.Fatalf("NewUniversalClient: %T, want *pool.ClusterClient", uc)
	}
	c := metrics.NewCollector(uc)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	for i := range 50 {
		if err := uc.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cn, err := cc.ConnForKey(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	checkMetrics(t, c)
	name := cc.Name()
	s := series(t, reg)
	nodes := labelValues(s, "redisleak_node_max_connections", name, "node")
	for _, m := range cl.Masters(t) {
		if !slices.Contains(nodes, "clu/"+m) {
			t.Errorf("master %s not exported: nodes %q", m, nodes)
		}
	}
	if n, want := testutil.CollectAndCount(c), statSeries+reportSeries+len(nodes)*statSeries+trackerSeries; n != want {
		t.Errorf("CollectAndCount = %d, want %d (%d nodes)", n, want, len(nodes))
	}
	if v, ok := s[fmt.Sprintf("redisleak_max_connections{client=%q}", name)]; !ok || v != 0 {
		t.Errorf("max connections = %v (exported %v), want 0: no total cap", v, ok)
	}
	for _, n := range nodes {
		if v := s[fmt.Sprintf("redisleak_node_max_connections{client=%q,node=%q}", name, n)]; v != 5 {
			t.Errorf("node %s: max connections = %v, want the per-node cap 5", n, v)
		}
	}
	checkNodesAddUp(t, s, name, nodes)
	if v := s[fmt.Sprintf("redisleak_open_connections{client=%q,kind=\"conn\"}", name)]; v != 1 {
		t.Errorf("open conn = %v, want 1", v)
	}
	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := uc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCollectorCapSeries: the draining figures, which only a cap makes
// non-zero, are exported for a client with a cap and not for one without.
func TestCollectorCapSeries(t *testing.T) {
	srv := testserver.Any(t)
	capped := newClientOf(t, srv.Addr())
	uncapped := newClientOf(t, srv.Addr(), pool.WithMaxConnections(0))
	for _, cl := range []*pool.Client{capped, uncapped} {
		t.Cleanup(func() { _ = cl.Close() })
		if err := cl.Ping(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c := metrics.NewCollector()
	c.Add("capped", capped)
	c.Add("uncapped", uncapped)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	checkMetrics(t, c)
	if n, want := testutil.CollectAndCount(c), 2*(statSeries+reportSeries)-statSeriesCapped+2*trackerSeries; n != want {
		t.Errorf("CollectAndCount = %d, want %d", n, want)
	}
	s := series(t, reg)
	for _, fam := range []string{"redisleak_draining_connections", "redisleak_drain_timeouts_total"} {
		if _, ok := s[fam+`{client="capped"}`]; !ok {
			t.Errorf("%s not exported for a client with a cap", fam)
		}
		if _, ok := s[fam+`{client="uncapped"}`]; ok {
			t.Errorf("%s exported for a client without a cap", fam)
		}
	}
	for _, fam := range []string{"redisleak_dialing_connections", "redisleak_waiting_callers", "redisleak_dead_conns", "redisleak_reclaimed_conns_total"} {
		for _, client := range []string{"capped", "uncapped"} {
			if v, ok := s[fmt.Sprintf("%s{client=%q}", fam, client)]; !ok || v != 0 {
				t.Errorf("%s{client=%q} = %v (exported %v), want 0", fam, client, v, ok)
			}
		}
	}
	if v, ok := s[`redisleak_max_connections{client="uncapped"}`]; !ok || v != 0 {
		t.Errorf("max connections of a client without a cap = %v (exported %v), want 0", v, ok)
	}
	for k := range s {
		if strings.HasPrefix(k, "redisleak_node_") || strings.HasPrefix(k, "redisleak_sentinel_") {
			t.Errorf("a single client exports %s", k)
		}
	}
}

// TestCollectorFailover: a failover client exports the sockets it holds to
// the sentinels, from the first scrape that finds one open.
func TestCollectorFailover(t *testing.T) {
	sn := testserver.Sentinel(t)
	// A failover client's dial in flight at Close retries for about a
	// second and a half (go-redis's backoff); wait for it to end.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		for end := time.Now().Add(5 * time.Second); goleak.Find(ignore) != nil && time.Now().Before(end); {
			time.Sleep(100 * time.Millisecond)
		}
	})
	fc, err := pool.NewFailoverClient(&redis.FailoverOptions{MasterName: sn.MasterName(), SentinelAddrs: sn.SentinelAddrs(), ClientName: "fo"},
		pool.WithTracker(tracker.New()), pool.WithLogger(discard), pool.WithMaxConnections(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fc.Close() })
	c := metrics.NewCollector(fc)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	key := fmt.Sprintf("redisleak_sentinel_connections{client=%q}", fc.Name())

	if s := series(t, reg); s[key] != 0 {
		t.Errorf("before any command, %s = %v, want none or 0", key, s[key])
	}
	if err := fc.Set(context.Background(), "k", 1, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	s := series(t, reg)
	if v, ok := s[key]; !ok || v < 1 {
		t.Errorf("%s = %v (exported %v), want at least 1", key, v, ok)
	}
	checkMetrics(t, c)
	if err := fc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// Once seen, the series stays, at 0 when no sentinel socket is open.
	if v, ok := series(t, reg)[key]; !ok || v != 0 {
		t.Errorf("after Close, %s = %v (exported %v), want 0", key, v, ok)
	}
}

// source is a client of made-up statistics.
type source struct {
	st pool.Stats
	tr *tracker.Tracker
}

func (s source) Stats() pool.Stats         { return s.st }
func (s source) Report() tracker.Report    { return tracker.Report{} }
func (s source) Tracker() *tracker.Tracker { return s.tr }

// TestCollectorNodesWithoutPool: the nodes of a failover cluster client,
// whose pools go-redis builds itself, count only their sockets (their
// PoolSize is 0); the pool figures, always 0 for them, are not exported, for
// the nodes or the client, except the client's refusals and sheds, which it
// counts as a whole when its nodes have a cap.
func TestCollectorNodesWithoutPool(t *testing.T) {
	node := pool.Stats{MaxConnections: 3, OpenConnections: 2, Open: pool.OpenByKind{Pool: 2}, Dialing: 1}
	st := pool.Stats{OpenConnections: 4, Open: pool.OpenByKind{Pool: 4}, Dialing: 2,
		Nodes: map[string]pool.Stats{"fcc/127.0.0.1:1": node, "fcc/127.0.0.1:2": node}}
	c := metrics.NewCollector()
	c.Add("fcc", source{st: st, tr: tracker.New()})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	checkMetrics(t, c)
	perStats := statSeries - statSeriesPooled
	const whole = 2 // the client's refusals and sheds
	if n, want := testutil.CollectAndCount(c), perStats+whole+reportSeries+2*perStats+trackerSeries; n != want {
		t.Errorf("CollectAndCount = %d, want %d", n, want)
	}
	s := series(t, reg)
	for k := range s {
		for _, fam := range []string{"in_use", "idle", "waiting", "wait_", "refusals", "canceled", "shed", "dead", "reclaimed"} {
			if strings.Contains(k, "redisleak_node_"+fam) ||
				strings.Contains(k, "redisleak_"+fam) && fam != "refusals" && fam != "shed" {
				t.Errorf("%s exported for a client whose pools the library did not build", k)
			}
		}
	}
	for _, fam := range []string{"refusals_total", "shed_total"} {
		if _, ok := s[`redisleak_`+fam+`{client="fcc"}`]; !ok {
			t.Errorf("redisleak_%s not exported for a failover cluster client with a cap on its nodes", fam)
		}
	}
	if v := s[`redisleak_node_open_connections{client="fcc",kind="pool",node="fcc/127.0.0.1:2"}`]; v != 2 {
		t.Errorf("node open pool = %v, want 2", v)
	}
	if v := s[`redisleak_dialing_connections{client="fcc"}`]; v != 2 {
		t.Errorf("dialing = %v, want 2", v)
	}
}

func TestCollectorPanicsOnNilOfAnyType(t *testing.T) {
	for _, add := range []func(){
		func() { metrics.NewCollector((*pool.Client)(nil)) },
		func() { metrics.NewCollector((*pool.Ring)(nil)) },
		func() { metrics.NewCollector().Add("c", (*pool.ClusterClient)(nil)) },
		func() { metrics.NewCollector().Add("c", nil) },
		func() { metrics.NewCollector(source{tr: tracker.New()}) }, // no Name: use Add
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			add()
		}()
	}
}

// The collector refers weakly to a ring (or cluster) client too, whatever
// the static type it was added as: once the ring is closed and dropped, its
// series go.
func TestCollectorDoesNotKeepRing(t *testing.T) {
	c := metrics.NewCollector()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	const key = `redisleak_max_connections{client="ring"}`
	func() {
		r, err := pool.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": miniredis.RunT(t).Addr()}},
			pool.WithTracker(tracker.New()), pool.WithLogger(discard))
		if err != nil {
			t.Fatal(err)
		}
		var s metrics.Source = r
		c.Add("ring", s)
		if err := r.Ping(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		if _, ok := series(t, reg)[key]; !ok {
			t.Fatalf("%s not exported", key)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		runtime.GC()
		if _, ok := series(t, reg)[key]; !ok {
			return
		}
	}
	t.Errorf("%s still exported: the collector keeps the ring alive", key)
}
