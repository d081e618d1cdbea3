// Package track is the engine of package tracker: the registry of checkouts,
// their records and shards, the scopes and tokens through which the
// library's clients (package pool) check out and release, the held-too-long
// watch and the pprof profiles. It knows nothing of package tracker, which
// wraps an [Engine] in its public Tracker and turns the engine's raw
// [Checkout]s into reports; see link.go for how package pool reaches the
// engine of a tracker.
package track

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisleak/redisleak/internal/stack"
)

// numShards is a power of two, comfortably above the core counts services
// run on, so that checkouts rarely meet on one lock.
const numShards = 64

// Engine is a registry of checkouts: what a tracker.Tracker holds. It is safe
// for concurrent use.
type Engine struct {
	cfg       Config
	since     func() time.Duration // the time elapsed since clockBase
	shards    [numShards]shard
	nextShard atomic.Uint32
	nextScope atomic.Uint64
	records   sync.Pool
}

// Config configures an [Engine].
type Config struct {
	// CaptureAll makes every checkout record a stack, commands and
	// pipelines included (tracker.CaptureAll); otherwise those record none.
	CaptureAll bool
	// Now replaces time.Now, for tests of ages; nil is time.Now.
	Now func() time.Time
	// Owner is kept reachable as long as the engine is: the tracker.Tracker
	// that wraps it, which must stay registered while any of the engine's
	// scopes is in use. See [Link].
	Owner any
}

// clockBase anchors checkout start times: a record stores its start as the
// monotonic time elapsed since clockBase, and reports add it back.
var clockBase = time.Now()

// sinceBase reads only the monotonic clock, half the cost of time.Now on a
// checkout's path.
func sinceBase() time.Duration { return time.Since(clockBase) }

// New returns an engine configured by cfg.
func New(cfg Config) *Engine {
	e := &Engine{cfg: cfg, since: sinceBase}
	if now := cfg.Now; now != nil {
		e.since = func() time.Duration { return now().Sub(clockBase) }
	} else {
		e.cfg.Now = time.Now
	}
	e.records.New = func() any {
		n := e.nextShard.Add(1)
		return &record{shard: &e.shards[n%numShards]}
	}
	return e
}

// CaptureAll reports whether every checkout records a stack; see
// [Config.CaptureAll].
func (e *Engine) CaptureAll() bool { return e.cfg.CaptureAll }

// Now returns the time by the engine's clock: the time reports are taken at.
func (e *Engine) Now() time.Time { return e.cfg.Now() }

// Owner returns [Config.Owner].
func (e *Engine) Owner() any { return e.cfg.Owner }

// Scope groups the checkouts of one owner, typically one client, so that the
// owner can report only its own. A Scope costs nothing to keep; it holds no
// resources and needs no closing.
type Scope struct {
	e      *Engine
	id     uint64
	name   string
	parent *Scope                  // set by NewChild: the parent's checkouts include this scope's
	watch  atomic.Pointer[watcher] // set while WatchHeld runs
}

// NewScope returns a new scope named name; the name heads the scope's lines in
// reports (a client uses its address).
func (e *Engine) NewScope(name string) *Scope {
	return &Scope{e: e, id: e.nextScope.Add(1), name: name}
}

// NewChild returns a new scope named name whose checkouts are also the
// parent's: the parent's [Scope.Checkouts] and [Scope.Outstanding] include
// them, each checkout still naming the child. A cluster client gives each
// node a child of its own scope. Children have no children of their own: a
// child's NewChild is a sibling.
func (s *Scope) NewChild(name string) *Scope {
	parent := s
	if s.parent != nil {
		parent = s.parent
	}
	return &Scope{e: s.e, id: s.e.nextScope.Add(1), name: name, parent: parent}
}

// includes reports whether a checkout of r belongs to s: made by s or by one
// of its children.
func (s *Scope) includes(r *Scope) bool {
	return r == s || (r != nil && r.parent == s)
}

// Name returns the name given to [Engine.NewScope].
func (s *Scope) Name() string { return s.name }

// Engine returns the engine the scope belongs to.
func (s *Scope) Engine() *Engine { return s.e }

// Token names one checkout. The zero Token names none: releasing it does
// nothing. Tokens are small values; copy them freely.
type Token struct {
	r   *record
	gen uint64
}

// Valid reports whether the token came from a checkout (it may since have been
// released).
func (tok Token) Valid() bool { return tok.r != nil }

// Checkout records that the caller now holds something of the given kind. op is
// a short operation name such as a command name; it must never carry
// arguments. The label attached to ctx with [WithLabel], if any, is recorded.
// skip is the number of extra frames between the code to blame and the call to
// Checkout; most callers pass 0, since library frames are trimmed at report
// time anyway.
//
// Whether a stack is captured depends on the kind and on
// [Config.CaptureAll]; see [Scope.CheckoutStack] to force one. A command or
// pipeline checked out without a stack does not read the clock: its age
// counts from the first time it is seen outstanding (by a report, or by the
// watch of [Scope.WatchHeld], which looks at least every second), since its
// age matters only in seconds and reading the clock would cost more than the
// rest of its checkout.
func (s *Scope) Checkout(ctx context.Context, kind Kind, op string, skip int) Token {
	return s.checkout(ctx, kind, op, skip+1, !kind.ShortLived() || s.e.cfg.CaptureAll)
}

