package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/track"
	"github.com/redisleak/redisleak/tracker"
)

// ClusterClient is a go-redis cluster client whose node clients are built by
// the library, so that every node's connections are tracked and capped. It
// embeds *redis.ClusterClient, so it satisfies redis.UniversalClient and every
// command method is go-redis's own; the methods below replace the ones that
// hand out connections.
//
// Commands, pipelines and transactions are tracked on the node that serves
// them (each node reports as "<name>/<addr>", the name being ClientName or
// the program's name). The node clients go-redis hands out (MasterForKey,
// ForEachMaster, ForEachShard) are the library's: their commands are tracked
// and their sockets capped, but a Conn taken from one (nodeClient.Conn()) is
// a go-redis Conn the library cannot track; take a tracked one with
// [ClusterClient.ConnForKey].
//
// A ClusterClient must be closed with [ClusterClient.Close]; one
// garbage-collected without Close while it held sockets is reported as a
// leak (kind "client") with the line that created it.
type ClusterClient struct {
	*redis.ClusterClient
	groupClient
}

var _ redis.UniversalClient = (*ClusterClient)(nil)

// NewClusterClient returns a cluster client for opt, like
// redis.NewClusterClient, whose node clients track their checkouts and, under
// a cap, hold their sockets to it: [WithMaxConnectionsPerNode] per node (the
// node's pool is fitted into it as [WithMaxConnections] fits a single
// client's), [WithMaxConnections] across every node together. Under a total
// cap, a node that needs a socket while the total is full closes an idle
// pooled socket of another node, so that capacity follows the traffic (after
// a failover, to the new master). Without a cap it refuses nothing bare
// go-redis would allow.
//
// opt is not modified. opt.NewClient must be nil: the library builds the node
// clients. It fails, naming the field and value, on nil options, negative
// sizes and bad option values.
func NewClusterClient(opt *redis.ClusterOptions, opts ...Option) (*ClusterClient, error) {
	if opt == nil {
		return nil, errors.New("pool: NewClusterClient: nil *redis.ClusterOptions")
	}
	if opt.NewClient != nil {
		return nil, errors.New("pool: NewClusterClient: redis.ClusterOptions.NewClient is set; the library builds the node clients itself, to track and cap them, so it must be nil")
	}
	if len(opt.Addrs) == 0 {
		return nil, errors.New("pool: NewClusterClient: redis.ClusterOptions.Addrs is empty; give at least one node address")
	}
	node := redis.Options{ClientName: opt.ClientName, PoolSize: opt.PoolSize, PoolTimeout: opt.PoolTimeout,
		MaxActiveConns: opt.MaxActiveConns, MinIdleConns: opt.MinIdleConns, MaxIdleConns: opt.MaxIdleConns,
		PipelinePoolSize: opt.PipelinePoolSize, MaxRetries: opt.MaxRetries, ReadTimeout: opt.ReadTimeout}
	g, err := newGroupFor("NewClusterClient", "redis.ClusterOptions", node, opt.Addrs, opts)
	if err != nil {
		return nil, err
	}
	o := *opt
	o.NewClient = g.newNode
	rc := redis.NewClusterClient(&o)
	watchGroupDropped(g, rc, g.scope.Origin(context.Background(), 1))
	return &ClusterClient{ClusterClient: rc, groupClient: groupClient{g}}, nil
}

// newGroupFor applies opts, checks node, the fields of the client's options
// that every node client gets (the others do not concern the library), as
// NewClient checks a single client's, and returns the group of a client of
// addrs. Errors name fn, the constructor, and optType, its options' type.
func newGroupFor(fn, optType string, node redis.Options, addrs []string, opts []Option) (*group, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	cfg.fn, cfg.optType = fn, optType
	cfg.poolSizeUnset = node.PoolSize == 0
	g := newGroup(cfg, clientName(&node)+"/"+strings.Join(addrs, ","))
	g.clientName = clientName(&node)
	if _, _, _, err := settle(&node, g.cfg); err != nil {
		g.cancel()
		return nil, err
	}
	return g, nil
}

// Subscribe subscribes to channels like redis.ClusterClient.Subscribe and
// tracks the returned PubSub on the node it connects to, following it when it
// reconnects to another (after a slot moved or a failover). Under a per-node
// cap its socket takes a place under that node's cap, as [Client.Subscribe]
// describes; a refusal names that node's holders.
func (c *ClusterClient) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.g.root.openPubSub(ctx, c.ClusterClient.Subscribe, "subscribe", (*redis.PubSub).Subscribe, channels)
}

