package track

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/redisleak/redisleak/internal/stack"
)

// WatchConfig configures [Scope.WatchHeld].
type WatchConfig struct {
	// Limits sets, per kind, how long a checkout may be held before it is
	// reported (tracker.HeldTooLong); a zero or negative duration, or none,
	// turns the check off for that kind.
	Limits map[Kind]time.Duration
	Log    *slog.Logger
	// HolderFunction names (as a prefix of the qualified name) a function on
	// the stack of every goroutine that holds a checkout in flight, such as
	// the hook that wraps each command. A report of a checkout recorded
	// without a stack then shows the stacks of the goroutines inside it.
	HolderFunction string
	// CollectEvery, when positive, makes the watch find dropped holders
	// promptly: a holder garbage-collected without being released is
	// reported (see [Token.MarkDropped]) only once the garbage collector has
	// run, so while long-lived checkouts are outstanding the watch runs the
	// collector itself, at most once per CollectEvery and only when the
	// runtime has not run a collection on its own since the last check.
	CollectEvery time.Duration
	// Waiting, when set, counts the callers waiting for a connection now,
	// given how many commands, pipelines and blocking commands of the scope
	// are in flight. While any wait, those are not reported held too long:
	// each may be a waiter, not a holder. One INFO line says how many wait
	// instead. A dedicated connection or Pub/Sub is reported only once it
	// holds a connection (see [Token.SetConnName]).
	Waiting func(inFlight int) int
	// Check, when set, runs on every tick of the watch, on its goroutine,
	// at least once a second: a place for its owner's own periodic checks.
	Check func()
}

// watcher reports the checkouts of one scope that outlive their threshold.
type watcher struct {
	scope *Scope
	cfg   WatchConfig
	// waitLogged is set once the watch said that callers wait, until none
	// do. Only the watch's goroutine uses it.
	waitLogged bool
}

