// Package clean holds look-alikes of leaks that are correct: nothing in it
// may be reported.
package clean

import (
	"context"
	"io"
	"log"

	"github.com/redis/go-redis/v9"
	"github.com/redisleak/redisleak/pool"
)

func deferClose(ctx context.Context, c *redis.Client) error {
	cn := c.Conn()
	defer cn.Close()
	return cn.Ping(ctx).Err()
}

func deferClosure(ctx context.Context, c *pool.Client) error {
	cn := c.Conn()
	defer func() { cn.Close() }()
	ps := c.Subscribe(ctx, "events")
	defer func() { _ = ps.Close() }()
	ps2 := c.SSubscribe(ctx, "shard")
	closePS := ps2.Close
	defer closePS()
	return cn.Ping(ctx).Err()
}

func closedOnEveryBranch(ctx context.Context, c *pool.Client) (string, error) {
	cn := c.Conn()
	v, err := cn.Get(ctx, "k").Result()
	if err != nil {
		_ = cn.Close()
		return "", err
	}
	if v == "" {
		cn.Close()
		return "", nil
	}
	return v, cn.Close()
}

// Closing the embedded *redis.Conn or *redis.Client closes the wrapper.
func closedThroughEmbedded(ctx context.Context, c *pool.Client, opt *redis.Options) error {
	cn := c.Conn()
	defer cn.Conn.Close()
	pc, err := pool.NewClient(opt)
	if err != nil {
		return err
	}
	defer pc.Client.Close()
	return cn.Ping(ctx).Err()
}

func returned(ctx context.Context, c *redis.Client) *redis.PubSub {
	return c.Subscribe(ctx, "events")
}

func returnedWithError(opt *redis.Options) (*pool.Client, error) {
	c, err := pool.NewClient(opt)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

type service struct {
	rdb   *redis.Client
	conns map[string]*pool.Conn
	subs  []*redis.PubSub
	out   chan *redis.PubSub
}

var shared *redis.Client

func storedInFieldMapGlobal(ctx context.Context, s *service, c *pool.Client) {
	s.rdb = redis.NewClient(&redis.Options{})
	s.conns["a"] = c.Conn()
	s.subs = append(s.subs, c.Subscribe(ctx, "a"))
	s.out <- c.PSubscribe(ctx, "b*")
	shared = redis.NewClient(&redis.Options{})
	local := &service{rdb: redis.NewClient(&redis.Options{})}
	s.conns["local"] = local.conns["x"]
}

func register(ps *redis.PubSub) {}

func passedToFunction(ctx context.Context, c *redis.Client) {
	ps := c.Subscribe(ctx, "events")
	register(ps)
	log.Println(c.Conn())
}

func goroutineCloses(ctx context.Context, c *pool.Client) {
	ps := c.Subscribe(ctx, "events")
	go func() {
		defer ps.Close()
		for range ps.Channel() {
		}
	}()
	cn := c.Conn()
	go cn.Close()
}

func constructorErrorPath(ctx context.Context, opt *redis.Options) error {
	c, err := pool.NewClient(opt)
	if err != nil {
		return err
	}
	defer c.Close()
	cc, err := pool.NewRing(&redis.RingOptions{})
	if err == nil {
		defer cc.Close()
		return cc.Ping(ctx).Err()
	}
	return c.Ping(ctx).Err()
}

// The opener's error kept in a named result that a deferred closure
// captures (so in a variable, not a register) is still the opener's error.
func namedResultError(ctx context.Context, opt *redis.ClusterOptions) (err error) {
	var c *pool.ClusterClient
	c, err = pool.NewClusterClient(opt)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return c.Ping(ctx).Err()
}

func connForKeyClosed(ctx context.Context, c *pool.ClusterClient) error {
	cn, err := c.ConnForKey(ctx, "k")
	if err != nil {
		return err
	}
	defer cn.Close()
	return cn.Ping(ctx).Err()
}

func ignored(ctx context.Context, c *redis.Client) {
	c.Subscribe(ctx, "events") //redisleak:ignore: closed by the hub's shutdown hook
	//redisleak:ignore
	c.Conn()
}

// Node clients belong to the cluster client, which closes them.
func nodeClients(ctx context.Context, c *redis.ClusterClient, r *redis.Ring) error {
	master, err := c.MasterForKey(ctx, "k")
	if err != nil {
		return err
	}
	master.Ping(ctx)
	_ = c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		return node.Ping(ctx).Err()
	})
	_ = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return nil })
	_ = c.ForEachSlave(ctx, func(ctx context.Context, node *redis.Client) error { return nil })
	return r.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error { return nil })
}

