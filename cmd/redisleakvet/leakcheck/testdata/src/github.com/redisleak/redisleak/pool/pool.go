// Package pool is a stub of redisleak's pool package with the types and
// functions the analyzer's tests call: its clients and Conn embed go-redis's.
package pool

import (
	"context"

	"github.com/redis/go-redis/v9"
)

type Option func()

type Client struct {
	*redis.Client
	st *int
}

func NewClient(opt *redis.Options, opts ...Option) (*Client, error) {
	return &Client{Client: redis.NewClient(opt)}, nil
}

func NewFailoverClient(opt *redis.FailoverOptions, opts ...Option) (*Client, error) {
	return &Client{Client: redis.NewFailoverClient(opt)}, nil
}

func (c *Client) Close() error                          { return nil }
func (c *Client) Conn() *Conn                           { return &Conn{Conn: c.Client.Conn()} }
func (c *Client) ConnContext(ctx context.Context) *Conn { return c.Conn() }
func (c *Client) EphemeralConn() *Conn                  { return c.Conn() }
func (c *Client) Subscribe(ctx context.Context, ch ...string) *redis.PubSub {
	return c.Client.Subscribe(ctx, ch...)
}
func (c *Client) PSubscribe(ctx context.Context, ch ...string) *redis.PubSub {
	return c.Client.PSubscribe(ctx, ch...)
}
func (c *Client) SSubscribe(ctx context.Context, ch ...string) *redis.PubSub {
	return c.Client.SSubscribe(ctx, ch...)
}

type Conn struct {
	*redis.Conn
	closed bool
}

func (cn *Conn) Close() error { return nil }

type ClusterClient struct{ *redis.ClusterClient }

func NewClusterClient(opt *redis.ClusterOptions, opts ...Option) (*ClusterClient, error) {
	return &ClusterClient{redis.NewClusterClient(opt)}, nil
}

func (c *ClusterClient) ConnForKey(ctx context.Context, key string) (*Conn, error) {
	return &Conn{}, nil
}

type Ring struct{ *redis.Ring }

func NewRing(opt *redis.RingOptions, opts ...Option) (*Ring, error) {
	return &Ring{redis.NewRing(opt)}, nil
}

func (r *Ring) ConnForKey(ctx context.Context, key string) (*Conn, error) { return &Conn{}, nil }

type UniversalClient interface {
	redis.UniversalClient
}

func NewUniversalClient(opt *redis.UniversalOptions, opts ...Option) (UniversalClient, error) {
	return redis.NewUniversalClient(opt), nil
}
