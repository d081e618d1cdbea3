// Package leaks holds the planted leaks: each open marked with a want
// comment must be reported, with the path that leaves it open.
package leaks

import (
	"context"
	"errors"
	"net/http"

	"github.com/redis/go-redis/v9"
	"github.com/redisleak/redisleak/pool"
)

var errSoldOut = errors.New("sold out")

// Early return on an error after Conn: the error path skips Close.
func earlyReturn(ctx context.Context, c *redis.Client) error {
	cn := c.Conn() // want `^\*redis\.Conn from Client\.Conn is not closed when err != nil at leaks\.go:19$`
	if err := cn.Ping(ctx).Err(); err != nil {
		return err
	}
	return cn.Close()
}

// Closed on the happy path only, as in examples/connerrorpath.
func happyPathOnly(ctx context.Context, c *pool.Client) error {
	cn := c.Conn() // want `^\*pool\.Conn from Client\.Conn is not closed on the path returning at leaks\.go:34 \(through the branch at leaks\.go:33\)$`
	v, err := cn.Get(ctx, "tickets").Result()
	if err != nil {
		_ = cn.Close()
		return err
	}
	if v == "0" {
		return errSoldOut
	}
	return cn.Close()
}

// Stored nowhere: the handle is dropped at once.
func storedNowhere(ctx context.Context, c *redis.Client, u redis.UniversalClient) <-chan *redis.Message {
	c.Subscribe(ctx, "events")                // want `^\*redis\.PubSub from Client\.Subscribe is never closed; it leaks on the path returning at leaks\.go:43$`
	_ = c.Conn()                              // want `^\*redis\.Conn from Client\.Conn is never closed`
	return u.PSubscribe(ctx, "ev*").Channel() // want `^\*redis\.PubSub from UniversalClient\.PSubscribe is never closed`
}

// One Pub/Sub per channel in a loop, none closed.
func pubSubInLoop(ctx context.Context, c *redis.ClusterClient, channels []string) {
	for _, ch := range channels {
		ps := c.SSubscribe(ctx, ch) // want `^\*redis\.PubSub from ClusterClient\.SSubscribe is never closed; it leaks on the path returning at leaks\.go:52$`
		_, _ = ps.Receive(ctx)
	}
}

// A loop that never returns, reopening on every iteration.
func resubscribeForever(ctx context.Context, r *redis.Ring) {
	for {
		ps := r.Subscribe(ctx, "events") // want `^\*redis\.PubSub from Ring\.Subscribe is not closed when err != nil at leaks\.go:58 before the loop opens another$`
		if _, err := ps.Receive(ctx); err != nil {
			continue
		}
		_ = ps.Close()
	}
}

// A client per request, never closed (examples/clientperrequest).
func clientPerRequest(w http.ResponseWriter, r *http.Request) {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"}) // want `^\*redis\.Client from redis\.NewClient is never closed; it leaks when err != nil at leaks\.go:69$`
	v, err := rdb.Get(r.Context(), "views").Result()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write([]byte(v))
}

// The library's constructor, checked for its error but not closed.
func poolClientPerRequest(ctx context.Context, addr string) error {
	c, err := pool.NewClient(&redis.Options{Addr: addr}) // want `^\*pool\.Client from pool\.NewClient is never closed; it leaks when err != nil at leaks\.go:82$`
	if err != nil {
		return err
	}
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	return nil
}

// Both results dropped: a client is still made.
func droppedClient() {
	_, _ = pool.NewClusterClient(&redis.ClusterOptions{}) // want `^\*pool\.ClusterClient from pool\.NewClusterClient is never closed`
}

// ConnForKey closed on the happy path only.
func connForKey(ctx context.Context, c *pool.ClusterClient) (string, error) {
	cn, err := c.ConnForKey(ctx, "k") // want `^\*pool\.Conn from ClusterClient\.ConnForKey is not closed when err != nil at leaks\.go:100$`
	if err != nil {
		return "", err // nothing opened: not this leak
	}
	v, err := cn.Get(ctx, "k").Result()
	if err != nil {
		return "", err
	}
	return v, cn.Close()
}

