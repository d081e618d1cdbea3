package pool_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// ringOptions are the options of a ring of srvs, named "shard<i>".
func ringOptions(srvs ...*testserver.Server) *redis.RingOptions {
	addrs := make(map[string]string, len(srvs))
	for i, s := range srvs {
		addrs["shard"+string(rune('a'+i))] = s.Addr()
	}
	return &redis.RingOptions{Addrs: addrs, ClientName: "ringtest"}
}

// TestRingTracksShards: a Ring's Conns and Pub/Subs are tracked on the shard
// that serves them, each node named "<name>/<addr>"; Close reports every
// shard's leaks in one error and leaves no socket open.
func TestRingTracksShards(t *testing.T) {
	a, b := testserver.Any(t), testserver.Any(t)
	tr := tracker.New()
	r, err := pool.NewRing(ringOptions(a, b), pool.WithTracker(tr), pool.WithMaxConnectionsPerNode(4))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		if err := r.Set(ctx, "k"+string(rune('a'+i)), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	connLine := thisLine() + 1
	cn, err := r.ConnForKey(ctx, "ka")
	if err != nil {
		t.Fatal(err)
	}
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	ps, psLine := r.Subscribe(ctx, "news"), thisLine()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	rep := r.Report()
	if rep.Len() != 2 {
		t.Fatalf("report has %d checkouts, want the Conn and the Pub/Sub:\n%s", rep.Len(), rep)
	}
	for _, g := range rep.Groups {
		want := map[tracker.Kind]int{tracker.KindConn: connLine, tracker.KindPubSub: psLine}[g.Kind]
		if g.Site.Line != want || !strings.HasSuffix(g.Site.File, "ring_test.go") {
			t.Errorf("%s at %s, want ring_test.go:%d", g.Kind, g.Site.ShortPos(), want)
		}
		if len(g.Scopes) != 1 || !strings.HasPrefix(g.Scopes[0], "ringtest/") ||
			(g.Scopes[0] != "ringtest/"+a.Addr() && g.Scopes[0] != "ringtest/"+b.Addr()) {
			t.Errorf("%s held by %v, want one node named ringtest/<addr>", g.Kind, g.Scopes)
		}
	}
	st := r.Stats()
	if len(st.Nodes) != 2 || st.Open.Conn != 1 || st.Open.PubSub != 1 || st.Outstanding != 2 {
		t.Errorf("Stats: %d nodes, open %+v, %d outstanding; want 2 nodes, 1 Conn, 1 Pub/Sub, 2 outstanding", len(st.Nodes), st.Open, st.Outstanding)
	}
	for name, ns := range st.Nodes {
		if ns.MaxConnections != 4 || ns.SlotsHeld() > 4 {
			t.Errorf("node %s: cap %d, %d slots held; want cap 4", name, ns.MaxConnections, ns.SlotsHeld())
		}
	}

	err = r.Close()
	var leak *pool.LeakError
	if !errors.Is(err, pool.ErrLeaked) || !errors.As(err, &leak) || leak.Report.Len() != 2 {
		t.Fatalf("Close: %v; want ErrLeaked with the Conn and the Pub/Sub", err)
	}
	if err := r.Close(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("second Close: %v, want redis.ErrClosed", err)
	}
	// A node go-redis asks for once the client closed (a reload in flight)
	// comes closed, and leaves nothing running (TestMain's goleak check).
	late := r.Options().NewClient(&redis.Options{Addr: a.Addr()})
	if err := late.Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("a node client made after Close: Ping = %v, want redis.ErrClosed", err)
	}
	for _, s := range []*testserver.Server{a, b} {
		if s.Real() {
			if n := len(namedClients(t, s, "ringtest.")); n != 0 {
				t.Errorf("%s: %d sockets of the ring left after Close", s.Addr(), n)
			}
		}
	}
}

