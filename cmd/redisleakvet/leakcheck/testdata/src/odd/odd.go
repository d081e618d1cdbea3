// Package odd holds unusual shapes of code around handles, to check that
// the analyzer neither panics on them nor misreads them.
package odd

import (
	"context"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/redisleak/redisleak/pool"
)

// A generic function: its body is analyzed once, in generic form.
func generic[T any](ctx context.Context, c *redis.Client, v T) T {
	ps := c.Subscribe(ctx, "g") // want `is never closed`
	_ = ps
	return v
}

type opener interface{ Conn() *pool.Conn }

// Through an interface of the caller's own: not a known opener.
func ownInterface(o opener) { o.Conn() }

// A method expression closes like a method call.
func methodExpression(ctx context.Context, c *redis.Client) {
	ps := c.Subscribe(ctx, "m")
	defer (*redis.PubSub).Close(ps)
}

// Handles in a local array: an element store lets them out (conservative).
func array(ctx context.Context, c *redis.Client) {
	var a [2]*redis.PubSub
	a[0] = c.Subscribe(ctx, "a")
	a[0].Close()
}

// An unsafe conversion lets the handle out.
func unsafeConv(c *redis.Client) uintptr {
	cn := c.Conn()
	return uintptr(unsafe.Pointer(cn))
}

// Recover, goto and labeled loops.
func control(ctx context.Context, c *redis.Client, n int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = context.Canceled
		}
	}()
	cn := c.Conn()
	defer cn.Close()
outer:
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if j == 3 {
				continue outer
			}
			if i == 5 {
				goto done
			}
		}
	}
done:
	return cn.Ping(ctx).Err()
}

// A defer in a loop still closes each handle (at return).
func deferInLoop(ctx context.Context, c *redis.Client, chans []string) {
	for _, ch := range chans {
		ps := c.Subscribe(ctx, ch)
		defer ps.Close()
	}
}

// Select, and a type switch on an interface holding the handle.
func selectSwitch(ctx context.Context, u redis.UniversalClient, in <-chan int) {
	ps := u.Subscribe(ctx, "s") // want `is not closed on the path returning at odd\.go:\d+`
	var x any = ps
	switch v := x.(type) {
	case *redis.PubSub:
		select {
		case <-in:
			v.Close()
		case <-ctx.Done():
		}
	}
}

// A handle closed only on the nil side of its own check is still open on
// the other.
func wrongNilCheck(c *redis.Client) {
	cn := c.Conn() // want `is not closed on the path returning at odd\.go:\d+`
	if cn != nil {
		return
	}
	cn.Close()
}

// A deferred closure that captures the handle without closing it owns it.
func deferredNoClose(ctx context.Context, c *redis.Client) {
	ps := c.Subscribe(ctx, "d")
	defer func() { println(ps) }()
}

// A closure with an argument, deferred: the capture is an escape.
func deferredWithArg(ctx context.Context, c *redis.Client) {
	cn := c.Conn()
	defer func(n int) { cn.Close() }(1)
}

// Opens whose handle is a struct value field of a composite literal.
type pair struct{ a, b *redis.PubSub }

func composite(ctx context.Context, c *redis.Client) pair {
	return pair{a: c.Subscribe(ctx, "a"), b: c.Subscribe(ctx, "b")}
}

// Deferred and go'ed opens drop their handle; they are rare enough that
// the analyzer leaves them out (see the README's limitations).
func deferredOpen(ctx context.Context, c *redis.Client) {
	defer c.Subscribe(ctx, "x")
	go c.Conn()
}

// A loop that never ends reaches no return: the handle lives as long as
// the goroutine, which is not a leak of this function.
func serve(ctx context.Context, c *pool.Client) {
	ps := c.Subscribe(ctx, "once")
	for {
		_, _ = ps.Receive(ctx)
	}
}
