package pool_test

// Acceptance of the cluster client on a real 6-node Redis Cluster (3 masters,
// 3 replicas), counting each node's sockets from the server's side.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// clusterOptions are the options of a client of cl named name.
func clusterOptions(cl *testserver.RedisCluster, name string) *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:                    cl.Addrs(),
		ClientName:               name,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// TestClusterLeaksNamedByNode: a dedicated node connection and an SSubscribe,
// never closed, are reported with their file:line and their node, and Close
// returns one ErrLeaked with both; a clean run reports nothing; after Close
// no node has a socket of the client.
func TestClusterLeaksNamedByNode(t *testing.T) {
	cl := testserver.Cluster(t)
	ctx := context.Background()
	for _, leak := range []bool{true, false} {
		t.Run(map[bool]string{true: "leaky", false: "clean"}[leak], func(t *testing.T) {
			name := "leaktest" + strconv.FormatBool(leak)
			c, err := pool.NewClusterClient(clusterOptions(cl, name), pool.WithTracker(tracker.New()), pool.WithMaxConnectionsPerNode(5))
			if err != nil {
				t.Fatal(err)
			}
			connLine := thisLine() + 1
			cn, err := c.ConnForKey(ctx, "orders:{42}")
			if err != nil {
				t.Fatal(err)
			}
			if err := cn.Set(ctx, "orders:{42}", "x", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			ps, psLine := c.SSubscribe(ctx, "events:{42}"), thisLine()
			if _, err := ps.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			master, err := c.MasterForKey(ctx, "orders:{42}")
			if err != nil {
				t.Fatal(err)
			}
			node := name + "/" + master.Options().Addr
			if !leak {
				_ = cn.Close()
				_ = ps.Close()
				if r := c.Report(); r.Len() != 0 {
					t.Errorf("clean run reports:\n%s", r)
				}
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				noSocketsLeft(t, cl, name)
				return
			}
			r := c.Report()
			if r.Len() != 2 {
				t.Fatalf("report has %d checkouts, want the Conn and the SSubscribe:\n%s", r.Len(), r)
			}
			for _, g := range r.Groups {
				want := map[tracker.Kind]int{tracker.KindConn: connLine, tracker.KindPubSub: psLine}[g.Kind]
				if g.Site.Line != want || !strings.HasSuffix(g.Site.File, "cluster_test.go") {
					t.Errorf("%s at %s, want cluster_test.go:%d", g.Kind, g.Site.ShortPos(), want)
				}
				if !slices.Equal(g.Scopes, []string{node}) {
					t.Errorf("%s held by %v, want node %s", g.Kind, g.Scopes, node)
				}
			}
			if !strings.Contains(r.String(), node) {
				t.Errorf("report text does not name node %s:\n%s", node, r)
			}
			err = c.Close()
			var le *pool.LeakError
			if !errors.As(err, &le) || le.Report.Len() != 2 || !strings.Contains(err.Error(), node) {
				t.Fatalf("Close: %v; want ErrLeaked with both, naming %s", err, node)
			}
			noSocketsLeft(t, cl, name)
		})
	}
}

// noSocketsLeft fails t if a node of cl lists a socket named for the client
// name.
func noSocketsLeft(t *testing.T, cl *testserver.RedisCluster, name string) {
	t.Helper()
	for _, addr := range cl.Addrs() {
		waitFor(t, "no socket of "+name+" on "+addr, func() bool {
			return len(namedClients(t, cl.Node(addr), name)) == 0
		})
	}
}

// clusterLoad is the load of the acceptance: workers running commands on
// random keys, subscribers on channels, and sharded subscribers.
type clusterLoad struct {
	workers, subscribers, sharded int
}

var acceptanceLoad = clusterLoad{workers: 100, subscribers: 10, sharded: 5}

// loadRun is one run of a clusterLoad on a client.
type loadRun struct {
	quit     chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	// window counts the commands done since it was last reset, for
	// throughput.
	window     atomic.Int64
	subscribed atomic.Int64 // subscribers whose subscription was confirmed
	refusals   atomic.Int64
	firstErr   atomic.Pointer[string]
}

// start runs l on c until stop.
func (l clusterLoad) start(c redis.UniversalClient) *loadRun {
	r := &loadRun{quit: make(chan struct{})}
	for i := range l.workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			key := "k" + strconv.Itoa(i)
			for n := 0; !isClosed(r.quit); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				var err error
				if n%2 == 0 {
					err = c.Set(ctx, key, n, time.Minute).Err()
				} else {
					err = c.Get(ctx, key).Err()
				}
				cancel()
				r.count(err)
			}
		}()
	}
	subscribe := func(sharded bool, i int) {
		defer r.wg.Done()
		ctx := context.Background()
		var ps *redis.PubSub
		if sharded {
			ps = c.SSubscribe(ctx, fmt.Sprintf("shard:{%d}", i))
		} else {
			ps = c.Subscribe(ctx, fmt.Sprintf("chan:%d", i))
		}
		defer ps.Close()
		confirmed := false
		for !isClosed(r.quit) {
			rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			msg, err := ps.Receive(rctx)
			cancel()
			if err == nil && !confirmed {
				if _, ok := msg.(*redis.Subscription); ok {
					confirmed = true
					r.subscribed.Add(1)
				}
			}
		}
	}
	for i := range l.subscribers {
		r.wg.Add(1)
		go subscribe(false, i)
	}
	for i := range l.sharded {
		r.wg.Add(1)
		go subscribe(true, i)
	}
	return r
}

