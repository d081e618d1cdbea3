package pool

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/track"
)

// Conn is a dedicated connection from [Client.Conn]. It embeds *redis.Conn and
// is outstanding, with the stack of the call that created it, until Close.
// Like redis.Conn it takes its socket on the first command and gives it back
// to the pool at Close; that socket counts against the cap until then.
//
// Closing the embedded *redis.Conn (cn.Conn.Close()) closes the Conn too: the
// client notices it when it next reports, counts its stats or closes, and at
// the latest when the *redis.Conn is garbage-collected.
type Conn struct {
	*redis.Conn
	use    *connUse
	closed atomic.Bool
	// collected is the cleanup that runs when the Conn is garbage-collected;
	// Close stops it, since a closed Conn has nothing left to check, and a
	// stopped cleanup costs less than one the runtime queues and runs.
	collected runtime.Cleanup
}

// connUse is the library's side of one Conn: its checkout, and the socket it
// took. It is the Conn's hook too, and holds no reference to the redis.Conn,
// so that it can tell, once the redis.Conn is garbage-collected, whether it
// was closed.
//
// A Conn is dropped when nothing holds it: neither the wrapper nor its
// *redis.Conn, which a caller may keep and use on its own. So the check runs
// in two steps: when the wrapper is collected, and then, if the redis.Conn
// is still reachable, when it is.
type connUse struct {
	st  *state
	tok track.Token
	// conn is the Conn while anything holds it. Held weakly: a Conn dropped
	// with its wrapper is then found at the collection that finds the
	// wrapper, rather than at the next one.
	conn  weak.Pointer[redis.Conn]
	pool  sticky                   // the Conn's pool in go-redis; zero when it cannot be read
	ended atomic.Bool              // the checkout ended: closed, or collected
	sock  atomic.Pointer[socket]   // the socket the Conn took
	pconn atomic.Pointer[poolConn] // go-redis's connection around it
	// stale is set until the checkout carries the socket's name, and again
	// when a CLIENT SETNAME on the Conn replaces that name.
	stale    atomic.Bool
	lastUsed atomic.Int64 // when its last command ended (or the Conn was made), as monoNow
	dead     atomic.Bool  // the server closed its socket
	// wrapperGone is set once the wrapper was collected; forgot once go-redis's
	// reference from the socket to the Conn was dropped (see forgetInit).
	wrapperGone, forgot atomic.Bool
	deadCount           atomic.Bool            // counted in state.deadConns: dead, and not yet closed or reclaimed
	reclaimed           atomic.Bool            // closed by the client (see WithReclaimAbandoned)
	why                 atomic.Pointer[string] // why it was reclaimed
	// depth counts the Conn's commands in progress: go-redis runs the
	// handshake of a new socket, the library's CLIENT SETNAME included, as
	// commands nested in the first one, and the socket's name is known only
	// once the outermost one is done.
	depth atomic.Int32

	index int // guarded by the client's connSet.mu: the Conn's place in it
}

// Conn returns a dedicated connection, like redis.Client.Conn, tracked until
// its Close. A Conn whose *redis.Conn is garbage-collected without being
// closed is reported as a definite leak, and its socket is returned to the
// pool.
func (c *Client) Conn() *Conn { return c.st.newConn(context.Background(), c.Client.Conn()) }

// ConnContext is [Client.Conn] whose checkout carries the label attached to
// ctx with tracker.WithLabel (a request id, say), as commands made with ctx
// do. go-redis's Conn takes no context; this one only reads the label.
func (c *Client) ConnContext(ctx context.Context) *Conn {
	return c.st.newConn(ctx, c.Client.Conn())
}

// EphemeralConn is [Client.Conn] whose Close discards the socket instead of
// returning it to the pool, like redis.Client.EphemeralConn.
func (c *Client) EphemeralConn() *Conn {
	return c.st.newConn(context.Background(), c.Client.EphemeralConn())
}

