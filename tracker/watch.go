package tracker

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"time"
)

// HeldTooLong sets, per kind, how long a checkout may be held before it is
// reported; a zero or negative duration turns the check off for that kind.
// Dedicated connections and Pub/Subs live long by design, so
// [DefaultHeldTooLong] leaves them off.
type HeldTooLong map[Kind]time.Duration

// DefaultHeldTooLong is the thresholds a client watches unless told
// otherwise: a command or pipeline held for 10s, a blocking command for 5m.
func DefaultHeldTooLong() HeldTooLong {
	return HeldTooLong{KindCommand: 10 * time.Second, KindPipeline: 10 * time.Second, KindBlocking: 5 * time.Minute}
}

// WatchConfig configures [Scope.WatchHeld].
type WatchConfig struct {
	Limits HeldTooLong
	Log    *slog.Logger
	// HolderFunction names (as a prefix of the qualified name) a function on
	// the stack of every goroutine that holds a checkout in flight, such as
	// the hook that wraps each command. A report of a checkout recorded
	// without a stack then shows the stacks of the goroutines inside it.
	HolderFunction string
}

// watcher reports the checkouts of one scope that outlive their threshold.
type watcher struct {
	scope *Scope
	cfg   WatchConfig
}

// WatchHeld reports, through cfg.Log, each checkout of the scope held longer
// than its kind's threshold: once at WARN with its origin and the current
// stacks of the goroutines that may be holding it, and once at INFO when it
// is released later. It checks a few times per threshold until stop is
// called; stop waits for the check to end. A scope has one watch at a time.
func (s *Scope) WatchHeld(cfg WatchConfig) (stop func()) {
	shortest := time.Duration(0)
	for _, d := range cfg.Limits {
		if d > 0 && (shortest == 0 || d < shortest) {
			shortest = d
		}
	}
	if shortest == 0 {
		return func() {}
	}
	w := &watcher{scope: s, cfg: cfg}
	s.watch.Store(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(min(max(shortest/4, 10*time.Millisecond), time.Second))
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				w.check()
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
		s.watch.CompareAndSwap(w, nil)
	}
}

// check marks and reports the checkouts that passed their threshold since
// the last check.
func (w *watcher) check() {
	now := w.scope.t.cfg.since()
	var late []pending
	w.scope.t.each(func(r *record) {
		if r.scope != w.scope || r.warned {
			return
		}
		if limit := w.cfg.Limits[r.kind]; limit > 0 && now-r.start > limit {
			r.warned = true
			late = append(late, r.copy())
		}
	})
	for _, p := range late {
		c := p.resolve()
		attrs := []any{"client", c.Scope, "kind", c.Kind.String()}
		if c.Op != "" {
			attrs = append(attrs, "op", c.Op)
		}
		attrs = append(attrs,
			"held", time.Since(c.Start).Round(time.Millisecond).String(),
			"threshold", w.cfg.Limits[c.Kind].String(), "origin", origin(c),
		)
		if c.Label != "" {
			attrs = append(attrs, "label", c.Label)
		}
		if holders := holderStacks(c, w.cfg.HolderFunction); holders != "" {
			attrs = append(attrs, "holders", holders)
		}
		w.cfg.Log.Warn("redisleak: connection held too long", attrs...)
	}
}

// returned reports that a checkout reported as held too long came back.
func (w *watcher) returned(p pending) {
	c := p.resolve()
	w.cfg.Log.Info("redisleak: connection held too long was released",
		"client", c.Scope, "kind", c.Kind.String(), "op", c.Op,
		"held", time.Since(c.Start).Round(time.Millisecond).String(), "origin", origin(c))
}

func origin(c Checkout) string {
	if len(c.Stack) == 0 {
		return "not captured"
	}
	return c.Stack[0].String()
}

// maxHolderStacks bounds the goroutine stacks attached to one report.
const maxHolderStacks = 3

// holderStacks returns the current stacks of the goroutines that may hold c:
// those whose stack holds c's call site, when it was captured, and otherwise
// those inside holderFunction. Go does not say which goroutine made a
// checkout, so these are the candidates, at most maxHolderStacks of them.
func holderStacks(c Checkout, holderFunction string) string {
	var want []string // every one must appear in the goroutine's stack
	switch {
	case len(c.Stack) > 0:
		// The holder has moved on from the line that checked out, but not
		// (while it holds) from the function.
		site := c.Stack[0]
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