func (r *loadRun) count(err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		r.ok.Add(1)
		r.window.Add(1)
		return
	}
	r.fail.Add(1)
	if errors.Is(err, pool.ErrMaxConnections) {
		r.refusals.Add(1)
	}
	s := err.Error()
	r.firstErr.CompareAndSwap(nil, &s)
}

func (r *loadRun) stop() {
	close(r.quit)
	r.wg.Wait()
}

// throughput counts the commands done in d.
func (r *loadRun) throughput(d time.Duration) int64 {
	r.window.Store(0)
	time.Sleep(d)
	return r.window.Load()
}

// nodeSamples is what the nodes' CLIENT LIST showed of one client.
//
// A socket shows no name until go-redis's handshake names it, and the test's
// own connections and MIGRATE's show none either: an unnamed socket is the
// client's only if the same id later shows the client's name. So samples
// that are over the cap only with unnamed sockets are kept as candidates and
// decided at the end.
type nodeSamples struct {
	name string
	mu   sync.Mutex
	// samples counts the readings of one node's list; rounds those of every
	// node's at once, for the total.
	samples, rounds int64
	maxByNode       map[string]int
	ours            map[string]map[int64]bool // ids seen named for the client, by node
	over            []nodeReading             // readings above the cap, or candidates
	// overRounds are the rounds above the total cap, or candidates, each
	// with the round before it.
	overRounds [][2][]nodeReading
	maxTotal   int
}

// nodeReading is one node's list: the client's named sockets, and the
// unnamed ones that may be its.
type nodeReading struct {
	addr     string
	named    int
	namedIDs []int64
	unnamed  []int64
	list     string
}

// handshake are the commands a socket of the client runs before it has its
// name: CLIENT LIST shows it unnamed then.
var handshake = []string{"NULL", "hello", "auth", "client|setinfo", "client|setname", "select", "readonly"}

