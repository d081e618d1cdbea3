package pool

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redisleak/redisleak/internal/track"
)

// DefaultDrainTimeout is how long, unless [WithDrainTimeout] says otherwise,
// a closed socket keeps its slot of the cap while the server confirms the
// close: a live server answers in one round trip; this covers a stall or a
// path latency as long as go-redis's default DialTimeout.
const DefaultDrainTimeout = 5 * time.Second

// socket wraps every net.Conn the client opens. It is counted by the limiter
// from the dial until the server has seen it close, and under a cap holds one
// slot for that long. It gives the slot back exactly once: on Close (which
// go-redis may call twice), or, as a backstop, when the socket is
// garbage-collected without Close.
type socket struct {
	net.Conn
	lim     *limiter
	id      uint64                 // unique among the process's sockets; part of the name the server shows
	name    atomic.Pointer[string] // the socket's name on the server, once it took one (see names.go)
	state   *sockState
	cleanup runtime.Cleanup
}

// sockState is what a socket and its backstop share; it is allocated apart
// from the socket so that the backstop does not keep the socket reachable.
type sockState struct {
	mu     sync.Mutex
	role   role // who holds the socket; counted in limiter.open while open
	closed bool
	done   atomic.Bool // closed, readable without the lock
	// tok is the checkout of a Pub/Sub opened through the embedded go-redis
	// client, which only the socket's close ends; zero otherwise.
	tok track.Token
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

// backstop is what the cleanup of a socket dropped without Close needs: it
// must not reference the socket, or the socket could never be collected.
type backstop struct {
	conn  net.Conn
	lim   *limiter
	state *sockState
}

func newSocket(inner net.Conn, lim *limiter, r role, tok track.Token) net.Conn {
	s := &socket{Conn: inner, lim: lim, id: socketIDs.Add(1), state: &sockState{role: r, tok: tok}}
	s.cleanup = runtime.AddCleanup(s, func(b backstop) {
		_ = b.conn.Close()
		b.state.mu.Lock()
		r := b.state.role
		b.state.mu.Unlock()
		b.state.tok.Release()
		b.lim.open[r].Add(-1)
		b.lim.collected.Add(1)
		b.lim.releaseSlot()
	}, backstop{conn: inner, lim: lim, state: s.state})
	if _, ok := inner.(syscall.Conn); ok {
		return sysSocket{s}
	}
	return s
}

// NetConn returns the wrapped connection, as crypto/tls.Conn does.
func (s *socket) NetConn() net.Conn { return s.Conn }

// setRole records that r now holds the open socket.
func (s *socket) setRole(r role) {
	st := s.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed || st.role == r {
		return
	}
	s.lim.open[r].Add(1)
	s.lim.open[st.role].Add(-1)
	st.role = r
}

// Read reads from the connection. Once the socket is closed a read fails
// with net.ErrClosed, as on a plain connection, even while the socket waits
// for the server to confirm the close (a reader blocked in Read sees the
// server's EOF then).
func (s *socket) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if err != nil && s.state.done.Load() {
		err = &net.OpError{Op: "read", Net: s.LocalAddr().Network(), Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: net.ErrClosed}
	}
	return n, err
}

// Write writes to the connection. While a blocking command of the client
// waits to learn its socket, it looks at the command written.
func (s *socket) Write(p []byte) (int, error) {
	if s.lim.blocking.pending.Load() > 0 {
		s.lim.blocking.wrote(s, p)
	}
	return s.Conn.Write(p)
}

// Close closes the socket and, under a cap, gives its slot back once the
// server has seen the close. When the connection can half-close, the slot is
// held until the server closes its side (or drainTimeout passes): the server
// frees a client only after reading EOF, so releasing the slot earlier would
// let the next dial reach the server while it still counts the old socket,
// one over the cap.
func (s *socket) Close() error {
	st := s.state
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.done.Store(true)
	r := st.role
	st.mu.Unlock()
	s.cleanup.Stop()
	st.tok.Release()

	cw, ok := s.Conn.(interface{ CloseWrite() error })
	if s.lim.sem == nil || !ok || !s.lim.begin() {
		s.lim.open[r].Add(-1)
		err := s.Conn.Close()
		s.lim.releaseSlot()
		return err
	}
	// Counted as draining before it stops counting as open, so that the
	// slots held never read low.
	s.lim.draining.Add(1)
	s.lim.open[r].Add(-1)
	if cw.CloseWrite() != nil {
		s.lim.draining.Add(-1)
		err := s.Conn.Close()
		s.lim.releaseSlot()
		s.lim.end()
		return err
	}
	s.lim.mu.Lock()
	s.lim.drainSet[s] = struct{}{}
	s.lim.mu.Unlock()
	go s.drain()
	return nil
}

// drain waits for the server to close its side, then closes the socket and
// releases its slot. It waits at most the limiter's drainTimeout, and not at
// all once the client's Close began, which waits for every drain.
func (s *socket) drain() {
	defer s.lim.end()
	_ = s.Conn.SetReadDeadline(time.Now().Add(s.lim.drainTimeout))
	_, err := io.Copy(io.Discard, io.LimitReader(s.Conn, 1<<20))
	var timeout net.Error
	if errors.As(err, &timeout) && timeout.Timeout() && !s.lim.isClosing() {
		s.lim.drainTimeouts.Add(1)
	}
	s.lim.mu.Lock()
	delete(s.lim.drainSet, s)
	s.lim.mu.Unlock()
	_ = s.Conn.Close()
	s.lim.draining.Add(-1)
	s.lim.releaseSlot()
}
