package pool

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/tracker"
)

// Conn is a dedicated connection from [Client.Conn]. It embeds *redis.Conn and
// is outstanding, with the stack of the call that created it, until Close.
// Like redis.Conn it takes its socket on the first command and gives it back
// to the pool at Close; that socket counts against the cap until then.
type Conn struct {
	*redis.Conn
	st      *state
	tok     tracker.Token
	use     *connUse
	closed  atomic.Bool
	cleanup runtime.Cleanup
}

// connUse records whether a Conn has taken its socket, for Stats, and names
// that socket on the Conn's checkout.
type connUse struct {
	st    *state
	tok   tracker.Token
	state atomic.Int32 // connUnused, then connUsed at the first command, then connReleased

	sock atomic.Pointer[socket] // the socket the Conn took at its first command
	// stale is set until the checkout carries the socket's name, and again
	// when a CLIENT SETNAME on the Conn replaces that name.
	stale atomic.Bool
	// depth counts the Conn's commands in progress: go-redis runs the
	// handshake of a new socket, the library's CLIENT SETNAME included, as
	// commands nested in the first one, and the socket's name is known only
	// once the outermost one is done.
	depth atomic.Int32
}

const (
	connUnused int32 = iota
	connUsed
	connReleased
)

// Conn returns a dedicated connection, like redis.Client.Conn, tracked until
// its Close. A Conn that is garbage-collected without Close is reported as a
// definite leak and its socket is returned to the pool.
func (c *Client) Conn() *Conn { return c.st.newConn(c.Client.Conn()) }

// EphemeralConn is [Client.Conn] whose Close discards the socket instead of
// returning it to the pool, like redis.Client.EphemeralConn.
func (c *Client) EphemeralConn() *Conn { return c.st.newConn(c.Client.EphemeralConn()) }

func (st *state) newConn(rc *redis.Conn) *Conn {
	// skip 2: newConn and Client.Conn; the report trims library frames anyway.
	cn := &Conn{Conn: rc, st: st, tok: st.scope.Checkout(context.Background(), tracker.KindConn, "", 2)}
	cn.use = &connUse{st: st, tok: cn.tok}
	cn.use.stale.Store(true)
	if err := onFirstSocket(rc, cn.use.sock.Store); err != nil {
		st.namesOnce.Do(func() {
			st.log.Warn("redisleak: reports do not name the sockets of Conns; the go-redis version is not supported", "client", st.scope.Name(), "error", err)
		})
	}
	rc.AddHook(cn.use)
	cn.cleanup = runtime.AddCleanup(cn, dropConn, droppedConn{tok: cn.tok, conn: rc, use: cn.use})
	return cn
}

type droppedConn struct {
	tok  tracker.Token
	conn *redis.Conn
	use  *connUse
}

// dropConn runs when a Conn is garbage-collected without Close: the leak stays
// reported, and the socket goes back to the pool, since nobody can use it.
func dropConn(d droppedConn) {
	d.tok.MarkDropped()
	d.use.release()
	_ = d.conn.Close()
}

// Close returns the connection's socket to the pool and ends its checkout.
// Closing twice returns an error matching redis.ErrClosed and counts nothing.
func (cn *Conn) Close() error {
	if !cn.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("redisleak: Conn already closed: %w", redis.ErrClosed)
	}
	cn.cleanup.Stop()
	cn.tok.Release()
	cn.use.release()
	return cn.Conn.Close()
}

func (u *connUse) release() {
	if u.state.Swap(connReleased) == connUsed {
		u.st.connSockets.Add(-1)
	}
}

func (u *connUse) markUsed() {
	if u.state.Load() == connUnused && u.state.CompareAndSwap(connUnused, connUsed) {
		u.st.connSockets.Add(1)
	}
}

// DialHook passes dials through.
func (u *connUse) DialHook(next redis.DialHook) redis.DialHook { return next }

// begin notes that a command of the Conn starts.
func (u *connUse) begin() {
	u.markUsed()
	u.depth.Add(1)
}

// follow notes a CLIENT SETNAME on the Conn that replaced its socket's name
// (err is the command's outcome).
func (u *connUse) follow(cmd redis.Cmder, err error) {
	if s := u.sock.Load(); s != nil && (renames{s}).follow(cmd, err) {
		u.stale.Store(true)
	}
}

// end notes that a command of the Conn is done. Once the first outermost
// command is, the socket is initialised and its name goes on the checkout,
// and again after a CLIENT SETNAME on the Conn replaced that name.
func (u *connUse) end() {
	if u.depth.Add(-1) != 0 {
		return
	}
	if s := u.sock.Load(); s != nil && u.stale.Swap(false) {
		u.tok.SetConnName(connNameOf(s))
	}
}

// ProcessHook notes that the Conn has taken its socket.
func (u *connUse) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		u.begin()
		err := next(ctx, cmd)
		u.follow(cmd, err)
		u.end()
		return err
	}
}

// ProcessPipelineHook notes that the Conn has taken its socket.
func (u *connUse) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		u.begin()
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			u.follow(cmd, cmd.Err())
		}
		u.end()
		return err
	}
}
