//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris || illumos

package pool

import (
	"net"
	"syscall"
)

// closedByPeer reports whether the peer has closed conn, by peeking at the
// socket without reading from it: a read of zero bytes is the peer's EOF. It
// reports false when it cannot tell (a connection without a file descriptor).
func closedByPeer(conn net.Conn) bool {
	for range 4 { // a TLS connection sits on the TCP one
		if sc, ok := conn.(syscall.Conn); ok {
			return peekEOF(sc)
		}
		inner, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return false
		}
		conn = inner.NetConn()
	}
	return false
}

func peekEOF(sc syscall.Conn) bool {
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	eof := false
	_ = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Zero bytes is the peer's EOF; an error other than "nothing to
		// read yet" is a reset or worse.
		eof = (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR)
		return true
	})
	return eof
}
