package pool

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/connname"
)

// Every socket of a client is named on the server with CLIENT SETNAME, as
// "<client>.p<pid>.s<socket>" (see WithConnNames), and the checkouts holding a
// socket carry the same name in reports: a connection seen in CLIENT LIST
// leads to the call site that holds it.

// WithConnNames turns the naming of sockets on (the default) or off. The
// client names each socket it opens, right after go-redis's handshake and
// before the Options.OnConnect callback, "<client>.p<pid>.s<socket>": the
// client's name (redis.Options.ClientName, or the program's name when that is
// empty), the process id, and the socket's id (unique in the process), for example
// "orders-api.p4242.s17". That costs one round trip per new socket. Reports
// list the names of the sockets that dedicated Conns and Pub/Subs hold, and
// `redisleak clients` groups the server's connections by them. A socket the
// server refused to name (an ACL without CLIENT SETNAME, logged once at WARN)
// is listed by its local address, as CLIENT LIST's addr= shows it. With
// naming off, sockets keep the ClientName go-redis gives them.
func WithConnNames(on bool) Option {
	return func(c *config) { c.connNamesOff = !on }
}

// clientName is the name a client's sockets start with.
func clientName(o *redis.Options) string {
	if o.ClientName != "" {
		return o.ClientName
	}
	return filepath.Base(os.Args[0])
}

// socketName is the name the server is asked to give s.
func (st *state) socketName(s *socket) string {
	return connname.Name{Client: st.clientName, PID: os.Getpid(), Socket: s.id}.String()
}

// connNameOf is how reports name the connection of s: its name on the server
// when the server took it, else its local address, which CLIENT LIST shows as
// addr= when nothing translates addresses in between.
func (st *state) connNameOf(s *socket) string {
	if s.named.Load() {
		return st.socketName(s)
	}
	return s.LocalAddr().String()
}

// onConnect wraps the caller's OnConnect so that every new socket is named
// first.
func (st *state) onConnect(next func(context.Context, *redis.Conn) error) func(context.Context, *redis.Conn) error {
	return func(ctx context.Context, cn *redis.Conn) error {
		st.nameSocket(ctx, cn)
		if next != nil {
			return next(ctx, cn)
		}
		return nil
	}
}

// nameSocket names the socket of a new connection. A failure is not the
// connection's: it is logged once, and the socket stays unnamed.
func (st *state) nameSocket(ctx context.Context, cn *redis.Conn) {
	s, err := socketOfInitConn(cn)
	if err != nil {
		st.namesOnce.Do(func() {
			st.log.Warn("redisleak: sockets are not named on the server; the go-redis version is not supported", "client", st.scope.Name(), "error", err)
		})
		return
	}
	err = cn.ClientSetName(ctx, st.socketName(s)).Err()
	var refused redis.Error
	switch {
	case err == nil:
		s.named.Store(true)
	case errors.As(err, &refused):
		st.namesOnce.Do(func() {
			st.log.Warn("redisleak: the server refused CLIENT SETNAME; reports name sockets by their local address", "client", st.scope.Name(), "error", err)
		})
	}
}