// Closed through an interface holding it.
func closedAsCloser(ctx context.Context, c *redis.Client) {
	var cl io.Closer = c.Conn()
	defer cl.Close()
	u := redis.NewUniversalClient(&redis.UniversalOptions{})
	if cc, ok := u.(*redis.Client); ok {
		defer cc.Close()
		return
	}
	u.Close()
}

// Paths that end the process or the test are not leaks.
func fatalPath(ctx context.Context, c *redis.Client) {
	cn := c.Conn()
	if err := cn.Ping(ctx).Err(); err != nil {
		log.Fatal(err)
	}
	if err := cn.Ping(ctx).Err(); err != nil {
		panic(err)
	}
	cn.Close()
}

// One Pub/Sub per iteration, each closed before the next.
func loopClosed(ctx context.Context, c *redis.Ring, channels []string) {
	for _, ch := range channels {
		ps := c.Subscribe(ctx, ch)
		_, _ = ps.Receive(ctx)
		ps.Close()
	}
}

// A nil check of the handle itself: nothing is open on the nil side.
func nilChecked(ctx context.Context, c *redis.Client) {
	cn := c.Conn()
	if cn == nil {
		return
	}
	defer cn.Close()
}

// A closure that captures the handle owns it (it may run later, or close).
func capturedByClosure(ctx context.Context, c *redis.Client) func() {
	cn := c.Conn()
	return func() { cn.Close() }
}

// Clones share their parent's pool: WithTimeout is not an open, and
// returning or closing a clone hands off or closes its parent.
func clone(c *redis.Client) *redis.StringCmd {
	return c.WithTimeout(5).Get(context.Background(), "k")
}

func cloneReturned() *redis.Client {
	owner := redis.NewClient(&redis.Options{})
	return owner.WithTimeout(5)
}

func cloneClosed(ctx context.Context) {
	owner := redis.NewClient(&redis.Options{})
	cl := owner.WithTimeout(5)
	defer cl.Close()
	cl.Get(ctx, "k")
}

// A deferred close registered before the open, through the variable.
func deferredBeforeOpen(ctx context.Context, c *redis.Client) error {
	var ps *redis.PubSub
	defer func() {
		if ps != nil {
			_ = ps.Close()
		}
	}()
	ps = c.Subscribe(ctx, "events")
	_, err := ps.Receive(ctx)
	return err
}

// Opened on one branch, closed after a nil check of the merged variable.
func maybeConn(ctx context.Context, c *pool.Client, need bool) {
	var cn *pool.Conn
	if need {
		cn = c.Conn()
	}
	c.Ping(ctx)
	if cn != nil {
		cn.Close()
	}
}

var held []*pool.Conn

// Kept on the error path, closed on the other (examples/leakdemo).
func keptOnError(ctx context.Context, c *pool.Client) error {
	cn := c.Conn()
	if err := cn.Ping(ctx).Err(); err != nil {
		held = append(held, cn)
		return err
	}
	return cn.Close()
}

// Only the error wanted: a check that bad options are refused.
func refusesOptions() error {
	_, err := pool.NewClusterClient(&redis.ClusterOptions{})
	return err
}
