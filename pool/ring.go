package pool

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/redis/go-redis/v9"
)

// Ring is a go-redis Ring (client-side sharding) whose shard clients are
// built by the library, tracked and capped as [ClusterClient]'s nodes are. It
// embeds *redis.Ring, so it satisfies redis.UniversalClient.
type Ring struct {
	*redis.Ring
	groupClient
}

var _ redis.UniversalClient = (*Ring)(nil)

// NewRing returns a Ring for opt, like redis.NewRing, whose shard clients
// track their checkouts and, under a cap, hold their sockets to it:
// [WithMaxConnectionsPerNode] per shard, [WithMaxConnections] across the
// shards together. opt is not modified; opt.NewClient must be nil. It fails,
// naming the field and value, on nil options, negative sizes and bad option
// values.
func NewRing(opt *redis.RingOptions, opts ...Option) (*Ring, error) {
	if opt == nil {
		return nil, errors.New("pool: NewRing: nil *redis.RingOptions")
	}
	if opt.NewClient != nil {
		return nil, errors.New("pool: NewRing: redis.RingOptions.NewClient is set; the library builds the shard clients itself, to track and cap them, so it must be nil")
	}
	node := redis.Options{ClientName: opt.ClientName, PoolSize: opt.PoolSize, PoolTimeout: opt.PoolTimeout,
		MaxActiveConns: opt.MaxActiveConns, MinIdleConns: opt.MinIdleConns, MaxIdleConns: opt.MaxIdleConns,
		PipelinePoolSize: opt.PipelinePoolSize, MaxRetries: opt.MaxRetries, ReadTimeout: opt.ReadTimeout}
	g, err := newGroupFor("NewRing", "redis.RingOptions", node, slices.Sorted(maps.Values(opt.Addrs)), opts)
	if err != nil {
		return nil, err
	}
	o := *opt
	o.NewClient = g.newNode
	rc := redis.NewRing(&o)
	watchGroupDropped(g, rc, g.scope.Origin(context.Background(), 1))
	return &Ring{Ring: rc, groupClient: groupClient{g}}, nil
}

// Subscribe subscribes to channels like redis.Ring.Subscribe, on the shard of
// the first channel, and tracks the returned PubSub as [Client.Subscribe]
// does, under that shard's cap. Like go-redis's, it panics without a channel
// or when no shard is up.
func (r *Ring) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return r.openPubSub(ctx, "subscribe", (*redis.PubSub).Subscribe, r.Ring.Subscribe, channels)
}

// PSubscribe is [Ring.Subscribe] for patterns.
func (r *Ring) PSubscribe(ctx context.Context, patterns ...string) *redis.PubSub {
	return r.openPubSub(ctx, "psubscribe", (*redis.PubSub).PSubscribe, r.Ring.PSubscribe, patterns)
}

// SSubscribe is [Ring.Subscribe] for shard channels.
func (r *Ring) SSubscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return r.openPubSub(ctx, "ssubscribe", (*redis.PubSub).SSubscribe, r.Ring.SSubscribe, channels)
}

// openPubSub opens the PubSub on the shard client of names[0], or leaves it
// to go-redis (fallback) when there is none to find, so that go-redis panics
// as it does.
func (r *Ring) openPubSub(ctx context.Context, op string, subscribe func(*redis.PubSub, context.Context, ...string) error, fallback func(context.Context, ...string) *redis.PubSub, names []string) *redis.PubSub {
	if len(names) == 0 {
		return fallback(ctx, names...)
	}
	shard, err := r.Ring.GetShardClientForKey(names[0])
	if err != nil {
		return fallback(ctx, names...)
	}
	st := r.g.stateOf(shard)
	if st == nil {
		return fallback(ctx, names...)
	}
	return st.openPubSub(ctx, shard.Subscribe, op, subscribe, names)
}

// ConnForKey returns a dedicated connection to the shard of key, tracked
// until its Close as [Client.Conn] is, and reported with the shard's name.
func (r *Ring) ConnForKey(ctx context.Context, key string) (*Conn, error) {
	shard, err := r.Ring.GetShardClientForKey(key)
	if err != nil {
		return nil, err
	}
	return r.g.connOn(ctx, shard)
}

// Close closes the Ring and every shard client, as redis.Ring.Close does, and
// reports what was left open as [ClusterClient.Close] does.
func (r *Ring) Close() error { return r.g.close(r.Ring.Close) }