func (st *state) newConn(ctx context.Context, rc *redis.Conn) *Conn {
	if ctx == nil {
		ctx = context.Background()
	}
	// skip 2: newConn and Client.Conn; the report trims library frames anyway.
	u := &connUse{st: st, tok: st.scope.Checkout(ctx, track.KindConn, "", 2), conn: weak.Make(rc)}
	u.stale.Store(true)
	u.lastUsed.Store(monoNow())
	p, err := stickyOf(rc)
	if err == nil {
		u.pool = p
		err = onFirstSocket(rc, u)
	}
	if err != nil {
		st.namesOnce.Do(func() {
			st.log.Warn("redisleak: reports do not name the sockets of Conns, and a Conn closed through its *redis.Conn stays outstanding until collected; the go-redis version is not supported", "client", st.scope.Name(), "error", err)
		})
	}
	rc.AddHook(u)
	st.conns.add(u)
	cn := &Conn{Conn: rc, use: u}
	cn.collected = runtime.AddCleanup(cn, (*connUse).wrapperCollected, u)
	return cn
}

// Close returns the connection's socket to the pool and ends its checkout.
// Closing twice returns an error matching redis.ErrClosed and counts nothing.
func (cn *Conn) Close() error {
	if !cn.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("redisleak: Conn already closed: %w", redis.ErrClosed)
	}
	cn.use.end()
	cn.collected.Stop()
	if cn.use.reclaimed.Load() {
		return nil // the client closed its go-redis side already
	}
	return cn.Conn.Close()
}

// took runs when the Conn takes its socket from the pool.
func (u *connUse) took(s *socket, pc poolConn) {
	u.sock.Store(s)
	u.pconn.Store(&pc)
	s.setRole(roleConn)
	// Named by its address until its name on the server is known.
	u.tok.SetConnName(connNameOf(s))
}

// end ends the checkout once, and counts the socket the pool's again.
func (u *connUse) end() bool {
	if !u.ended.CompareAndSwap(false, true) {
		return false
	}
	u.tok.Release()
	u.forget()
	return true
}

// forget counts the Conn done with: its socket is the pool's again, and a
// dead one no longer counts.
func (u *connUse) forget() {
	if s := u.sock.Load(); s != nil {
		s.setRole(rolePool)
	}
	u.uncountDead()
	u.st.conns.remove(u)
}

// closedThroughGoRedis ends the checkout of a Conn that was closed without
// the library: through its embedded *redis.Conn.
func (u *connUse) closedThroughGoRedis() bool {
	return !u.ended.Load() && !u.reclaimed.Load() && u.pool.closed() && u.end()
}

// wrapperCollected runs when the wrapper is garbage-collected. A Conn closed
// by any path is done with; otherwise the check waits for the *redis.Conn,
// which a caller may still hold. go-redis holds it too, from the socket it
// first initialised (see poolConn.forgetInit): that reference is dropped, so
// that only callers keep the Conn reachable.
func (u *connUse) wrapperCollected() {
	if u.ended.Load() || u.closedThroughGoRedis() {
		return
	}
	rc := u.conn.Value()
	if rc == nil {
		u.collected()
		return
	}
	u.wrapperGone.Store(true)
	if u.depth.Load() == 0 {
		u.forgetInit()
	} // else the command in progress (the first may be initialising the socket) forgets it when done
	runtime.AddCleanup(rc, (*connUse).collected, u)
}

// forgetInit drops, once, go-redis's reference from the Conn's socket to the
// Conn (see poolConn.forgetInit), once the Conn's wrapper is gone and no
// command of the Conn is running: the wrapper can be collected while its first
// command, begun through it, still runs and initialises the socket, which sets
// that reference.
func (u *connUse) forgetInit() {
	pc := u.pconn.Load()
	if pc != nil && u.forgot.CompareAndSwap(false, true) {
		_ = pc.forgetInit()
	}
}

// collected runs when the Conn's *redis.Conn is garbage-collected. One that
// was closed, by whatever path, is no leak. One that was not is a definite
// leak: it stays reported, and its socket goes back to the pool, since nobody
// can use it any more.
func (u *connUse) collected() {
	if u.ended.Load() || !u.pool.known() {
		return
	}
	// Closed through its *redis.Conn before it was dropped. (A reclaimed
	// Conn's pool was closed by the client, not by its holder.)
	if u.pool.closed() && !u.reclaimed.Load() {
		u.end()
		return
	}
	// Ended before its pool is closed: a sweep (Stats, Report) running now
	// must not take the pool this closes for a close by the holder.
	if !u.ended.CompareAndSwap(false, true) {
		return
	}
	_ = u.pool.close() // its socket goes back to the pool
	// Counted the pool's before it is reported dropped: whoever sees the
	// report then sees the socket given back.
	u.forget()
	u.tok.MarkDropped()
}

