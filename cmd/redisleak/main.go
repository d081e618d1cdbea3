// Command redisleak inspects a Redis server's connections for signs of
// connection leaks, using only the server's address:
//
//	redisleak [connection flags] clients   [--json] [--idle 1h] [--top 10]
//	redisleak [connection flags] watch     [--interval 1s] [--duration 0]
//	redisleak [connection flags] kill-idle --idle 1h [--yes]
//	redisleak [connection flags] audit     [--json] [--idle 1h] [--expect name=cap,...]
//
// clients groups the connections by client host and by client name and,
// for those named as this module's pool.NewClient names its sockets
// ("<client>.p<pid>.s<socket>", for example "orders-api.p4242.s17"), by
// process: each group lists its socket names, idle ones first, so that a
// connection seen on the server can be found in the service's own leak
// report, which names the sockets each call site holds.
//
// audit reads CONFIG GET timeout, tcp-keepalive and maxclients, INFO
// clients and stats, and CLIENT LIST, and prints findings, each with its
// reason and fix: timeout 0 (a leaked socket lives for ever), tcp-keepalive
// 0 (dead peers never detected), connected clients near maxclients,
// rejected connections, clients idle past the timeout or, with timeout 0,
// past --idle, and, given the services' per-process socket caps (--expect
// name=cap, matched against socket names "<name>.p<pid>.s<socket>"), caps
// that add up to more than maxclients and processes above their cap. Where
// the server refuses CONFIG GET (managed Redis, an ACL user without
// +config) or CLIENT LIST, audit says so and audits what it can read.
//
// Connection flags (-addr, -user, -password, -db, -timeout) may also be
// given after the subcommand. The password can come from the
// REDISLEAK_PASSWORD environment variable instead of the command line.
//
// Exit status: 0 success, 1 runtime error (server unreachable, refused
// authentication, missing ACL permission...), 2 usage error. audit differs,
// so that a script can tell findings from a failed audit: 0 nothing to do,
// 1 findings, 2 usage error or an audit that could not run (server
// unreachable, refused authentication, INFO refused...).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// passwordEnv names the environment variable read when -password is not
// given, so the password need not appear in the process list.
const passwordEnv = "REDISLEAK_PASSWORD"

const usageText = `usage: redisleak [connection flags] <command> [command flags]

Inspect a Redis server's connections for leaks.

Commands:
  clients     analyse CLIENT LIST: top holders by process (with their socket
              names, for sockets named <client>.p<pid>.s<socket> as
              pool.NewClient names them), by host and by name; age buckets;
              idle, blocked and pub/sub clients
                --json          print a JSON document instead of text
                --idle 1h       idle threshold (clients idle at least this long)
                --top 10        show the N largest groups and N sockets of each
                                process (0 = all)
  watch       sample INFO clients/stats and warn about leak patterns
                --interval 1s   time between samples
                --duration 0    stop after this long (0 = until Ctrl-C)
  kill-idle   list normal clients idle at least --idle; kill them with --yes
                --idle 1h       idle threshold (required)
                --yes           really kill (default: dry run)
  audit       check timeout, tcp-keepalive, maxclients, rejected connections
              and idle clients; print findings with reasons and fixes
                --json          print a JSON document instead of text
                --idle 1h       with timeout 0, clients idle this long are
                                leak suspects
                --expect name=cap,...
                                per-process socket caps of the services
                                (sockets named <name>.p<pid>.s<socket>):
                                checked against maxclients and each process

Connection flags (before or after the command):
  -addr host:port   server address (default localhost:6379)
  -user name        ACL user name
  -password pw      password (default: $REDISLEAK_PASSWORD)
  -db n             database number (default 0)
  -timeout 5s       dial, read and write timeout

Exit status: 0 ok, 1 runtime error, 2 usage error.
audit: 0 nothing to do, 1 findings, 2 usage or connection error.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a bad command line; run reports it with exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// connOptions are the connection flags shared by all subcommands.
type connOptions struct {
	addr     string
	user     string
	password string
	db       int
	timeout  time.Duration
}

// addConnFlags registers the connection flags on fs. Registering them on
// the top-level and every subcommand flag set, all writing to the same
// connOptions, lets them appear before or after the subcommand.
func addConnFlags(fs *flag.FlagSet, o *connOptions) {
	fs.StringVar(&o.addr, "addr", o.addr, "server address host:port")
	fs.StringVar(&o.user, "user", o.user, "ACL user name")
	fs.StringVar(&o.password, "password", o.password, "password (default $"+passwordEnv+")")
	fs.IntVar(&o.db, "db", o.db, "database number")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "dial, read and write timeout")
}

func (o *connOptions) validate() error {
	switch {
	case o.addr == "":
		return usagef("-addr must not be empty")
	case o.db < 0:
		return usagef("-db must not be negative, got %d", o.db)
	case o.timeout <= 0:
		return usagef("-timeout must be positive, got %s", o.timeout)
	}
	if o.password == "" {
		o.password = os.Getenv(passwordEnv)
	}
	return nil
}

// newFlagSet returns a flag set that reports errors to run instead of
// printing usage and exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args with fs and rejects leftover arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// run is the whole command: it parses args (without the program name),
// runs the subcommand and returns the exit status. Errors are reported as
// one line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	redis.SetLogger(quietLogger{})
	err := dispatch(args, stdout)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	var es *exitStatus
	if errors.As(err, &es) && es.err == nil {
		return es.code
	}
	fmt.Fprintf(stderr, "redisleak: %s\n", oneLine(err.Error()))
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &es):
		return es.code
	}
	return exitRuntime
}

func dispatch(args []string, stdout io.Writer) error {
	co := connOptions{addr: "localhost:6379", timeout: 5 * time.Second}
	top := newFlagSet("redisleak")
	addConnFlags(top, &co)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v (run 'redisleak -h' for usage)", err)
	}
	if top.NArg() == 0 {
		return usagef("missing command: clients, watch, kill-idle or audit (run 'redisleak -h' for usage)")
	}
	cmd, rest := top.Arg(0), top.Args()[1:]
	switch cmd {
	case "clients":
		return runClients(rest, &co, stdout)
	case "watch":
		return runWatch(rest, &co, stdout)
	case "kill-idle":
		return runKillIdle(rest, &co, stdout)
	case "audit":
		return runAudit(rest, &co, stdout)
	case "help":
		return flag.ErrHelp
	}
	return usagef("unknown command %q: want clients, watch, kill-idle or audit (run 'redisleak -h' for usage)", cmd)
}

// oneLine folds a multi-line message (a server error can carry newlines)
// into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
