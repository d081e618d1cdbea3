// Command cluster shows, on Redis Cluster, a dedicated connection to a key's
// node and a shard-channel subscriber both left open on an early return.
//
// The pattern: a checkout handler subscribes to the item's shard channel
// (SSUBSCRIBE), to hear of a restock, and takes a connection to the master of
// the item's slot (ClusterClient.ConnForKey), to WATCH the stock and
// MULTI/EXEC the order on that slot's keys. When the item is sold out it
// waits a moment for a restock; when none comes it returns "sold out" before
// the two Close calls at its end.
//
// The symptom in production: each sold-out request keeps two sockets open on
// the one node that serves the item. That node runs out of connections
// (commands on all of its slots wait PoolTimeout and fail; its
// connected_clients climbs) while the other nodes are fine, so it looks like
// a hot shard rather than a leak.
//
// What redisleak reports: the Conn (kind "conn") and the Pub/Sub (kind
// "pubsub") with the line that took each and the node that holds them, named
// "<name>/<addr>"; Stats().Nodes shows that node's sockets at its cap
// (pool.WithMaxConnectionsPerNode) and the others' below it; Close returns
// one error matching pool.ErrLeaked with every node's leaks.
//
// The fix: defer ps.Close() and defer cn.Close() right after taking them.
//
//	go run ./examples/cluster [-variant bad|fixed|both] [-addrs host:port,host:port,...]
//
// With -addrs it runs against that cluster (writing cluster:* keys). Without
// it, since miniredis has no cluster mode, it runs the same handlers on a
// pool.Ring of two embedded miniredis shards, subscribing with SUBSCRIBE, as
// miniredis has no SSUBSCRIBE (a Ring sends either to the channel's shard).
//
// It exits 0 when the bad variant is reported and the fixed one is clean.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/examples/internal/example"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

const (
	stock   = 2 // units on sale
	buyers  = 4 // so buyers-stock of them find the item sold out
	soldOut = buyers - stock
	// perNodeCap is what the bad variant's leaks fill on the item's node: a
	// Conn and a Pub/Sub per sold-out buyer.
	perNodeCap  = 2 * soldOut
	restockWait = 50 * time.Millisecond  // how long a sold-out buyer waits for a restock
	poolTimeout = 200 * time.Millisecond // how long a command waits for a socket on a full node

	// The item's keys and channel share the hash tag {sneakers}, so one slot,
	// on one node, holds them all: a transaction may span them, and a buyer's
	// Conn and Pub/Sub both land on that node.
	stockKey  = "cluster:{sneakers}:stock"
	ordersKey = "cluster:{sneakers}:orders"
	restocked = "cluster:{sneakers}:restocked"

	// clientName names the client on the server and, before each node's
	// address, in reports and Stats.
	clientName = "shop"
)

var errSoldOut = errors.New("sold out")

// addrs is -addrs; example.Main parses it with the flags every example takes.
var addrs = flag.String("addrs", "", "the cluster's node addresses, comma-separated; empty runs a ring of two embedded miniredis")

func main() {
	example.Main("cluster", func(ctx context.Context, addr, variant string, out io.Writer) error {
		if addr != "" {
			return errors.New("-addr names a single Redis: list the cluster's nodes in -addrs, comma-separated")
		}
		return run(ctx, *addrs, variant, out)
	})
}

// client is what the shop needs of its Redis client; *pool.ClusterClient and
// *pool.Ring have it.
type client interface {
	redis.UniversalClient
	ConnForKey(ctx context.Context, key string) (*pool.Conn, error)
	Report() tracker.Report
	Stats() pool.Stats
}

// shop is the service: its client, and what differs between a cluster and
// the ring that stands in for one.
type shop struct {
	client
	// subscribe subscribes on the node of the first channel's slot:
	// SSubscribe on a cluster; Subscribe on the ring, which sends it to the
	// channel's shard too, because miniredis has no SSUBSCRIBE.
	subscribe func(ctx context.Context, channels ...string) *redis.PubSub
	// nodeFor returns the node client that serves key: the master of its
	// slot, or its shard.
	nodeFor func(ctx context.Context, key string) (*redis.Client, error)
	// leaked keeps every Pub/Sub buyBad opens, so that the demo can close,
	// once it has reported them, those buyBad left open, ending go-redis's
	// goroutines behind ps.Channel(). A real program has no such handle: that
	// is the bug.
	leaked []*redis.PubSub
}

