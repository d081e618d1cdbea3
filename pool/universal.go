package pool

import (
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/tracker"
)

// UniversalClient is what [NewUniversalClient] returns: a go-redis
// UniversalClient whose connections the library tracks and caps, a
// [*Client] (one node, or a failover client) or a [*ClusterClient].
type UniversalClient interface {
	redis.UniversalClient
	// Report returns the client's outstanding checkouts now, grouped by
	// call site.
	Report() tracker.Report
	// Stats returns the client's connection statistics now (a cluster's
	// nodes in Stats.Nodes).
	Stats() Stats
	// Tracker returns the tracker that records the client's checkouts.
	Tracker() *tracker.Tracker
}

var (
	_ UniversalClient = (*Client)(nil)
	_ UniversalClient = (*ClusterClient)(nil)
	_ UniversalClient = (*Ring)(nil)
)

// NewUniversalClient returns the client go-redis's redis.NewUniversalClient
// would, built by the library: a failover client ([NewFailoverClient]) when
// MasterName is set, a cluster client ([NewClusterClient]) for several
// addresses or IsClusterMode, and a single client ([NewClient]) otherwise.
//
// MasterName together with RouteByLatency, RouteRandomly or IsClusterMode
// makes go-redis build a failover cluster client, whose options have no hook
// through which the library could build its node clients. NewUniversalClient
// then returns a [*ClusterClient] built with what those options allow: every
// socket, to a node or a sentinel, counted and capped per address
// ([WithMaxConnectionsPerNode]); commands, pipelines, blocking commands and
// Pub/Subs tracked on the client as a whole, not per node. go-redis's node
// pools cannot lend a Pub/Sub a turn as the library's own pools do, so each
// node's pool is kept one slot below its cap (a PoolSize the caller set is
// lowered with a WARN), for a Pub/Sub. A Pub/Sub that finds its node's cap
// held by idle pooled sockets closes one of them, as with the library's
// other clients; more Pub/Subs than that on a busy node leave its pool fewer
// sockets than its size, and the pool closes and redials idle ones to serve
// its callers. A refusal is a [*LimitError] naming the node's address and
// the whole client's holders. It refuses a total cap
// ([WithMaxConnections]), and that client's ConnForKey fails: both need node
// clients the library built.
func NewUniversalClient(opt *redis.UniversalOptions, opts ...Option) (UniversalClient, error) {
	if opt == nil {
		return nil, errors.New("pool: NewUniversalClient: nil *redis.UniversalOptions")
	}
	switch {
	case opt.MasterName != "" && (opt.RouteByLatency || opt.RouteRandomly || opt.IsClusterMode):
		return newFailoverClusterClient(opt.Failover(), opts...)
	case opt.MasterName != "":
		return NewFailoverClient(opt.Failover(), opts...)
	case len(opt.Addrs) > 1 || opt.IsClusterMode:
		return NewClusterClient(opt.Cluster(), opts...)
	default:
		return NewClient(opt.Simple(), opts...)
	}
}