// PSubscribe is [ClusterClient.Subscribe] for patterns.
func (c *ClusterClient) PSubscribe(ctx context.Context, patterns ...string) *redis.PubSub {
	return c.g.root.openPubSub(ctx, c.ClusterClient.Subscribe, "psubscribe", (*redis.PubSub).PSubscribe, patterns)
}

// SSubscribe is [ClusterClient.Subscribe] for shard channels: the PubSub
// connects to the master of the first channel's slot (a replica with
// ReadOnly).
func (c *ClusterClient) SSubscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.g.root.openPubSub(ctx, c.ClusterClient.Subscribe, "ssubscribe", (*redis.PubSub).SSubscribe, channels)
}

// ConnForKey returns a dedicated connection to the master of key's slot,
// tracked until its Close as [Client.Conn] is, and reported with the node's
// name. It fails as redis.ClusterClient.MasterForKey fails (cluster state not
// loaded, no master for the slot).
func (c *ClusterClient) ConnForKey(ctx context.Context, key string) (*Conn, error) {
	node, err := c.ClusterClient.MasterForKey(ctx, key)
	if err != nil {
		return nil, err
	}
	return c.g.connOn(ctx, node)
}

// connOn returns a tracked Conn of the node client rc.
func (g *group) connOn(ctx context.Context, rc *redis.Client) (*Conn, error) {
	st := g.stateOf(rc)
	if st == nil {
		return nil, fmt.Errorf("redisleak: the node client for %s was built by go-redis, not the library (a failover cluster client builds its own), so a Conn of it cannot be tracked", rc.Options().Addr)
	}
	return st.newConn(ctx, rc.Conn()), nil
}

// Close closes the client and every node client, as redis.ClusterClient.Close
// does. When Conns, Pub/Subs or blocking commands without a timeout were
// still outstanding on any node, it returns one error matching [ErrLeaked]
// (a [*LeakError]) with every node's, joined with go-redis's own Close error,
// if any. Closing twice returns an error matching redis.ErrClosed.
func (c *ClusterClient) Close() error { return c.g.close(c.ClusterClient.Close) }

// groupClient has the methods a cluster and a ring client share.
type groupClient struct{ g *group }

// Report returns the outstanding checkouts of every node now, grouped by call
// site; each group names the nodes holding it.
func (c groupClient) Report() tracker.Report { return c.g.report() }

// Tracker returns the tracker that records the client's checkouts.
func (c groupClient) Tracker() *tracker.Tracker { return trackerOf(c.g.scope) }

// Name is the name the client goes by in reports and logs:
// "<name>/<addr>,<addr>..." with its seed (or shard) addresses, the name
// being ClientName or the program's name; a node goes by "<name>/<addr>".
func (c groupClient) Name() string { return c.g.name }

// Stats returns the client's connection statistics now: the total, and each
// node's in Stats.Nodes.
func (c groupClient) Stats() Stats { return c.g.stats() }

// report sweeps the nodes' Conns and reports the group's checkouts.
func (g *group) report() tracker.Report {
	for _, st := range g.snapshot() {
		st.sweepConns()
	}
	return scopeReport(g.scope, nil)
}

// droppedGroup is what the cleanup of a cluster or ring client dropped
// without Close needs; it must not reach the go-redis client.
type droppedGroup struct {
	g      *group
	origin track.Origin
}

// watchGroupDropped reports g's client, as made at origin, if rc, its
// go-redis client, is garbage-collected without the library's Close while its
// nodes held sockets, and then ends what the library ran for it.
func watchGroupDropped[T any](g *group, rc *T, origin track.Origin) {
	g.cleanup = runtime.AddCleanup(rc, func(d droppedGroup) {
		open := 0
		for _, st := range d.g.snapshot() {
			c := st.lim.counts()
			open += c.open.total() + c.dialing
			st.stopWatch()
			st.releaseDump()
		}
		if d.g.root.stopWatch != nil {
			d.g.root.stopWatch()
		}
		for _, l := range d.g.addressLimiters() {
			open += l.counts().open.total()
		}
		d.g.cancel()
		if open > 0 {
			d.g.scope.Dropped(track.KindClient, d.origin)
		}
	}, droppedGroup{g: g, origin: origin})
}
