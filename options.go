package redisleak

import (
	"strings"
	"time"

	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/tracker"
)

// Option configures [Find], [VerifyNone] and [VerifyTestMain].
type Option func(*config)

type config struct {
	trackers      []*tracker.Tracker // nil: every tracker, tracker.All()
	ignoreKinds   map[tracker.Kind]bool
	ignoreTop     []string
	ignoreAny     []string
	ignoreIDs     map[tracker.CheckoutID]bool
	settle        time.Duration
	goroutines    bool
	goleakOptions []goleak.Option
	cleanup       func(exitCode int) // VerifyTestMain's, before its check
}

// defaultSettle is how long a check retries before it flags: a connection
// being returned right now is not a leak.
const defaultSettle = time.Second

func buildConfig(opts []Option) config {
	cfg := config{settle: defaultSettle}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return cfg
}

// IgnoreKinds ignores checkouts of the given kinds, for example
// tracker.KindClient in a test that drops clients on purpose.
func IgnoreKinds(kinds ...tracker.Kind) Option {
	return func(c *config) {
		if c.ignoreKinds == nil {
			c.ignoreKinds = make(map[tracker.Kind]bool)
		}
		for _, k := range kinds {
			c.ignoreKinds[k] = true
		}
	}
}

// IgnoreTopFunction ignores checkouts whose call site (the first frame
// outside go-redis and redisleak) is in function f, a fully qualified name
// such as "example.com/app.(*Worker).listen".
func IgnoreTopFunction(f string) Option {
	return func(c *config) { c.ignoreTop = append(c.ignoreTop, f) }
}

// IgnoreAnyFunction ignores checkouts whose stack contains function f
// anywhere.
func IgnoreAnyFunction(f string) Option {
	return func(c *config) { c.ignoreAny = append(c.ignoreAny, f) }
}

// IgnoreCurrent ignores the checkouts outstanding when it is called: use it
// as defer redisleak.VerifyNone(t, redisleak.IgnoreCurrent()) so that only
// what the test itself leaves open counts.
func IgnoreCurrent() Option {
	ids := make(map[tracker.CheckoutID]bool)
	for _, t := range tracker.All() {
		for _, c := range t.Checkouts() {
			ids[c.ID] = true
		}
	}
	return func(c *config) {
		if c.ignoreIDs == nil {
			c.ignoreIDs = make(map[tracker.CheckoutID]bool)
		}
		for id := range ids {
			c.ignoreIDs[id] = true
		}
	}
}

// WithTrackers checks only the given trackers instead of every tracker in
// the process: a test whose clients use a tracker of their own
// (pool.WithTracker) is then isolated from every other test.
func WithTrackers(ts ...*tracker.Tracker) Option {
	return func(c *config) { c.trackers = append(c.trackers, ts...) }
}

// WithSettle sets how long a check keeps retrying before it reports what is
// still outstanding; the default is one second.
func WithSettle(d time.Duration) Option {
	return func(c *config) { c.settle = max(d, 0) }
}

// WithGoroutines also checks for leaked goroutines with goleak, passing it
// opts, so that one line checks both.
func WithGoroutines(opts ...goleak.Option) Option {
	return func(c *config) {
		c.goroutines = true
		c.goleakOptions = append(c.goleakOptions, opts...)
	}
}

// ignored reports whether the configuration excludes checkout co.
func (c *config) ignored(co tracker.Checkout) bool {
	if c.ignoreKinds[co.Kind] || c.ignoreIDs[co.ID] {
		return true
	}
	if len(co.Stack) > 0 {
		for _, f := range c.ignoreTop {
			if co.Stack[0].Function == f {
				return true
			}
		}
	}
	for _, fr := range co.Stack {
		for _, f := range c.ignoreAny {
			if fr.Function == f || strings.HasPrefix(fr.Function, f+".func") {
				return true
			}
		}
	}
	return false
}

// Cleanup sets a function [VerifyTestMain] runs after the tests and before
// its check, with the tests' exit code: the place to close the package-level
// clients the tests share, which would otherwise be reported as leaks. Like
// goleak.Cleanup, it applies to VerifyTestMain only.
func Cleanup(f func(exitCode int)) Option {
	return func(c *config) { c.cleanup = f }
}