// buyBad takes one unit of the item for buyer, waiting up to restockWait for
// a restock when it is sold out.
//
// BUG: when no restock comes it returns without closing ps and cn.
func buyBad(ctx context.Context, s *shop, buyer string) error {
	ps := s.subscribe(ctx, restocked)
	s.leaked = append(s.leaked, ps)
	// Subscribed, and confirmed, before the stock is read, so that a restock
	// announced in between is not missed.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return err
	}
	cn, err := s.ConnForKey(ctx, stockKey)
	if err != nil {
		_ = ps.Close()
		return err
	}
	err = takeOne(ctx, cn, buyer)
	if errors.Is(err, errSoldOut) {
		select {
		case <-ps.Channel():
			err = takeOne(ctx, cn, buyer)
		case <-time.After(restockWait):
			return errSoldOut // ps and cn stay open, each holding a socket on the item's node
		}
	}
	_ = ps.Close()
	return errors.Join(err, cn.Close())
}

// buyFixed closes the Pub/Sub and the Conn on every path.
func buyFixed(ctx context.Context, s *shop, buyer string) error {
	ps := s.subscribe(ctx, restocked)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return err
	}
	cn, err := s.ConnForKey(ctx, stockKey)
	if err != nil {
		return err
	}
	defer cn.Close()
	err = takeOne(ctx, cn, buyer)
	if errors.Is(err, errSoldOut) {
		select {
		case <-ps.Channel():
			return takeOne(ctx, cn, buyer)
		case <-time.After(restockWait):
		}
	}
	return err
}

// takeOne takes a unit for buyer in one transaction: WATCH the stock, read
// it, then MULTI/EXEC the decrement and the order, which EXEC refuses
// (redis.TxFailedErr) if another buyer changed the stock in between. That is
// why it needs cn, one connection to the slot's node: WATCH holds only on the
// connection that sent it.
func takeOne(ctx context.Context, cn *pool.Conn, buyer string) error {
	if err := cn.Do(ctx, "WATCH", stockKey).Err(); err != nil {
		return err
	}
	left, err := cn.Get(ctx, stockKey).Int()
	if err != nil {
		return err
	}
	if left <= 0 {
		// Not left WATCHing: the next transaction on cn would fail on
		// another buyer's change.
		return errors.Join(errSoldOut, cn.Do(ctx, "UNWATCH").Err())
	}
	_, err = cn.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Decr(ctx, stockKey)
		p.RPush(ctx, ordersKey, buyer)
		return nil
	})
	return err
}

type outcome struct {
	node     string         // the item's node, as reports and Stats name it
	refused  int            // buyers refused a socket on that node: its cap was full
	report   tracker.Report // after the sales
	stats    pool.Stats     // then
	nextErr  error          // a GET of the stock after the sales: a command on the item's node
	closeErr error
}

// options are the library options of both demos' clients.
func options() []pool.Option {
	return []pool.Option{pool.WithTracker(tracker.New()), pool.WithMaxConnectionsPerNode(perNodeCap),
		pool.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))} // Close's WARN: printed by demo instead
}

// clusterDemo runs variant against the cluster whose nodes addrs lists,
// comma-separated.
func clusterDemo(ctx context.Context, addrs, variant string, out io.Writer) (*outcome, error) {
	c, err := pool.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ","),
		ClientName: clientName, PoolTimeout: poolTimeout}, options()...)
	if err != nil {
		return nil, err
	}
	return demo(ctx, &shop{client: c, subscribe: c.SSubscribe, nodeFor: c.MasterForKey}, variant, out)
}

// ringDemo runs variant against a ring of the shards addrs lists,
// comma-separated.
func ringDemo(ctx context.Context, addrs, variant string, out io.Writer) (*outcome, error) {
	shards := make(map[string]string)
	for i, a := range strings.Split(addrs, ",") {
		shards[fmt.Sprint("shard", i+1)] = a
	}
	r, err := pool.NewRing(&redis.RingOptions{Addrs: shards, ClientName: clientName, PoolTimeout: poolTimeout}, options()...)
	if err != nil {
		return nil, err
	}
	nodeFor := func(_ context.Context, key string) (*redis.Client, error) { return r.GetShardClientForKey(key) }
	return demo(ctx, &shop{client: r, subscribe: r.Subscribe, nodeFor: nodeFor}, variant, out)
}

