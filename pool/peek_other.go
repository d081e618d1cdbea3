//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris || illumos)

package pool

import "net"

// closedByPeer cannot peek at a socket on this platform: it reports false,
// and dead sockets of Conns are found only when a command fails on them.
func closedByPeer(net.Conn) bool { return false }