// WatchHeld reports, through cfg.Log, each checkout of the scope held longer
// than its kind's threshold: once at WARN with its origin and the current
// stacks of the goroutines that may be holding it, and once at INFO when it
// is released later. It also reports at WARN, as a definite leak, each
// checkout whose holder is garbage-collected without releasing it, as soon
// as that is known (see [WatchConfig.CollectEvery]). It checks a few times per
// threshold until stop is called; stop waits for the check to end. A scope
// has one watch at a time.
func (s *Scope) WatchHeld(cfg WatchConfig) (stop func()) {
	w := &watcher{scope: s, cfg: cfg}
	s.watch.Store(w)
	unwatch := func() { s.watch.CompareAndSwap(w, nil) }
	// Check a few times per threshold, and once per CollectEvery.
	period := time.Duration(-1)
	for _, d := range cfg.Limits {
		if d > 0 && (period < 0 || d/4 < period) {
			period = d / 4
		}
	}
	if cfg.CollectEvery > 0 && (period < 0 || cfg.CollectEvery < period) {
		period = cfg.CollectEvery
	}
	if cfg.Check != nil && period < 0 {
		period = time.Second
	}
	if period < 0 {
		return unwatch
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(min(max(period, 10*time.Millisecond), time.Second))
		defer tick.Stop()
		collect := newCollector(cfg.CollectEvery)
		for {
			select {
			case <-tick.C:
				w.check()
				if cfg.Check != nil {
					cfg.Check()
				}
				if cfg.CollectEvery > 0 && collect.due() && w.holdersOutstanding() {
					collect.run()
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
		unwatch()
	}
}

// holdersOutstanding reports whether the scope has an outstanding checkout
// whose holder a garbage collection could find dropped: a long-lived one not
// yet known to be dropped.
func (w *watcher) holdersOutstanding() bool {
	found := false
	w.scope.e.each(func(r *record) {
		if r.scope == w.scope && !r.kind.ShortLived() && !r.dropped {
			found = true
		}
	})
	return found
}

// collector runs the garbage collector for a watch, at most once per
// period, and not when the runtime has completed a collection on its own
// since the last check: a holder dropped before that collection started is
// found by it. So a dropped holder is found within about two periods.
type collector struct {
	period time.Duration
	last   time.Time // the last check
	cycles uint64    // completed collections at the last check

	numGC func() uint64 // completed collections; the runtime's, or a test's
	gc    func()        // runs a collection
}

func newCollector(period time.Duration) *collector {
	return &collector{period: period, last: time.Now(), cycles: numGC(), numGC: numGC, gc: runtime.GC}
}

// due reports whether a period has passed since the last check, and starts
// a new one if so.
func (c *collector) due() bool {
	if time.Since(c.last) < c.period {
		return false
	}
	c.last = time.Now()
	return true
}

// run collects unless the runtime has since the last check.
func (c *collector) run() {
	if n := c.numGC(); n != c.cycles {
		c.cycles = n
		return
	}
	c.gc()
	c.cycles = c.numGC()
}

// numGC is the number of completed garbage collections.
func numGC() uint64 {
	sample := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// check marks and reports the checkouts that passed their threshold since
// the last check.
func (w *watcher) check() {
	now := w.scope.e.since()
	waiting := 0
	if w.cfg.Waiting != nil {
		inFlight := 0
		w.scope.e.each(func(r *record) {
			if r.scope == w.scope && (r.kind.ShortLived() || r.kind == KindBlocking) {
				inFlight++
			}
		})
		waiting = w.cfg.Waiting(inFlight)
	}
	var late []Checkout
	deferred, oldest := 0, time.Duration(0)
	w.scope.e.each(func(r *record) {
		// A holder found dropped was reported as a definite leak already.
		if r.scope != w.scope || r.warned || r.dropped {
			return
		}
		limit := w.cfg.Limits[r.kind]
		if limit <= 0 || now-r.stamp() <= limit {
			return
		}
		switch {
		case r.kind == KindConn || r.kind == KindPubSub:
			if r.connName == "" {
				return // holds no connection (yet)
			}
		case waiting > 0:
			deferred++
			oldest = max(oldest, now-r.start)
			return
		}
		r.warned = true
		late = append(late, r.copy())
	})
	switch {
	case waiting == 0:
		w.waitLogged = false
	case deferred > 0 && !w.waitLogged:
		w.waitLogged = true
		w.cfg.Log.Info("redisleak: callers waiting for a connection; commands past their held-too-long threshold are reported once none wait",
			"client", w.scope.name, "waiting", waiting, "past_threshold", deferred, "oldest", oldest.Round(time.Millisecond).String())
	}
	for _, c := range late {
		frames := c.Stack.Frames()
		attrs := logAttrs(c)
		attrs = append(attrs,
			"held", time.Since(c.Start).Round(time.Millisecond).String(),
			"threshold", w.cfg.Limits[c.Kind].String(), "origin", origin(frames),
		)
		if c.Label != "" {
			attrs = append(attrs, "label", c.Label)
		}
		if holders := holderStacks(frames, w.cfg.HolderFunction); holders != "" {
			attrs = append(attrs, "holders", holders)
		}
		w.cfg.Log.Warn("redisleak: connection held too long", attrs...)
	}
}

// dropped reports a checkout whose holder was garbage-collected without
// releasing it.
func (w *watcher) dropped(c Checkout) {
	attrs := logAttrs(c)
	attrs = append(attrs, "held", time.Since(c.Start).Round(time.Millisecond).String(), "origin", origin(c.Stack.Frames()))
	if c.ConnName != "" {
		attrs = append(attrs, "conn", c.ConnName)
	}
	if c.Label != "" {
		attrs = append(attrs, "label", c.Label)
	}
	w.cfg.Log.Warn("redisleak: definite leak: garbage-collected without Close", attrs...)
}

// returned reports that a checkout reported as held too long came back.
func (w *watcher) returned(c Checkout) {
	attrs := logAttrs(c)
	attrs = append(attrs, "held", time.Since(c.Start).Round(time.Millisecond).String(), "origin", origin(c.Stack.Frames()))
	w.cfg.Log.Info("redisleak: connection held too long was released", attrs...)
}

// logAttrs are the attributes every log line about a checkout starts with.
func logAttrs(c Checkout) []any {
	attrs := []any{"client", c.Scope, "kind", c.Kind.String()}
	if c.Op != "" {
		attrs = append(attrs, "op", c.Op)
	}
	return attrs
}

// origin names the first of a checkout's frames, the caller's own.
func origin(frames []runtime.Frame) string {
	if len(frames) == 0 {
		return "not captured"
	}
	f := frames[0]
	return stack.FrameString(f.Function, f.File, f.Line)
}

// maxHolderStacks bounds the goroutine stacks attached to one report.
const maxHolderStacks = 3

// holderStacks returns the current stacks of the goroutines that may hold a
// checkout whose frames are frames: those whose stack holds its call site,
// when it was captured, and otherwise those inside holderFunction. Go does
// not say which goroutine made a checkout, so these are the candidates, at
// most maxHolderStacks of them.
func holderStacks(frames []runtime.Frame, holderFunction string) string {
	var want []string // every one must appear in the goroutine's stack
	switch {
	case len(frames) > 0:
		// The holder has moved on from the line that checked out, but not
		// (while it holds) from the function.
		site := frames[0]
		want = []string{site.Function + "(", site.File + ":"}
	case holderFunction != "":
		want = []string{holderFunction}
	default:
		return ""
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		text := string(g)
		if !containsAll(text, want) {
			continue
		}
		out = append(out, text)
		if len(out) == maxHolderStacks {
			break
		}
	}
	return strings.Join(out, "\n\n")
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