// namedClients are the connections of s whose name starts with prefix.
func namedClients(t *testing.T, s *testserver.Server, prefix string) []testserver.ClientInfo {
	t.Helper()
	var out []testserver.ClientInfo
	for _, c := range s.Clients(t) {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// TestGroupBadInput: the constructors of cluster, ring, failover and
// universal clients name the field and value they refuse.
func TestGroupBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func() error
		want string
	}{
		{"nil cluster", func() error { _, err := pool.NewClusterClient(nil); return err }, "nil *redis.ClusterOptions"},
		{"cluster NewClient", func() error {
			_, err := pool.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"x:1"}, NewClient: redis.NewClient})
			return err
		}, "redis.ClusterOptions.NewClient is set"},
		{"cluster no addrs", func() error { _, err := pool.NewClusterClient(&redis.ClusterOptions{}); return err }, "Addrs is empty"},
		{"cluster pool size", func() error {
			_, err := pool.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"x:1"}, PoolSize: -1})
			return err
		}, "pool: NewClusterClient: redis.ClusterOptions.PoolSize is -1"},
		{"cluster per-node", func() error {
			_, err := pool.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"x:1"}}, pool.WithMaxConnectionsPerNode(-2))
			return err
		}, "WithMaxConnectionsPerNode(-2)"},
		{"cluster pipeline", func() error {
			_, err := pool.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"x:1"}, PipelinePoolSize: 5}, pool.WithMaxConnectionsPerNode(5))
			return err
		}, "redis.ClusterOptions.PipelinePoolSize is 5"},
		{"nil ring", func() error { _, err := pool.NewRing(nil); return err }, "nil *redis.RingOptions"},
		{"ring NewClient", func() error {
			_, err := pool.NewRing(&redis.RingOptions{NewClient: redis.NewClient})
			return err
		}, "redis.RingOptions.NewClient is set"},
		{"ring timeout", func() error {
			_, err := pool.NewRing(&redis.RingOptions{PoolTimeout: -1})
			return err
		}, "pool: NewRing: redis.RingOptions.PoolTimeout is -1ns"},
		{"nil failover", func() error { _, err := pool.NewFailoverClient(nil); return err }, "nil *redis.FailoverOptions"},
		{"failover no master", func() error { _, err := pool.NewFailoverClient(&redis.FailoverOptions{}); return err }, "MasterName is empty"},
		{"failover idle", func() error {
			_, err := pool.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", MinIdleConns: -3})
			return err
		}, "pool: NewFailoverClient: redis.FailoverOptions.MinIdleConns is -3"},
		{"nil universal", func() error { _, err := pool.NewUniversalClient(nil); return err }, "nil *redis.UniversalOptions"},
		{"failover cluster total", func() error {
			_, err := pool.NewUniversalClient(&redis.UniversalOptions{MasterName: "m", RouteRandomly: true}, pool.WithMaxConnections(3))
			return err
		}, "failover cluster client (MasterName with RouteByLatency, RouteRandomly or IsClusterMode) builds its own; use WithMaxConnectionsPerNode"},
		{"nil option", func() error { _, err := pool.NewRing(&redis.RingOptions{}, nil); return err }, "nil Option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.make()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestUniversalDispatch: NewUniversalClient builds what go-redis's would, each
// tracked by the library.
func TestUniversalDispatch(t *testing.T) {
	srv := testserver.Any(t)
	c, err := pool.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr()}}, pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*pool.Client); !ok {
		t.Errorf("one address: %T, want *pool.Client", c)
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Error(err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	cc, err := pool.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr(), "127.0.0.1:1"}}, pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cc.(*pool.ClusterClient); !ok {
		t.Errorf("two addresses: %T, want *pool.ClusterClient", cc)
	}
	if err := cc.Close(); err != nil {
		t.Error(err)
	}
	fc, err := pool.NewUniversalClient(&redis.UniversalOptions{MasterName: "m", Addrs: []string{"127.0.0.1:1"}}, pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains([]string{"m"}, strings.TrimPrefix(fc.(*pool.Client).Name(), "pool.test/")) {
		t.Errorf("failover client named %q", fc.(*pool.Client).Name())
	}
	_ = fc.Close()
}