// CheckoutStack is [Scope.Checkout] that always records the caller's stack,
// for a short-lived checkout that is worth one (a sampled command, say).
func (s *Scope) CheckoutStack(ctx context.Context, kind Kind, op string, skip int) Token {
	return s.checkout(ctx, kind, op, skip+1, true)
}

// checkout is never inlined: its frame is the one stack.Callers starts
// above, and addToProfile counts on it.
//
//go:noinline
func (s *Scope) checkout(ctx context.Context, kind Kind, op string, skip int, withStack bool) Token {
	r := s.e.records.Get().(*record)
	npc := 0
	if withStack {
		// The stack starts at Checkout or CheckoutStack, which count
		// themselves in skip: skip frames are dropped when it is symbolized.
		npc = stack.Callers(r.pcs[:])
	}
	label := LabelFrom(ctx)
	// A command without a stack is stamped when first seen outstanding (see
	// record.stamp): reading the clock is the largest cost of tracking one.
	now := unstamped
	if withStack || !kind.ShortLived() {
		now = s.e.since()
	}

	// Long-lived checkouts also go into the pprof profile (see
	// Engine.profiles); commands would pay for its global lock on every call.
	profiled := withStack && s.e.profiles(kind) && addToProfile(r, kind, r.pcs[:npc])

	sh := r.shard
	sh.mu.Lock()
	r.scope, r.kind, r.op, r.label, r.start, r.npc, r.drop = s, kind, op, label, now, npc, skip
	r.profiled = profiled
	sh.link(r)
	tok := Token{r: r, gen: r.gen}
	sh.mu.Unlock()
	return tok
}

// Release ends the checkout. It returns true when this call released it, and
// false, counting an invalid release in [Stats], when the token was already
// released. Releasing the zero Token returns false and counts nothing.
func (tok Token) Release() bool {
	r := tok.r
	if r == nil {
		return false
	}
	sh := r.shard
	sh.mu.Lock()
	if !r.live || r.gen != tok.gen {
		sh.invalidReleases++
		sh.mu.Unlock()
		return false
	}
	scope := r.scope
	e := scope.e
	var back *Checkout
	if r.warned {
		c := r.copy()
		back = &c
	}
	sh.unlink(r)
	sh.mu.Unlock()
	e.recycle(r)
	if back != nil {
		if w := scope.watch.Load(); w != nil {
			w.returned(*back)
		}
	}
	return true
}

// recycle returns a released record to the pool, out of the profile first:
// the profile is keyed by record, and the record is about to be reused.
func (e *Engine) recycle(r *record) {
	if r.profiled {
		r.profiled = false
		removeFromProfile(r)
	}
	e.records.Put(r)
}

// MarkDropped records that whatever held the checkout was garbage-collected
// without releasing it: a definite leak, shown as such in reports. The checkout
// stays outstanding, because what it held (a socket, a pool slot) is still held.
// While the scope is watched ([Scope.WatchHeld]), the leak is also logged at
// WARN at once. It returns false, and marks nothing, when the checkout was
// already released or marked, or has ended through its done channel (see
// [Scope.CheckoutAt]) even if no report has swept it yet: a holder that was
// closed and then collected is no leak.
func (tok Token) MarkDropped() bool {
	r := tok.r
	if r == nil {
		return false
	}
	sh := r.shard
	sh.mu.Lock()
	if !r.live || r.gen != tok.gen || r.dropped || (r.done != nil && isClosed(r.done)) {
		sh.mu.Unlock()
		return false
	}
	r.dropped = true
	sh.dropped++
	w := r.scope.watch.Load()
	var c Checkout
	if w != nil {
		c = r.copy()
	}
	sh.mu.Unlock()
	if w != nil {
		w.dropped(c)
	}
	return true
}

// SetConnName records the connection the checkout holds, as the server knows
// it: the name a pool gave the socket with CLIENT SETNAME, or its address. Reports
// list it, so that a connection seen on the server leads to the call site
// holding it. It may be called again when the holder moves to a new
// connection (a reconnect). It returns false when the checkout was already
// released.
func (tok Token) SetConnName(name string) bool {
	return tok.update(func(r *record) { r.connName = name })
}

// SetNote records a short word on the state of what the checkout holds, for
// reports, such as "connection closed by the server"; "" clears it. Like an
// op, it must never carry arguments or secrets. It returns false when the
// checkout was already released.
func (tok Token) SetNote(note string) bool {
	return tok.update(func(r *record) { r.note = note })
}

// Site returns the first frame of the checkout's stack outside go-redis and
// redisleak: the caller that made it. It returns false when the checkout was
// released or recorded no stack.
func (tok Token) Site() (runtime.Frame, bool) {
	var c Checkout
	if !tok.update(func(r *record) { c = r.copy() }) {
		return runtime.Frame{}, false
	}
	frames := c.Stack.Frames()
	if len(frames) == 0 {
		return runtime.Frame{}, false
	}
	return frames[0], true
}