// demo sells the item to the buyers with variant's handler, prints what the
// client reports and counts, and closes the client.
func demo(ctx context.Context, s *shop, variant string, out io.Writer) (*outcome, error) {
	fail := func(err error) (*outcome, error) {
		_ = s.Close()
		for _, ps := range s.leaked {
			_ = ps.Close()
		}
		return nil, err
	}
	node, err := s.nodeFor(ctx, stockKey)
	if err != nil {
		return fail(err)
	}
	res := &outcome{node: clientName + "/" + node.Options().Addr}
	if err := s.Set(ctx, stockKey, stock, time.Minute).Err(); err != nil {
		return fail(err)
	}
	if err := s.Del(ctx, ordersKey).Err(); err != nil {
		return fail(err)
	}
	buy := map[string]func(context.Context, *shop, string) error{"bad": buyBad, "fixed": buyFixed}[variant]
	sold, gone := 0, 0
	for i := range buyers {
		switch err := buy(ctx, s, fmt.Sprint("buyer", i+1)); {
		case err == nil:
			sold++
		case errors.Is(err, errSoldOut):
			gone++
		case errors.Is(err, pool.ErrMaxConnections):
			// The leaks' symptom, once they fill the node's cap. It does not
			// come to that here unless something else holds a slot of the
			// node too: with -addrs spelled otherwise than the cluster names
			// its nodes (localhost for 127.0.0.1), go-redis keeps a seed
			// client beside the node's, and its idle socket counts.
			res.refused++
		default:
			return fail(err)
		}
	}
	res.nextErr = s.Get(ctx, stockKey).Err()
	res.report = s.Report()
	res.stats = s.Stats()
	res.closeErr = s.Close()
	for _, ps := range s.leaked {
		_ = ps.Close() // closed already but for buyBad's leaks
	}

	fmt.Fprintf(out, "[%s] %d buyers: %d sold, %d sold out, %d refused; the item's node is %s\n", variant, buyers, sold, gone, res.refused, res.node)
	fmt.Fprintf(out, "[%s] next GET on that node: %s\n", variant, example.FirstLine(res.nextErr))
	fmt.Fprintf(out, "[%s] Report(): %d outstanding\n", variant, res.report.Len())
	for _, g := range res.report.Groups {
		what := g.Kind.String()
		if g.Op != "" {
			what += " " + g.Op
		}
		fmt.Fprintf(out, "  %d × %s at %s, node %s\n", g.Count, what, g.Site, strings.Join(g.Scopes, ", "))
	}
	fmt.Fprintf(out, "[%s] Stats().Nodes: open sockets of each node's cap, pool.WithMaxConnectionsPerNode(%d)\n", variant, perNodeCap)
	for _, name := range slices.Sorted(maps.Keys(res.stats.Nodes)) {
		n := res.stats.Nodes[name]
		fmt.Fprintf(out, "  %s: %d of %d (%d pool, %d pubsub, %d conn), %d refused\n",
			name, n.OpenConnections, n.MaxConnections, n.Open.Pool, n.Open.PubSub, n.Open.Conn, n.Timeouts)
	}
	fmt.Fprintf(out, "[%s] Close: errors.Is(err, pool.ErrLeaked) = %t: %s\n", variant, errors.Is(res.closeErr, pool.ErrLeaked), example.FirstLine(res.closeErr))
	return res, nil
}

// Check returns an error unless res is what variant is expected to show.
func (res *outcome) Check(variant string) error {
	n := res.stats.Nodes[res.node]
	if variant == "bad" {
		// Every checkout reported is a Conn or a Pub/Sub the item's node
		// holds, as its Stats count them; how many depends on whether a
		// buyer was refused (see demo).
		onNode := map[tracker.Kind]int{}
		for _, g := range res.report.Groups {
			if slices.Equal(g.Scopes, []string{res.node}) {
				onNode[g.Kind] += g.Count
			}
		}
		conns, pubsubs := onNode[tracker.KindConn], onNode[tracker.KindPubSub]
		if conns == 0 || pubsubs == 0 || res.report.Len() != conns+pubsubs ||
			n.Open.Conn != conns || n.Open.PubSub != pubsubs || !errors.Is(res.closeErr, pool.ErrLeaked) {
			return fmt.Errorf("bad: want Conns and Pub/Subs open on %s alone, reported and counted, and ErrLeaked; report:\n%s\nnode's open sockets: %+v\nClose: %v",
				res.node, res.report, n.Open, res.closeErr)
		}
		return nil
	}
	if res.refused != 0 || res.report.Len() != 0 || res.nextErr != nil || res.closeErr != nil || n.Open.Conn != 0 || n.Open.PubSub != 0 {
		return fmt.Errorf("fixed: %d buyers refused; report %s; node's open sockets %+v; next GET: %v; Close: %v",
			res.refused, res.report, n.Open, res.nextErr, res.closeErr)
	}
	return nil
}

// run runs the variants that variant names against the cluster whose nodes
// addrs lists, comma-separated, or, when it is empty, against a ring of two
// embedded miniredis, and returns an error unless each outcome is the
// expected one.
func run(ctx context.Context, addrs, variant string, out io.Writer) error {
	if addrs != "" {
		return example.Run(ctx, addrs, variant, out, clusterDemo)
	}
	fmt.Fprintln(out, "no -addrs, and miniredis has no cluster mode: running on a pool.Ring of two embedded miniredis shards, with SUBSCRIBE for SSUBSCRIBE")
	var shards []string
	for range 2 {
		addr, _, stop, err := example.Server("")
		if err != nil {
			return err
		}
		defer stop()
		shards = append(shards, addr)
	}
	// example.Run starts no server of its own for a non-empty address.
	return example.Run(ctx, strings.Join(shards, ","), variant, out, ringDemo)
}