// readNode lists a node's clients and returns the client's part of it.
// Replication links and the test's own connections are left out.
func readNode(ctx context.Context, addr string, observer *redis.Client, name string) (nodeReading, []int64, error) {
	list, err := clientSockets(ctx, observer)
	if err != nil {
		return nodeReading{}, nil, err
	}
	r := nodeReading{addr: addr}
	var named []int64
	for _, c := range list {
		switch {
		case strings.ContainsAny(c.Flags, "SM"):
		case c.Name == "" && slices.Contains(handshake, c.Cmd):
			r.unnamed = append(r.unnamed, c.ID)
		case strings.HasPrefix(c.Name, name):
			r.named++
			named = append(named, c.ID)
		}
	}
	r.namedIDs = named
	r.list = describeSockets("", list)
	return r, named, nil
}

// mine counts the sockets of r that were the client's.
func (s *nodeSamples) mine(r nodeReading) int {
	n := r.named
	for _, id := range r.unnamed {
		if s.ours[r.addr][id] {
			n++
		}
	}
	return n
}

// record notes the ids named for the client, and keeps r when it may be
// above perNode.
func (s *nodeSamples) record(r nodeReading, named []int64, perNode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	for _, id := range named {
		s.ours[r.addr][id] = true
	}
	s.maxByNode[r.addr] = max(s.maxByNode[r.addr], r.named)
	if perNode > 0 && r.named+len(r.unnamed) > perNode {
		s.over = append(s.over, r)
	}
}

// sampleNodes lists every node's clients as fast as it can, one goroutine per
// node, until quit, and checks the client's sockets against perNode (0: no
// check); with total > 0 another goroutine reads all nodes at once and checks
// the sum.
func sampleNodes(cl *testserver.RedisCluster, name string, perNode, total int, quit <-chan struct{}) *nodeSamples {
	s := &nodeSamples{name: name, maxByNode: map[string]int{}, ours: map[string]map[int64]bool{}}
	var wg sync.WaitGroup
	observers := map[string]*redis.Client{}
	for _, addr := range cl.Addrs() {
		opt := testOptions(addr)
		opt.ClientName = testserver.AdminClientName
		opt.PoolSize = 4
		observers[addr] = redis.NewClient(opt)
		s.ours[addr] = map[int64]bool{}
	}
	for addr, obs := range observers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !isClosed(quit) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, named, err := readNode(ctx, addr, obs, name)
				cancel()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				s.record(r, named, perNode)
			}
		}()
	}
	if total > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev []nodeReading
			for !isClosed(quit) {
				round := readAll(observers, name)
				sum, maybe := 0, 0
				s.mu.Lock()
				for _, r := range round {
					sum += r.named
					maybe += r.named + len(r.unnamed)
				}
				s.rounds++
				s.maxTotal = max(s.maxTotal, sum)
				if maybe > total {
					s.overRounds = append(s.overRounds, [2][]nodeReading{prev, round})
				}
				s.mu.Unlock()
				prev = round
			}
		}()
	}
	go func() {
		<-quit
		wg.Wait()
		for _, o := range observers {
			_ = o.Close()
		}
	}()
	return s
}

