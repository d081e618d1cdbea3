package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// quietLogger drops go-redis's internal log lines (dial failures and the
// like): the inspector reports every error itself, in one line.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// newClient returns a client for o; callers use one connection at a time
// (clients and kill-idle pin it with Conn). It fails fast: one
// dial attempt per command and no command retries, since an inspector
// retrying against a struggling server only adds to its load. The
// connection is not named (CLIENT SETNAME would need an extra ACL
// permission); the subcommands exclude it by its CLIENT ID instead.
func newClient(o *connOptions) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         o.addr,
		Username:     o.user,
		Password:     o.password,
		DB:           o.db,
		Protocol:     2,
		DialTimeout:  o.timeout,
		ReadTimeout:  o.timeout,
		WriteTimeout: o.timeout,
		PoolTimeout:  o.timeout,
		// One connection is used at a time, but a pool of 1 makes
		// go-redis start a background redial loop after a single failed
		// dial, which sleeps a second before noticing Close; 2 leaves
		// room for the one failure a run ends on.
		PoolSize:        2,
		MaxRetries:      -1,
		DialerRetries:   1,
		DisableIdentity: true,
	})
}

// inspect opens one connection, asks for its own CLIENT ID and then calls
// fn with it, so fn's commands run on the connection whose id it knows.
func inspect(ctx context.Context, o *connOptions, fn func(cn *redis.Conn, selfID int64) error) error {
	rdb := newClient(o)
	defer rdb.Close()
	cn := rdb.Conn()
	defer cn.Close()
	selfID, err := cn.ClientID(ctx).Result()
	if err != nil {
		return describeErr(err, o, "CLIENT ID")
	}
	return fn(cn, selfID)
}

// describeErr turns an error from running command against o.addr into one
// line saying what went wrong in the user's terms.
func describeErr(err error, o *connOptions, command string) error {
	user := o.user
	if user == "" {
		user = "default"
	}
	msg := err.Error()
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot connect to %s: %v", o.addr, opErr.Err)
	case strings.Contains(msg, "WRONGPASS"):
		return fmt.Errorf("authentication failed at %s: wrong password for user %q, or the user is disabled", o.addr, user)
	case strings.Contains(msg, "NOAUTH"):
		return fmt.Errorf("%s requires authentication: pass -password (and -user) or set %s", o.addr, passwordEnv)
	case strings.Contains(msg, "without any password configured"):
		return fmt.Errorf("%s has no password configured for user %q, but one was given", o.addr, user)
	case strings.Contains(msg, "NOPERM"):
		return fmt.Errorf("user %q may not run %s on %s (ACL NOPERM); grant it, e.g. ACL SETUSER %s +%s",
			user, command, o.addr, user, strings.ReplaceAll(strings.ToLower(command), " ", "|"))
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("%s at %s: no answer within %s", command, o.addr, o.timeout)
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%s at %s: connection closed by the server", command, o.addr)
	}
	return fmt.Errorf("%s at %s: %v", command, o.addr, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
