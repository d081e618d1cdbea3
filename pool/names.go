package pool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

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
// client's name (redis.Options.ClientName, or the program's name when that
// is empty), the process id, and the socket's id (unique in the process),
// for example "orders-api.p4242.s17". That costs one round trip per new
// socket. Reports list the names of the sockets that dedicated Conns and
// Pub/Subs hold, and `redisleak clients` groups the server's connections by
// them.
//
// The name replaces the ClientName go-redis sets in its handshake, and
// starts with it: a server-side tool that matches names by prefix, or an
// operator, still sees the ClientName; one that matches the exact name does
// not, and wants naming off.
//
// Reports name a socket by its local address, as CLIENT LIST's addr= shows
// it, when the server refused its name (an ACL without CLIENT SETNAME, or a
// proxy that does not know the command: logged once at WARN, after which the
// client stops asking; any other failure, NOAUTH say, leaves only that
// socket unnamed) and when the caller
// renamed it, in its OnConnect or on a Conn, since the caller's name need not
// be unique to the socket. A CLIENT SETNAME run on the Client itself renames
// whichever pooled socket serves it, which the library cannot tell: reports
// keep the library's name for that one. With naming off, sockets keep the
// ClientName go-redis gives them; turn it off behind a proxy that closes
// connections on commands it does not know.
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
// when it took one, else its local address, which CLIENT LIST shows as addr=
// when nothing translates addresses in between.
func connNameOf(s *socket) string {
	if name := s.name.Load(); name != nil {
		return *name
	}
	return s.LocalAddr().String()
}

// onConnect wraps the caller's OnConnect so that every new socket is named
// first. A name the caller's OnConnect sets replaces the library's on the
// server; reports then name the socket by its address (see renames).
func (st *state) onConnect(next func(context.Context, *redis.Conn) error) func(context.Context, *redis.Conn) error {
	return func(ctx context.Context, cn *redis.Conn) error {
		s := st.nameSocket(ctx, cn)
		if next == nil {
			return nil
		}
		if s != nil {
			cn.AddHook(renames{s})
		}
		return next(ctx, cn)
	}
}

// nameSocket names the socket of a new connection and returns it, or nil if
// it cannot be found. A failure is not the connection's: it is logged once,
// and the socket stays unnamed.
func (st *state) nameSocket(ctx context.Context, cn *redis.Conn) *socket {
	s, err := socketOfInitConn(cn)
	if err != nil {
		st.namesOnce.Do(func() {
			st.log.Warn("redisleak: sockets are not named on the server; the go-redis version is not supported", "client", st.scope.Name(), "error", err)
		})
		return nil
	}
	if st.namesRefused.Load() {
		return s
	}
	name := st.socketName(s)
	err = cn.ClientSetName(ctx, name).Err()
	switch {
	case err == nil:
		s.name.Store(&name)
		s.state.tok.SetConnName(name) // a Pub/Sub through the embedded client's checkout, if any
	case refusesNames(err):
		// The server (or a proxy in front of it) will refuse every
		// socket's name alike: stop asking.
		st.namesRefused.Store(true)
		st.namesOnce.Do(func() {
			st.log.Warn("redisleak: the server refused CLIENT SETNAME; sockets are not named, and reports name them by their local address", "client", st.scope.Name(), "error", err)
		})
	}
	return s
}

// refusesNames reports whether err, a CLIENT SETNAME's, says the server will
// not name any socket: the command is not permitted (an ACL) or not known (a
// proxy). Other replies, NOAUTH or LOADING say, concern this socket now, and
// the next socket is named again.
func refusesNames(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	msg := strings.ToLower(reply.Error())
	return strings.HasPrefix(msg, "noperm") || strings.Contains(msg, "unknown command") || strings.Contains(msg, "unknown subcommand")
}

// renames follows the CLIENT SETNAME commands run on one socket's
// connection. Once one replaces the library's name, the socket no longer
// carries a name unique to it (a caller's name is often one for all its
// sockets), so reports name it by its address, which is.
type renames struct{ s *socket }

func (r renames) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r renames) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		r.follow(cmd, err)
		return err
	}
}

func (r renames) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			r.follow(cmd, cmd.Err())
		}
		return err
	}
}

// follow notes a CLIENT SETNAME that replaced the library's name of the
// socket (err is the command's outcome), and reports whether cmd did.
func (r renames) follow(cmd redis.Cmder, err error) bool {
	name, ok := setName(cmd)
	if !ok || err != nil {
		return false
	}
	if cur := r.s.name.Load(); cur != nil && *cur != name {
		r.s.name.Store(nil)
		return true
	}
	return false
}

// setName returns the name a CLIENT SETNAME command sets.
func setName(cmd redis.Cmder) (string, bool) {
	if cmd.Name() != "client" {
		return "", false
	}
	args := cmd.Args()
	if len(args) != 3 {
		return "", false
	}
	if sub, ok := args[1].(string); !ok || !strings.EqualFold(sub, "setname") {
		return "", false
	}
	name, ok := args[2].(string)
	return name, ok
}
