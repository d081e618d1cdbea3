// Package redis is a stub of go-redis v9 with the types and functions the
// analyzer's tests call. Like the real one, clients and connections embed a
// func-typed cmdable whose methods are the commands, so command calls go
// through embedded fields as they do against go-redis.
package redis

import "context"

type Options struct{ Addr string }
type ClusterOptions struct{ Addrs []string }
type RingOptions struct{ Addrs map[string]string }
type FailoverOptions struct{ MasterName string }
type UniversalOptions struct{ Addrs []string }

type Cmder interface{ Err() error }

type StringCmd struct{ err error }

func (c *StringCmd) Err() error              { return c.err }
func (c *StringCmd) Result() (string, error) { return "", c.err }

type cmdable func(ctx context.Context, cmd Cmder) error

func (c cmdable) Get(ctx context.Context, key string) *StringCmd {
	cmd := &StringCmd{}
	_ = c(ctx, cmd)
	return cmd
}

func (c cmdable) Ping(ctx context.Context) *StringCmd { return c.Get(ctx, "") }

type baseClient struct{ opt *Options }

func (c *baseClient) Close() error { return nil }

type Client struct {
	*baseClient
	cmdable
}

func NewClient(opt *Options) *Client { return &Client{baseClient: &baseClient{opt: opt}} }

func NewFailoverClient(opt *FailoverOptions) *Client { return &Client{} }

func (c *Client) Conn() *Conn                                          { return &Conn{} }
func (c *Client) EphemeralConn() *Conn                                 { return &Conn{} }
func (c *Client) Subscribe(ctx context.Context, ch ...string) *PubSub  { return &PubSub{} }
func (c *Client) PSubscribe(ctx context.Context, ch ...string) *PubSub { return &PubSub{} }
func (c *Client) SSubscribe(ctx context.Context, ch ...string) *PubSub { return &PubSub{} }
func (c *Client) WithTimeout(d int) *Client                            { return c }

type Conn struct {
	baseClient
	cmdable
}

type PubSub struct{}

func (c *PubSub) Close() error                                      { return nil }
func (c *PubSub) Subscribe(ctx context.Context, ch ...string) error { return nil }
func (c *PubSub) Channel() <-chan *Message                          { return nil }
func (c *PubSub) Receive(ctx context.Context) (any, error)          { return nil, nil }

type Message struct{ Payload string }

type ClusterClient struct{ cmdable }

func NewClusterClient(opt *ClusterOptions) *ClusterClient          { return &ClusterClient{} }
func NewFailoverClusterClient(opt *FailoverOptions) *ClusterClient { return &ClusterClient{} }

func (c *ClusterClient) Close() error                                         { return nil }
func (c *ClusterClient) Subscribe(ctx context.Context, ch ...string) *PubSub  { return &PubSub{} }
func (c *ClusterClient) PSubscribe(ctx context.Context, ch ...string) *PubSub { return &PubSub{} }
func (c *ClusterClient) SSubscribe(ctx context.Context, ch ...string) *PubSub { return &PubSub{} }
func (c *ClusterClient) MasterForKey(ctx context.Context, key string) (*Client, error) {
	return &Client{}, nil
}
func (c *ClusterClient) ForEachMaster(ctx context.Context, fn func(ctx context.Context, client *Client) error) error {
	return fn(ctx, &Client{})
}
func (c *ClusterClient) ForEachShard(ctx context.Context, fn func(ctx context.Context, client *Client) error) error {
	return fn(ctx, &Client{})
}
func (c *ClusterClient) ForEachSlave(ctx context.Context, fn func(ctx context.Context, client *Client) error) error {
	return fn(ctx, &Client{})
}

type Ring struct{ cmdable }

func NewRing(opt *RingOptions) *Ring { return &Ring{} }

func (c *Ring) Close() error                                        { return nil }
func (c *Ring) Subscribe(ctx context.Context, ch ...string) *PubSub { return &PubSub{} }
func (c *Ring) ForEachShard(ctx context.Context, fn func(ctx context.Context, client *Client) error) error {
	return fn(ctx, &Client{})
}

type UniversalClient interface {
	Get(ctx context.Context, key string) *StringCmd
	Subscribe(ctx context.Context, channels ...string) *PubSub
	PSubscribe(ctx context.Context, channels ...string) *PubSub
	SSubscribe(ctx context.Context, channels ...string) *PubSub
	Close() error
}

func NewUniversalClient(opt *UniversalOptions) UniversalClient { return NewClient(&Options{}) }
