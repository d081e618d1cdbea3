package pool_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// TestFailover: a failover client's data sockets stay under its cap on every
// address through SENTINEL FAILOVER; its sentinel sockets are counted apart,
// under their own cap per sentinel, and never take a data slot: under a cap
// of 1 the one data socket still serves commands.
func TestFailover(t *testing.T) {
	sn := testserver.Sentinel(t)
	// A dial go-redis's pool started before Close (a failover client's dial
	// asks a sentinel for the master first) retries, refused, with go-redis's
	// backoff for about a second and a half after Close: bare go-redis does
	// the same when a dial fails then. Nothing of the library's may remain.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		for end := time.Now().Add(5 * time.Second); goleak.Find(ignore) != nil && time.Now().Before(end); {
			time.Sleep(100 * time.Millisecond)
		}
		goleak.VerifyNone(t, ignore)
	})
	ctx := context.Background()
	for _, capacity := range []int{1, 3} {
		t.Run("cap"+strconv.Itoa(capacity), func(t *testing.T) {
			name := "failover" + strconv.Itoa(capacity)
			c, err := pool.NewFailoverClient(&redis.FailoverOptions{
				MasterName:    sn.MasterName(),
				SentinelAddrs: sn.SentinelAddrs(),
				ClientName:    name,
				PoolTimeout:   2 * time.Second,
			}, pool.WithTracker(tracker.New()), pool.WithMaxConnections(capacity))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Set(ctx, "f", 1, time.Minute).Err(); err != nil {
				t.Fatalf("SET under a cap of %d: %v", capacity, err)
			}
			// Conns hold every data slot: the data sockets are the cap's,
			// the sentinel sockets apart, and one more Conn is refused.
			var held []*pool.Conn
			for range capacity {
				cn := c.Conn()
				held = append(held, cn)
				if err := cn.Ping(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if s := c.Stats(); s.SentinelConnections == 0 || s.SlotsHeld() != capacity || s.Open.Conn != capacity {
				t.Errorf("Stats with %d Conns: %d sentinel sockets, %d data slots held, open %+v; want sentinel sockets counted apart and every data slot held by a Conn", capacity, s.SentinelConnections, s.SlotsHeld(), s.Open)
			}
			extra := c.Conn()
			if err := extra.Ping(ctx).Err(); !errors.Is(err, pool.ErrMaxConnections) {
				t.Errorf("a Conn beyond the cap of %d: %v, want a refusal", capacity, err)
			}
			_ = extra.Close()
			for _, cn := range held {
				_ = cn.Close()
			}

			quit := make(chan struct{})
			addrs := append([]string{sn.Master(t)}, sn.Replicas(t)...)
			over := make(chan string, 1)
			go func() {
				for !isClosed(quit) {
					for _, addr := range addrs {
						r, _, err := readNode(ctx, addr, sn.Node(addr).Admin(), name)
						if err == nil && r.named > capacity {
							select {
							case over <- addr + ": " + strconv.Itoa(r.named):
							default:
							}
						}
					}
				}
			}()
			run := clusterLoad{workers: 20}.start(c)
			time.Sleep(500 * time.Millisecond)
			newMaster := sn.Failover(t)
			waitFor(t, "a write on the new master", func() bool {
				return c.Set(ctx, "f", 2, time.Minute).Err() == nil && c.Stats().SlotsHeld() <= capacity
			})
			time.Sleep(500 * time.Millisecond)
			run.stop()
			close(quit)
			t.Logf("cap %d: failover to %s; %d commands ok, %d failed; first error %s", capacity, newMaster, run.ok.Load(), run.fail.Load(), deref(run.firstErr.Load()))
			select {
			case s := <-over:
				t.Errorf("a data node listed more of the client's sockets than the cap of %d: %s", capacity, s)
			default:
			}
			for _, s := range sn.Sentinels() {
				if n := len(namedClients(t, s, name)); n > capacity {
					t.Errorf("sentinel %s lists %d of the client's sockets, above its cap of %d", s.Addr(), n, capacity)
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestFailoverClusterClient: go-redis's failover cluster client (through
// NewUniversalClient) has no hook to build its node clients; the library
// caps every socket per address and tracks the client as a whole: its
// Pub/Sub left open is reported at Close, its sockets never exceed the
// per-address cap, and what needs node clients is refused with the reason.
func TestFailoverClusterClient(t *testing.T) {
	// go-redis's failover cluster client never closes its sentinel Pub/Sub
	// (v9.23: ClusterClient.Close does not reach it), bare or not: its
	// listener and the Pub/Sub's goroutines stay. Nothing else may. The
	// slate is clean first, so that the goroutines TestMain is told to
	// ignore afterwards are those alone.
	goleak.VerifyNone(t, goRedisOwnLeaks...)
	sn := testserver.Sentinel(t)
	ctx := context.Background()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		sentinelLeaks := []goleak.Option{before,
			goleak.IgnoreTopFunction("github.com/redis/go-redis/v9.(*sentinelFailover).listen"),
			goleak.IgnoreTopFunction("github.com/redis/go-redis/v9.(*channel).initHealthCheck.func1"),
			goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9.(*channel).initMsgChan.func1")}
		for end := time.Now().Add(5 * time.Second); goleak.Find(sentinelLeaks...) != nil && time.Now().Before(end); {
			time.Sleep(100 * time.Millisecond)
		}
		goleak.VerifyNone(t, sentinelLeaks...)
		goRedisOwnLeaks = append(goRedisOwnLeaks, goleak.IgnoreCurrent())
	})
	opt := &redis.UniversalOptions{MasterName: sn.MasterName(), Addrs: sn.SentinelAddrs(), RouteRandomly: true, ClientName: "fcc"}
	if _, err := pool.NewUniversalClient(opt, pool.WithMaxConnections(4)); err == nil || !strings.Contains(err.Error(), "WithMaxConnectionsPerNode") {
		t.Errorf("a total cap: %v, want it refused naming WithMaxConnectionsPerNode", err)
	}
	uc, err := pool.NewUniversalClient(opt, pool.WithTracker(tracker.New()), pool.WithMaxConnectionsPerNode(3))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := uc.(*pool.ClusterClient)
	if !ok {
		t.Fatalf("%T, want *pool.ClusterClient", uc)
	}
	if _, err := c.ConnForKey(ctx, "k"); err == nil {
		t.Error("ConnForKey on a failover cluster client: want an error")
	}
	run := clusterLoad{workers: 20}.start(c)
	ps, line := c.Subscribe(ctx, "fcc"), thisLine()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	run.stop()
	for _, addr := range append([]string{sn.Master(t)}, sn.Replicas(t)...) {
		if n := len(namedClients(t, sn.Node(addr), "fcc")); n > 3 {
			t.Errorf("%s lists %d of the client's sockets, above the per-address cap of 3", addr, n)
		}
	}
	st := c.Stats()
	if len(st.Nodes) == 0 || st.Open.PubSub != 1 {
		t.Errorf("Stats: %d nodes, open %+v; want the addresses counted and the Pub/Sub", len(st.Nodes), st.Open)
	}
	for name, ns := range st.Nodes {
		if ns.MaxConnections != 3 || ns.SlotsHeld() > 3 {
			t.Errorf("node %s: cap %d, %d slots held; want cap 3", name, ns.MaxConnections, ns.SlotsHeld())
		}
	}
	t.Logf("%d commands ok, %d failed; first error %s", run.ok.Load(), run.fail.Load(), deref(run.firstErr.Load()))
	// One slot of each node is kept for a Pub/Sub, since go-redis's node
	// pools cannot lend it a turn: the Pub/Sub opened under load takes it,
	// and no pooled socket is closed for it. (A pool as large as the cap
	// would dial back, under load, each socket closed to make room, and each
	// such dial close the next: the load shed tens of sockets a second.)
	if shed := c.Stats().Shed; shed != 0 {
		t.Errorf("%d pooled sockets closed under load with one Pub/Sub open; want 0: a Pub/Sub within a node's kept slot takes no pooled socket's", shed)
	}
	_ = c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		if n := node.Options().PoolSize; n != 2 {
			t.Errorf("go-redis's client of %s has PoolSize %d; want 2 under a per-node cap of 3", node.Options().Addr, n)
		}
		return nil
	})

	// Idle pooled sockets fill every node's cap after the load. A Pub/Sub
	// gets its socket by closing one of them, as bare go-redis would serve
	// it; once the Pub/Subs themselves fill a node's cap, the next is
	// refused with a LimitError that names the node and the client's
	// holders, as a single client's refusal does.
	var refused *pool.LimitError
	var extra []*redis.PubSub
	served, late := 0, 0
	for i := 0; i < 20 && refused == nil; i++ {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		p := c.Subscribe(sctx, fmt.Sprintf("fcc-extra-%d", i))
		extra = append(extra, p)
		_, err := p.Receive(sctx)
		cancel()
		switch {
		case err == nil:
			served++
		case errors.Is(err, pool.ErrMaxConnections):
			if !errors.As(err, &refused) {
				t.Errorf("refusal %v: not a *pool.LimitError", err)
			}
		case errors.Is(err, context.DeadlineExceeded):
			// The deadline passed while a slot was free: go-redis's own
			// pool may take the slot a shed frees first. No refusal then.
			late++
		default:
			t.Errorf("Pub/Sub %d: %v", i, err)
		}
	}
	shed := c.Stats().Shed
	t.Logf("%d Pub/Subs served, %d past their deadline with a slot free, %d idle sockets shed, then refused: %v", served, late, shed, refused != nil)
	for _, p := range extra {
		_ = p.Close()
	}
	switch {
	case served == 0 || shed == 0:
		t.Errorf("%d Pub/Subs served, %d idle sockets shed, before a refusal: a Pub/Sub must get an idle pooled socket's slot", served, shed)
	case refused == nil:
		t.Error("no Pub/Sub refused with every slot of its node held by Pub/Subs: want a refusal matching ErrMaxConnections")
	case c.Stats().Timeouts == 0:
		t.Errorf("Stats().Timeouts 0 after a refusal")
	case refused.Node == "" || refused.Max != 3 || refused.Held < 3 || refused.Holders.Filter(func(g tracker.Group) bool { return g.Kind == tracker.KindPubSub }).Len() < 3:
		t.Errorf("refusal: node %q, cap %d, %d held, holders\n%s\nwant the node, cap 3 held, and the Pub/Subs holding it", refused.Node, refused.Max, refused.Held, refused.Holders)
	}

	err = c.Close()
	var le *pool.LeakError
	if !errors.As(err, &le) || le.Report.Len() != 1 || le.Report.Groups[0].Site.Line != line {
		t.Errorf("Close: %v; want the Pub/Sub at line %d reported", err, line)
	}
}