// A deferred Close on one branch only.
func conditionalDefer(ctx context.Context, c *pool.Client, long bool) {
	ps := c.PSubscribe(ctx, "a*") // want `^\*redis\.PubSub from Client\.PSubscribe is not closed on the path returning at leaks\.go:113 \(through the branch at leaks\.go:107\)$`
	if long {
		defer ps.Close()
	}
	_, _ = ps.Receive(ctx)
}

// A listener goroutine that returns on cancellation without closing
// (examples/pubsubgoroutine, without its cleanup list).
func listen(ctx context.Context, c *pool.Client, got chan<- string) {
	go func() {
		ps := c.Subscribe(ctx, "events") // want `^\*redis\.PubSub from Client\.Subscribe is never closed; it leaks on the path returning at leaks\.go:123$`
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-ps.Channel():
				got <- m.Payload
			}
		}
	}()
}

// The other constructors and openers, each left open.
func others(ctx context.Context, u pool.UniversalClient, r *pool.Ring) {
	uc, _ := pool.NewUniversalClient(&redis.UniversalOptions{}) // want `^\*?pool\.UniversalClient from pool\.NewUniversalClient is never closed`
	uc.Get(ctx, "k")
	fc := redis.NewFailoverClusterClient(&redis.FailoverOptions{}) // want `^\*redis\.ClusterClient from redis\.NewFailoverClusterClient is never closed`
	fc.Get(ctx, "k")
	if cn, err := r.ConnForKey(ctx, "k"); err == nil { // want `^\*pool\.Conn from Ring\.ConnForKey is never closed`
		cn.Get(ctx, "k")
	}
	u.SSubscribe(ctx, "s")                                    // want `^\*redis\.PubSub from UniversalClient\.SSubscribe is never closed`
	r.Subscribe(ctx, "r")                                     // want `^\*redis\.PubSub from Ring\.Subscribe is never closed`
	ru := redis.NewUniversalClient(&redis.UniversalOptions{}) // want `^redis\.UniversalClient from redis\.NewUniversalClient is never closed`
	ru.Get(ctx, "k")
}

// A Conn closed, then reused, then not closed on the error path: the close
// happens before the leaking path, not on it.
func ephemeral(ctx context.Context, c *pool.Client) error {
	cn := c.EphemeralConn() // want `^\*pool\.Conn from Client\.EphemeralConn is not closed on the path returning at leaks\.go:151 \(through the branch at leaks\.go:150\)$`
	if err := cn.Ping(ctx).Err(); err == nil {
		return nil
	}
	return cn.Close()
}

// A clone used in place of its parent does not close it.
func cloneNotClosed(ctx context.Context) {
	owner := redis.NewClient(&redis.Options{}) // want `^\*redis\.Client from redis\.NewClient is never closed; it leaks on the path returning at leaks\.go:160$`
	owner.WithTimeout(5).Get(ctx, "k")
}

type hub struct{ subs []*redis.PubSub }

// Handed off on the happy path only: the error path returns before the
// hand-off and leaks.
func handedOffLate(ctx context.Context, c *pool.Client, h *hub) error {
	ps := c.Subscribe(ctx, "events") // want `^\*redis\.PubSub from Client\.Subscribe is never closed; it leaks when err != nil at leaks\.go:\d+$`
	if _, err := ps.Receive(ctx); err != nil {
		return err
	}
	h.subs = append(h.subs, ps)
	return nil
}

// A loop that skips the Close on some iterations.
func skipsClose(ctx context.Context, r *redis.Ring, chans []string) {
	for {
		ps := r.Subscribe(ctx, "x") // want `^\*redis\.PubSub from Ring\.Subscribe is not closed before the loop opens another at leaks\.go:178 \(through the branch at leaks\.go:179\)$`
		if len(chans) == 0 {
			continue
		}
		ps.Close()
	}
}

// The first client that answers, skipping some that do without closing
// them (the shape of a leak found in go-redis's sentinel code).
func firstWorking(ctx context.Context, addrs []string) *redis.Client {
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a}) // want `^\*redis\.Client from redis\.NewClient is not closed on the path returning at leaks\.go:200 \(through the branch at leaks\.go:195\)$`
		if err := c.Ping(ctx).Err(); err != nil {
			_ = c.Close()
			continue
		}
		if a == "" {
			continue
		}
		return c
	}
	return nil
}
