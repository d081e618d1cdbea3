package pool

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/stack"
)

// A Conn a caller leaked keeps its socket and its turn of the pool even after
// the server closed that socket (CLIENT KILL, the server's timeout, the
// inspector's kill-idle): the server shows one connection fewer, the client
// is still short of one, and nothing says why. So the client's watch looks at
// the socket of every open Conn not running a command, about once a second,
// notes on the Conn's checkout that the server closed it, and counts it in
// Stats.DeadConns. With WithReclaimAbandoned the client also closes such a
// Conn, and one idle longer than the threshold, to get its turn and slot
// back, as Commons Pool's removeAbandoned does.

// Notes on the checkouts of Conns, in reports.
const (
	noteClosedByServer = "connection closed by the server"
	noteReclaimed      = "reclaimed by the client (see WithReclaimAbandoned)"
)

// WithReclaimAbandoned closes, on the caller's behalf, a dedicated Conn whose
// socket the server has closed, and one that has run no command for idle
// (when idle is positive): its socket and its turn of the pool go back to the
// pool, so that a client whose turns were all held by leaked Conns serves
// commands again. Such a Conn stays in reports as a leak, noted "reclaimed",
// and each later command on it fails with an error that says so, where it
// was created, and matches redis.ErrClosed. Its own Close then ends it.
//
// It is off by default: a Conn is the caller's, and one held idle on purpose
// (a lock, a subscription-like protocol) would break. idle must not be
// negative; 0 reclaims only Conns whose socket the server closed.
func WithReclaimAbandoned(idle time.Duration) Option {
	return func(c *config) {
		if idle < 0 {
			c.errs = append(c.errs, fmt.Errorf("pool: WithReclaimAbandoned(%s): the idle threshold must be 0 (dead sockets only) or positive", idle))
			return
		}
		c.reclaim, c.reclaimIdle = true, idle
	}
}

// checkConns checks the sockets of the open Conns; the watch runs it.
func (st *state) checkConns() {
	now := monoNow()
	st.conns.each(func(u *connUse) bool {
		u.check(now)
		return true
	})
}

// check notes a Conn whose socket the server closed, and reclaims it if the
// client reclaims abandoned Conns.
func (u *connUse) check(now int64) {
	s := u.sock.Load()
	if s == nil || u.ended.Load() || u.reclaimed.Load() || u.depth.Load() != 0 {
		return // no socket yet, done with, or running a command
	}
	if !u.dead.Load() && closedByPeer(s.Conn) && u.dead.CompareAndSwap(false, true) {
		if u.deadCount.CompareAndSwap(false, true) {
			u.st.deadConns.Add(1)
		}
		u.tok.SetNote(noteClosedByServer)
	}
	st := u.st
	if !st.reclaim {
		return
	}
	idle := time.Duration(now - u.lastUsed.Load())
	switch {
	case u.dead.Load():
		u.reclaim("its socket was closed by the server")
	case st.reclaimIdle > 0 && idle > st.reclaimIdle:
		u.reclaim(fmt.Sprintf("idle for %s", idle.Round(time.Second)))
	}
}

// reclaim closes the Conn on its holder's behalf.
func (u *connUse) reclaim(why string) {
	if !u.pool.known() || u.depth.Load() != 0 {
		return
	}
	u.why.Store(&why)
	if !u.reclaimed.CompareAndSwap(false, true) {
		return
	}
	if u.dead.Load() {
		// go-redis's pool drops a closed socket when it next hands it out.
		_ = u.sock.Load().Close()
	}
	u.uncountDead() // it holds no pool turn any longer
	_ = u.pool.close()
	if s := u.sock.Load(); s != nil {
		s.setRole(rolePool)
	}
	u.tok.SetNote(noteReclaimed)
	u.st.reclaimed.Add(1)
	site, _ := u.tok.Site()
	u.st.log.Warn("redisleak: reclaimed a Conn nobody closed", "client", u.st.scope.Name(), "reason", why, "origin", stack.FrameString(site.Function, site.File, site.Line))
}

// uncountDead stops counting the Conn in Stats.DeadConns, once.
func (u *connUse) uncountDead() {
	if u.deadCount.CompareAndSwap(true, false) {
		u.st.deadConns.Add(-1)
	}
}

// reclaimedError is what a command on a reclaimed Conn returns.
func (u *connUse) reclaimedError() error {
	site, _ := u.tok.Site()
	why := "abandoned"
	if w := u.why.Load(); w != nil {
		why = *w
	}
	return fmt.Errorf("redisleak: Conn created at %s was reclaimed by the client (%s; see WithReclaimAbandoned): %w", stack.ShortPos(site.File, site.Line), why, redis.ErrClosed)
}
