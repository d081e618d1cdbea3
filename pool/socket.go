package pool

import (
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// drainTimeout bounds how long a closed socket keeps its cap slot while the
// server confirms the close. A live server answers in one round trip; a dead
// one is not counting the socket anyway.
const drainTimeout = time.Second

// socket wraps every net.Conn the client opens. It holds one slot of the cap
// from the dial until the server has seen it close, and gives the slot back
// exactly once: on Close (which go-redis may call twice), or, as a backstop,
// when the socket is garbage-collected without Close.
type socket struct {
	net.Conn
	lim     *limiter
	id      uint64                 // unique among the process's sockets; part of the name the server shows
	name    atomic.Pointer[string] // the socket's name on the server, once it took one (see names.go)
	closed  atomic.Bool            // set by the first Close; later Closes do nothing
	cleanup runtime.Cleanup
}

// socketIDs gives out socket ids. It counts for the whole process rather than
// per client, so that two clients of one name do not give the server two
// sockets of one name.
var socketIDs atomic.Uint64

// sysSocket is a socket whose inner connection implements syscall.Conn.
// go-redis's health check on a pooled connection type-asserts syscall.Conn on
// the outer connection and silently turns itself off without it, so the
// wrapper must offer it exactly when the inner connection does (a TLS
// connection does not, and then neither does the wrapper).
type sysSocket struct{ *socket }

// SyscallConn returns the inner connection's raw connection.
func (s sysSocket) SyscallConn() (syscall.RawConn, error) {
	return s.Conn.(syscall.Conn).SyscallConn()
}

// slotRelease is what the backstop needs: it must not reference the socket,
// or the socket could never be collected.
type slotRelease struct {
	conn net.Conn
	lim  *limiter
}

func newSocket(inner net.Conn, lim *limiter) net.Conn {
	s := &socket{Conn: inner, lim: lim, id: socketIDs.Add(1)}
	s.cleanup = runtime.AddCleanup(s, func(r slotRelease) {
		_ = r.conn.Close()
		r.lim.releaseSlot()
	}, slotRelease{conn: inner, lim: lim})
	if _, ok := inner.(syscall.Conn); ok {
		return sysSocket{s}
	}
	return s
}

// NetConn returns the wrapped connection, as crypto/tls.Conn does.
func (s *socket) NetConn() net.Conn { return s.Conn }

// Write lets a pending reservation recognise its socket (see limiter.claim)
// before passing p on. The check is one atomic load while none is pending.
func (s *socket) Write(p []byte) (int, error) {
	if s.lim.claims.Load() != 0 {
		s.lim.matchClaim(s, p)
	}
	return s.Conn.Write(p)
}

// Close closes the socket and gives its slot back once the server has seen the
// close. When the connection can half-close, the slot is held until the
// server closes its side (or drainTimeout passes): the server frees a client
// only after reading EOF, so releasing the slot earlier would let the next
// dial reach the server while it still counts the old socket, one over the cap.
func (s *socket) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.cleanup.Stop()
	cw, ok := s.Conn.(interface{ CloseWrite() error })
	if !ok || s.lim.closing.Load() || cw.CloseWrite() != nil {
		err := s.Conn.Close()
		s.lim.releaseSlot()
		return err
	}
	s.lim.drains.Add(1)
	go s.drain()
	return nil
}

// drain waits for the server to close its side, then closes the socket and
// releases its slot. Client.Close waits for every drain.
func (s *socket) drain() {
	defer s.lim.drains.Done()
	_ = s.Conn.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(s.Conn, 1<<20))
	_ = s.Conn.Close()
	s.lim.releaseSlot()
}
