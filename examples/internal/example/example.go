// Package example holds what the example programs under examples/ share: the
// command line (-addr, -variant, the exit status), the Redis to run against
// (an embedded miniredis unless -addr names one) and the loop that runs a
// demo's bad and fixed variants and checks what each observed.
//
// What an example is about (its buggy and fixed code, what it observes and
// what it expects) stays in the example's own main.go.
package example

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Outcome is what one run of a demo observed.
type Outcome interface {
	// Check returns an error describing how the outcome differs from what
	// variant ("bad" or "fixed") is expected to show, or nil.
	Check(variant string) error
}

// Demo runs one variant ("bad" or "fixed") of an example against the Redis at
// addr, writes what it sees to out and returns what it observed. An error
// means the demo could not run, not that the outcome is unexpected.
type Demo[O any] func(ctx context.Context, addr, variant string, out io.Writer) (O, error)

// Main is the main function of an example with variants. It parses -addr
// and -variant (bad, fixed or both), calls run, and exits as Exit does.
func Main(name string, run func(ctx context.Context, addr, variant string, out io.Writer) error) {
	addr := AddrFlag()
	variant := flag.String("variant", "both", "bad, fixed or both")
	flag.Parse()
	Exit(name, run(context.Background(), *addr, *variant, os.Stdout))
}

// AddrFlag defines the -addr flag every example takes: the Redis to use,
// empty for an embedded miniredis (see Server).
func AddrFlag() *string {
	return flag.String("addr", "", "Redis address; empty starts an embedded miniredis")
}

// Exit ends the example: with status 0 when err is nil (the outcome was the
// expected one), else with status 1 after printing "name: UNEXPECTED: err"
// to standard error.
func Exit(name string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, name+": UNEXPECTED:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Run runs the variants that variant names ("bad", "fixed" or "both", in that
// order) one after the other against addr (an embedded miniredis when empty,
// see Server), checks each outcome, prints "[v] as expected" for each variant
// v that was, and returns the errors of the others, joined.
func Run[O Outcome](ctx context.Context, addr, variant string, out io.Writer, demo Demo[O]) error {
	variants := map[string][]string{"bad": {"bad"}, "fixed": {"fixed"}, "both": {"bad", "fixed"}}[variant]
	if variants == nil {
		return fmt.Errorf("-variant %q: want bad, fixed or both", variant)
	}
	addr, _, stop, err := Server(addr)
	if err != nil {
		return err
	}
	defer stop()
	var errs []error
	for _, v := range variants {
		res, err := demo(ctx, addr, v, out)
		if err == nil {
			err = res.Check(v)
		}
		if err == nil {
			fmt.Fprintf(out, "[%s] as expected\n\n", v)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Server returns the Redis to run against: addr itself when it is not
// empty, else the address of an embedded miniredis it starts, returned as mr
// for demos that ask the server itself something (mr is nil for addr). stop
// closes that miniredis and does nothing for addr.
func Server(addr string) (srv string, mr *miniredis.Miniredis, stop func(), err error) {
	if addr != "" {
		return addr, nil, func() {}, nil
	}
	mr, err = miniredis.Run()
	if err != nil {
		return "", nil, nil, fmt.Errorf("start miniredis: %w", err)
	}
	return mr.Addr(), mr, mr.Close, nil
}

// FirstLine returns the first line of err's text ("<nil>" for nil): the
// header of a redisleak error, without the report that follows it.
func FirstLine(err error) string {
	s, _, _ := strings.Cut(fmt.Sprint(err), "\n")
	return s
}

// ConnectedClients returns the connected_clients of the server probe is
// connected to, less probe's own connection, or -1 when INFO does not tell.
func ConnectedClients(ctx context.Context, probe *redis.Client) int {
	info, err := probe.Info(ctx, "clients").Result()
	i := strings.Index(info, "connected_clients:")
	if err != nil || i < 0 {
		return -1
	}
	var n int
	if _, err := fmt.Sscanf(info[i:], "connected_clients:%d", &n); err != nil {
		return -1
	}
	return n - 1
}