// readAll reads every node's list at once.
func readAll(observers map[string]*redis.Client, name string) []nodeReading {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var round []nodeReading
	for addr, obs := range observers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if r, _, err := readNode(ctx, addr, obs, name); err == nil {
				mu.Lock()
				round = append(round, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return round
}

// nodesOver returns, once sampling ended, the readings of a node above
// perNode: how many by node, and the first.
func (s *nodeSamples) nodesOver(perNode int) (map[string]int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	by, first := map[string]int{}, ""
	for _, r := range s.over {
		if n := s.mine(r); n > perNode {
			by[r.addr]++
			if first == "" {
				first = fmt.Sprintf("%s: %d sockets: %s", r.addr, n, r.list)
			}
		}
	}
	return by, first
}

// roundsOver counts, once sampling ended, the rounds whose sum is above
// total (over), and those in which the sockets also seen in the round before
// are above it (lasting). Nodes are read at once, not atomically: a socket
// that closed on one node after it was read and one that opened on another
// before it was read count both, so a round's sum may exceed what was ever
// open at one time. A socket seen in two consecutive rounds, though, was
// open from its node's first reading to its second; every node's first
// reading ends before any second one starts, so all such sockets were open
// together at that moment: lasting counts what was surely above the cap.
func (s *nodeSamples) roundsOver(total int) (over, lasting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pair := range s.overRounds {
		prev, round := pair[0], pair[1]
		sum := 0
		for _, r := range round {
			sum += s.mine(r)
		}
		if sum <= total {
			continue
		}
		over++
		before := map[string]map[int64]bool{}
		for _, r := range prev {
			before[r.addr] = map[int64]bool{}
			for _, id := range s.mineIDs(r) {
				before[r.addr][id] = true
			}
		}
		both := 0
		for _, r := range round {
			for _, id := range s.mineIDs(r) {
				if before[r.addr][id] {
					both++
				}
			}
		}
		if both > total {
			lasting++
		}
	}
	return over, lasting
}

// mineIDs returns the ids of the sockets of r that were the client's.
func (s *nodeSamples) mineIDs(r nodeReading) []int64 {
	ids := slices.Clone(r.namedIDs)
	for _, id := range r.unnamed {
		if s.ours[r.addr][id] {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *nodeSamples) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d node samples, max of the client's named sockets by node %v; %d total rounds, max total %d",
		s.samples, s.maxByNode, s.rounds, s.maxTotal)
}

// clusterPhase is how long each phase of the acceptance runs: a short run,
// unless REDISLEAK_SOAK is set (to anything), for the figures of
// RELIABILITY.md.
func clusterPhase() time.Duration {
	if os.Getenv(soakEnv) != "" {
		return 20 * time.Second
	}
	return 2 * time.Second
}

// TestClusterPerNodeCap: under a per-node cap every node lists at most that
// many of the client's sockets at every sample, through a failover and a
// reshard, while 100 workers, 10 subscribers and 5 sharded subscribers run.
// The bare go-redis figure is logged beside it.
func TestClusterPerNodeCap(t *testing.T) {
	cl := testserver.Cluster(t)
	phase := clusterPhase()

	bare := clusterOptions(cl, "bare")
	bare.PoolSize = 5
	rc := redis.NewClusterClient(bare)
	quit := make(chan struct{})
	samples := sampleNodes(cl, "bare", 0, 1, quit)
	run := acceptanceLoad.start(rc)
	time.Sleep(phase)
	run.stop()
	close(quit)
	_ = rc.Close()
	t.Logf("bare go-redis, PoolSize 5: %s; %d commands, %d failed", samples, run.ok.Load(), run.fail.Load())

	for _, perNode := range []int{5, 10} {
		t.Run("cap"+strconv.Itoa(perNode), func(t *testing.T) {
			name := "pernode" + strconv.Itoa(perNode)
			c, err := pool.NewClusterClient(clusterOptions(cl, name), pool.WithTracker(tracker.New()),
				pool.WithMaxConnectionsPerNode(perNode), pool.WithHeldTooLong(tracker.KindPubSub, 0))
			if err != nil {
				t.Fatal(err)
			}
			quit := make(chan struct{})
			samples := sampleNodes(cl, name, perNode, 0, quit)
			run := acceptanceLoad.start(c)
			time.Sleep(phase)
			before := run.ok.Load() + run.fail.Load()
			failedBefore := run.fail.Load()
			masters := cl.Masters(t)
			start := time.Now()
			newMaster := cl.Failover(t, masters[0])
			failoverTook := time.Since(start)
			time.Sleep(phase)
			cl.Reshard(t, masters[1], newMaster, 300)
			afterStart, failedAfterStart := run.ok.Load()+run.fail.Load(), run.fail.Load()
			time.Sleep(phase)
			done, failedDone := run.ok.Load()+run.fail.Load(), run.fail.Load()
			run.stop()
			close(quit)
			err = c.Close()
			t.Logf("cap %d per node: %s; failover took %s; commands %d ok, %d failed (%d refused); subscribers confirmed %d; first error %v",
				perNode, samples, failoverTook, run.ok.Load(), run.fail.Load(), run.refusals.Load(), run.subscribed.Load(), deref(run.firstErr.Load()))
			if err != nil {
				t.Errorf("Close: %v", err)
			}
			if over, first := samples.nodesOver(perNode); len(over) != 0 {
				t.Errorf("samples above the cap of %d by node: %v; first: %s", perNode, over, first)
			}
			if perNode == 10 {
				outside := (before - failedBefore) + (done - afterStart - (failedDone - failedAfterStart))
				total := before + (done - afterStart)
				if total == 0 || float64(outside) < 0.95*float64(total) {
					t.Errorf("outside the failover window %d of %d commands succeeded; want at least 95%%", outside, total)
				}
				if got, want := run.subscribed.Load(), int64(acceptanceLoad.subscribers+acceptanceLoad.sharded); got != want {
					t.Errorf("%d of %d subscribers served", got, want)
				}
			}
			noSocketsLeft(t, cl, name)
		})
	}
}

// TestClusterRefusalNamesNodeHolders: when a node's Pub/Subs fill its cap,
// a command on that node is refused with an error naming the node and the
// Pub/Subs' call site.
func TestClusterRefusalNamesNodeHolders(t *testing.T) {
	cl := testserver.Cluster(t)
	ctx := context.Background()
	opt := clusterOptions(cl, "refusal")
	opt.PoolTimeout = 300 * time.Millisecond
	c, err := pool.NewClusterClient(opt, pool.WithTracker(tracker.New()), pool.WithMaxConnectionsPerNode(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "x{7}", 1, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	master, err := c.MasterForKey(ctx, "x{7}")
	if err != nil {
		t.Fatal(err)
	}
	var subs []*redis.PubSub
	line := thisLine() + 2
	for i := range 3 {
		ps := c.SSubscribe(ctx, fmt.Sprintf("s{7}%d", i))
		subs = append(subs, ps)
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
	}
	err = c.Get(ctx, "x{7}").Err()
	var le *pool.LimitError
	if !errors.As(err, &le) || !errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("GET on a node whose Pub/Subs hold its cap: %v, want a LimitError", err)
	}
	node := "refusal/" + master.Options().Addr
	if le.Node != node || le.Max != 3 || len(le.Holders.Groups) != 1 || le.Holders.Groups[0].Site.Line != line {
		t.Errorf("LimitError node %q max %d holders:\n%s\nwant node %s, 3, the SSubscribe at line %d", le.Node, le.Max, le.Holders, node, line)
	}
	if !strings.Contains(err.Error(), "on node "+node) || errors.Is(err, redis.ErrPoolTimeout) {
		t.Errorf("refusal %q: want it to name node %s and not to match redis.ErrPoolTimeout (the cluster client would retry it)", err, node)
	}
	for _, ps := range subs {
		_ = ps.Close()
	}
	waitFor(t, "a command once the subscribers closed", func() bool { return c.Get(ctx, "x{7}").Err() == nil })
}

// TestClusterTotalCap: under a total cap of 30 the client's sockets on all
// nodes together never exceed 30, through a failover, and capacity moves to
// the new master (throughput before and after is logged, with bare
// go-redis's).
func TestClusterTotalCap(t *testing.T) {
	cl := testserver.Cluster(t)
	phase := clusterPhase()
	const total = 30
	load := clusterLoad{workers: 100}

	measure := func(t *testing.T, c redis.UniversalClient, name string) (before, after int64, s *nodeSamples) {
		quit := make(chan struct{})
		s = sampleNodes(cl, name, 0, total, quit)
		run := load.start(c)
		time.Sleep(phase / 2)
		before = run.throughput(phase)
		cl.Failover(t, cl.Masters(t)[rand.IntN(3)])
		time.Sleep(phase / 2)
		after = run.throughput(phase)
		run.stop()
		close(quit)
		return before, after, s
	}

	bare := clusterOptions(cl, "totalbare")
	rc := redis.NewClusterClient(bare)
	bb, ba, bs := measure(t, rc, "totalbare")
	_ = rc.Close()

	c, err := pool.NewClusterClient(clusterOptions(cl, "total"), pool.WithTracker(tracker.New()), pool.WithMaxConnections(total))
	if err != nil {
		t.Fatal(err)
	}
	b, a, s := measure(t, c, "total")
	stats := c.Stats()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	t.Logf("bare go-redis: %d ops in %s before the failover, %d after; %s", bb, phase, ba, bs)
	t.Logf("total cap %d: %d ops in %s before the failover, %d after; %s; shed %d", total, b, phase, a, s, stats.Shed)
	bareOver, bareLasting := bs.roundsOver(total)
	t.Logf("bare go-redis, for comparison: rounds above %d: %d, %d of them surely", total, bareOver, bareLasting)
	over, lasting := s.roundsOver(total)
	t.Logf("rounds above the total cap: %d, %d of them with more than the cap open in it and the round before", over, lasting)
	if lasting > 0 {
		t.Errorf("the client's sockets on all nodes exceeded the total cap of %d at once: %d rounds had more than %d sockets open in it and in the round before", total, lasting, total)
	}
	if a == 0 {
		t.Errorf("no command succeeded after the failover under the total cap")
	}
}

func deref(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}

// TestClusterPubSubFollowsFailover: a sharded Pub/Sub whose master fails over
// reconnects to the new master, and its checkout moves there with it: the
// report names the new node, and Close of the Pub/Sub leaves nothing.
func TestClusterPubSubFollowsFailover(t *testing.T) {
	cl := testserver.Cluster(t)
	ctx := context.Background()
	c, err := pool.NewClusterClient(clusterOptions(cl, "follow"), pool.WithTracker(tracker.New()), pool.WithMaxConnectionsPerNode(4))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ps := c.SSubscribe(ctx, "moves:{9}")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	old, err := c.MasterForKey(ctx, "moves:{9}")
	if err != nil {
		t.Fatal(err)
	}
	nodeOf := func() []string {
		r := c.Report()
		if len(r.Groups) != 1 {
			t.Fatalf("report:\n%s\nwant the one Pub/Sub", r)
		}
		return r.Groups[0].Scopes
	}
	if got, want := nodeOf(), []string{"follow/" + old.Options().Addr}; !slices.Equal(got, want) {
		t.Fatalf("Pub/Sub held by %v, want %v", got, want)
	}
	newMaster := cl.Failover(t, old.Options().Addr)
	// go-redis's Pub/Sub notices the lost master on its next read and
	// reconnects to the slot's master then.
	waitFor(t, "the Pub/Sub receiving on the new master", func() bool {
		c.ReloadState(ctx)
		if err := c.SPublish(ctx, "moves:{9}", "hi").Err(); err != nil {
			return false
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		msg, err := ps.Receive(rctx)
		_, isMsg := msg.(*redis.Message)
		return err == nil && isMsg
	})
	if got, want := nodeOf(), []string{"follow/" + newMaster}; !slices.Equal(got, want) {
		t.Errorf("after the failover the Pub/Sub is held by %v, want %v", got, want)
	}
	_ = ps.Close()
	if r := c.Report(); r.Len() != 0 {
		t.Errorf("after the Pub/Sub's Close:\n%s", r)
	}
}

// TestClusterNodeClients: the node clients go-redis hands out are the
// library's: their commands are tracked on their node (a blocking command
// shows in the report), and one refused command is refused once, not retried
// by the cluster client on the node.
func TestClusterNodeClients(t *testing.T) {
	cl := testserver.Cluster(t)
	ctx := context.Background()
	opt := clusterOptions(cl, "nodes")
	opt.PoolTimeout = 200 * time.Millisecond
	c, err := pool.NewClusterClient(opt, pool.WithTracker(tracker.New()), pool.WithMaxConnectionsPerNode(2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	node, err := c.MasterForKey(ctx, "q{3}")
	if err != nil {
		t.Fatal(err)
	}
	name := "nodes/" + node.Options().Addr
	done := make(chan error, 1)
	line := thisLine() + 1
	go func() { done <- node.BLPop(ctx, 0, "q{3}").Err() }()
	waitFor(t, "the BLPOP in the report", func() bool {
		r := c.Report()
		return len(r.Groups) == 1 && r.Groups[0].Kind == tracker.KindBlocking && r.Groups[0].Site.Line == line &&
			slices.Equal(r.Groups[0].Scopes, []string{name})
	})

	// The BLPOP holds one of the node's two slots; a Conn the other.
	cn, err := c.ConnForKey(ctx, "q{3}")
	if err != nil {
		t.Fatal(err)
	}
	if err := cn.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := c.Stats().Nodes[name].Timeouts
	err = c.Get(ctx, "x{3}").Err()
	if !errors.Is(err, pool.ErrMaxConnections) {
		t.Fatalf("GET on a full node: %v, want a refusal", err)
	}
	// The cluster client retries a retryable error on the node and then
	// elsewhere, up to MaxRedirects (3) times: 4 refusals. A background
	// reload of the cluster's state may ask the full node too, and be
	// refused once more.
	if n := c.Stats().Nodes[name].Timeouts - before; n >= 3 {
		t.Errorf("one GET refused %d times: the cluster client retried the refusal", n)
	}
	_ = cn.Close()
	if err := c.LPush(ctx, "q{3}", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestClusterRetiredNodeForgotten: go-redis retires a node client on its own
// (it closes it a minute after a topology change; here the test closes it as
// go-redis would). The client then forgets it, ending its watch, once no
// checkout is on it: a node client with an open Conn is kept until the Conn
// is closed.
func TestClusterRetiredNodeForgotten(t *testing.T) {
	cl := testserver.Cluster(t)
	ctx := context.Background()
	c, err := pool.NewClusterClient(clusterOptions(cl, "retire"), pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var masters []*redis.Client
	var mu sync.Mutex
	if err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, n)
		return n.Ping(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	if len(masters) < 2 {
		t.Fatalf("%d masters", len(masters))
	}
	watches := func() int {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "track.(*Scope).WatchHeld.func")
	}
	idle, busy := masters[0], masters[1]
	idleName, busyName := "retire/"+idle.Options().Addr, "retire/"+busy.Options().Addr
	if _, ok := c.Stats().Nodes[idleName]; !ok {
		t.Fatalf("no node %s in Stats: %v", idleName, slices.Collect(maps.Keys(c.Stats().Nodes)))
	}
	tok, err := c.ConnForKey(ctx, keyOn(t, c, busy))
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := watches()

	_ = idle.Close()
	_ = busy.Close()
	waitFor(t, "the idle node forgotten", func() bool {
		_, ok := c.Stats().Nodes[idleName]
		return !ok && watches() == before-1
	})
	time.Sleep(1500 * time.Millisecond) // a watch tick or more
	if _, ok := c.Stats().Nodes[busyName]; !ok {
		t.Fatalf("node %s forgotten while a Conn of the library was on it", busyName)
	}
	_ = tok.Close()
	waitFor(t, "the busy node forgotten once its Conn closed", func() bool {
		_, ok := c.Stats().Nodes[busyName]
		return !ok && watches() == before-2
	})
}

// keyOn returns a key whose slot node serves.
func keyOn(t *testing.T, c *pool.ClusterClient, node *redis.Client) string {
	t.Helper()
	for i := range 10000 {
		key := "k" + strconv.Itoa(i)
		n, err := c.MasterForKey(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if n == node {
			return key
		}
	}
	t.Fatalf("no key on %s", node.Options().Addr)
	return ""
}