// update runs set on the checkout's record under its shard lock, unless the
// checkout was released; it reports whether it ran.
func (tok Token) update(set func(*record)) bool {
	r := tok.r
	if r == nil {
		return false
	}
	sh := r.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !r.live || r.gen != tok.gen {
		return false
	}
	set(r)
	return true
}

// Origin is a stack captured now and registered later, for objects that are
// not outstanding while alive, only once they are dropped: a client is
// expected to live long, and is a leak only when it is garbage-collected
// without Close.
type Origin struct {
	start time.Duration // since clockBase
	label string
	pcs   []uintptr
	drop  int // frames to drop from the top of pcs: skip's
}

// Origin captures the caller's stack; skip as in [Scope.Checkout].
func (s *Scope) Origin(ctx context.Context, skip int) Origin {
	var pcs [maxDepth]uintptr
	n := stack.Callers(pcs[:])
	return Origin{start: s.e.since(), label: LabelFrom(ctx), pcs: slices.Clone(pcs[:n]), drop: skip}
}

// Dropped registers an outstanding checkout of kind that is already marked
// dropped, with the stack and start time of o. It is meant to be called from a
// runtime cleanup when the object created at o is garbage-collected without
// being closed. The checkout is never released; it reports the leak until the
// process ends.
func (s *Scope) Dropped(kind Kind, o Origin) {
	s.CheckoutAt(kind, "", o, nil).MarkDropped()
}

// CheckoutAt records a checkout of kind whose origin was captured earlier
// with [Scope.Origin]: for a holder that is created in one place and takes
// its resource later, as a Pub/Sub that dials on its first subscription.
//
// When done is not nil, the holder signals its own end by closing it: once
// done is closed the checkout counts as released, and the next report,
// [Engine.Stats] or [Scope.Outstanding] releases it. That ends the checkout
// correctly even when nothing is left to call Release, for example after the
// holder's client was closed. Such a checkout must not also be released with
// [Token.Release].
//
// CheckoutAt is never inlined: addToProfile counts on its frame.
//
//go:noinline
func (s *Scope) CheckoutAt(kind Kind, op string, o Origin, done <-chan struct{}) Token {
	r := s.e.records.Get().(*record)
	// A dropped client is registered from a cleanup goroutine, whose stack
	// says nothing; other late checkouts are made on their holder's path,
	// whose stack goes into the profile.
	profiled := false
	if kind != KindClient && s.e.profiles(kind) {
		var pcs [maxDepth]uintptr
		profiled = addToProfile(r, kind, pcs[:stack.Callers(pcs[:])])
	}
	sh := r.shard
	sh.mu.Lock()
	r.scope, r.kind, r.op, r.label, r.start = s, kind, op, o.label, o.start
	r.npc, r.drop = copy(r.pcs[:], o.pcs), o.drop
	r.profiled = profiled
	sh.link(r)
	if done != nil {
		r.done = done
		sh.untilLive++
	}
	tok := Token{r: r, gen: r.gen}
	sh.mu.Unlock()
	return tok
}

// Stats counts what an engine has seen: the fields of tracker.Stats, which
// documents them, and which is converted from it. Outstanding ==
// Checkouts - Releases always holds for one snapshot.
type Stats struct {
	Checkouts, Releases, Outstanding, InvalidReleases, Dropped uint64
}

// Stats returns the engine's counters, summed over its shards.
func (e *Engine) Stats() Stats {
	var st Stats
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		ended := sh.sweep()
		st.Checkouts += sh.checkouts
		st.Releases += sh.releases
		st.InvalidReleases += sh.invalidReleases
		st.Dropped += sh.dropped
		sh.mu.Unlock()
		ended.finish(e)
	}
	st.Outstanding = st.Checkouts - st.Releases
	return st
}

// Outstanding returns how many checkouts of this scope are outstanding now.
func (s *Scope) Outstanding() int {
	n := 0
	s.e.each(func(r *record) {
		if s.includes(r.scope) {
			n++
		}
	})
	return n
}

// each calls fn for every live record, holding the record's shard lock.
// Records whose done channel is closed are released first, so fn never sees
// a checkout that has already ended.
func (e *Engine) each(fn func(*record)) {
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		ended := sh.sweep()
		for r := sh.head; r != nil; r = r.next {
			fn(r)
		}
		sh.mu.Unlock()
		ended.finish(e)
	}
}

// isClosed reports whether ch is closed, without blocking. The channels
// passed to CheckoutAt are only ever closed, never sent on.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

type labelKey struct{}

// WithLabel returns a context whose checkouts carry label in reports; see
// tracker.WithLabel.
func WithLabel(ctx context.Context, label string) context.Context {
	return context.WithValue(ctx, labelKey{}, label)
}

// LabelFrom returns the label attached to ctx by [WithLabel], or "" (also
// for a nil ctx).
func LabelFrom(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	s, _ := ctx.Value(labelKey{}).(string)
	return s
}