// sweepConns ends the checkouts of the Conns closed through go-redis.
func (st *state) sweepConns() {
	st.conns.each((*connUse).closedThroughGoRedis)
}

// DialHook passes dials through.
func (u *connUse) DialHook(next redis.DialHook) redis.DialHook { return next }

// begin notes that a command of the Conn starts.
func (u *connUse) begin() {
	if u.depth.Add(1) == 1 {
		u.st.lim.connBusy.Add(1)
	}
}

// follow notes a CLIENT SETNAME on the Conn that replaced its socket's name
// (err is the command's outcome).
func (u *connUse) follow(cmd redis.Cmder, err error) {
	if s := u.sock.Load(); s != nil && (renames{s}).follow(cmd, err) {
		u.stale.Store(true)
	}
}

// finish notes that a command of the Conn is done. Once the first outermost
// command is, the socket is initialised and its name goes on the checkout,
// and again after a CLIENT SETNAME on the Conn replaced that name.
func (u *connUse) finish() {
	if u.depth.Add(-1) != 0 {
		return
	}
	u.st.lim.connBusy.Add(-1)
	u.lastUsed.Store(monoNow())
	if u.wrapperGone.Load() {
		u.forgetInit()
	}
	if s := u.sock.Load(); s != nil && u.stale.Swap(false) {
		u.tok.SetConnName(connNameOf(s))
	}
}

// ProcessHook follows the Conn's socket and its name.
func (u *connUse) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if u.reclaimed.Load() {
			err := u.reclaimedError()
			cmd.SetErr(err)
			return err
		}
		u.begin()
		defer u.finish()
		err := next(ctx, cmd)
		u.follow(cmd, err)
		return err
	}
}

// ProcessPipelineHook follows the Conn's socket and its name.
func (u *connUse) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if u.reclaimed.Load() {
			err := u.reclaimedError()
			for _, cmd := range cmds {
				cmd.SetErr(err)
			}
			return err
		}
		u.begin()
		defer u.finish()
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			u.follow(cmd, cmd.Err())
		}
		return err
	}
}

// monoBase anchors monoNow.
var monoBase = time.Now()

// monoNow is the time in nanoseconds since monoBase, read from the
// monotonic clock only: about half the cost of time.Now, on a Conn's path.
func monoNow() int64 { return int64(time.Since(monoBase)) }

// connSet is the Conns of a client not yet closed, for the sweeps that look
// at each: a slice under a mutex, each Conn knowing its place in it, so that
// adding and removing one neither hashes nor, once the slice has grown,
// allocates.
type connSet struct {
	mu sync.Mutex
	us []*connUse // guarded by mu; us[u.index] == u for every Conn in the set
}

func (cs *connSet) add(u *connUse) {
	cs.mu.Lock()
	u.index = len(cs.us)
	cs.us = append(cs.us, u)
	cs.mu.Unlock()
}

// remove takes u out of the set, moving the last Conn into its place;
// removing it again, or one never added, does nothing.
func (cs *connSet) remove(u *connUse) {
	cs.mu.Lock()
	if i := u.index; i < len(cs.us) && cs.us[i] == u {
		last := len(cs.us) - 1
		cs.us[i] = cs.us[last]
		cs.us[i].index = i
		cs.us[last] = nil
		cs.us = cs.us[:last]
	}
	cs.mu.Unlock()
}

// each calls fn for every Conn in the set when each began, outside the
// lock: fn may end a Conn, which removes it from the set.
func (cs *connSet) each(fn func(*connUse) bool) {
	cs.mu.Lock()
	us := slices.Clone(cs.us)
	cs.mu.Unlock()
	for _, u := range us {
		fn(u)
	}
}
