package track

import (
	"sync"
	"time"
)

// maxDepth bounds a captured stack. Hooks put about eight library frames above
// the caller; the rest is room for the caller's own frames.
const maxDepth = 32

// record is one checkout. Records are pooled and reused; a Token names a record
// together with its generation, so a stale Token cannot release the checkout
// that reused the record.
//
// Every field below mu's comment is guarded by the lock of the record's shard.
type record struct {
	shard *shard // fixed for the record's life

	// Guarded by shard.mu.
	gen        uint64 // bumped on every release; a Token matches only its own generation
	live       bool   // linked into shard.head, not yet released
	dropped    bool   // its holder was garbage-collected without being released
	profiled   bool   // added to its kind's pprof profile; removed before the record is reused
	warned     bool   // reported as held too long; its release is reported too
	prev, next *record
	scope      *Scope
	kind       Kind
	op         string // command name or other short operation name, never arguments
	label      string
	connName   string          // the connection held, as the server names it; see Token.SetConnName
	note       string          // see Token.SetNote
	start      time.Duration   // since clockBase; unstamped for a command until first seen (see stamp)
	done       <-chan struct{} // when non-nil and closed, the checkout ends by itself; see Scope.CheckoutAt
	npc        int
	drop       int // frames at the top of pcs that are the capturer's, dropped when symbolized
	pcs        [maxDepth]uintptr
}

// unstamped is the start of a command checked out without a stack: reading
// the clock costs more than the rest of its checkout, and its age matters only
// in seconds (held-too-long thresholds, reports), so it is stamped when first
// seen outstanding instead: by the watch, which looks every second at most,
// or by a report.
const unstamped = time.Duration(-1)

// stamp returns r's start, stamping it now if it has none yet. The caller
// holds r's shard lock.
func (r *record) stamp() time.Duration {
	if r.start == unstamped {
		r.start = r.scope.e.since()
	}
	return r.start
}

// shard is one lock and one list of live records. Many shards keep
// concurrent checkouts from contending on a single lock.
type shard struct {
	mu   sync.Mutex
	head *record // live records, newest first

	// Guarded by mu. Invariant: checkouts - releases == number of live records.
	checkouts       uint64
	releases        uint64
	invalidReleases uint64
	dropped         uint64
	untilLive       int      // live records with a done channel; sweeps skip the shard when zero
	_               [64]byte // keep neighbouring shards off one cache line
}

func (s *shard) link(r *record) {
	r.live = true
	r.prev = nil
	r.next = s.head
	if s.head != nil {
		s.head.prev = r
	}
	s.head = r
	s.checkouts++
}

func (s *shard) unlink(r *record) {
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		s.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	}
	r.prev, r.next = nil, nil
	r.live = false
	r.dropped = false
	r.scope = nil
	r.label = ""
	r.connName = ""
	r.note = ""
	r.op = ""
	r.warned = false
	if r.done != nil {
		r.done = nil
		s.untilLive--
	}
	r.gen++
	s.releases++
}

// sweep releases the live records whose done channel is closed and returns
// them, to be put back in the pool once the lock is dropped, together with
// the releases to report to a watch (see ended.finish). It costs nothing
// while no live record has a done channel.
func (s *shard) sweep() ended {
	if s.untilLive == 0 {
		return ended{}
	}
	var e ended
	for r := s.head; r != nil; {
		next := r.next
		if r.done != nil && isClosed(r.done) {
			if w := r.scope.watch.Load(); w != nil && r.warned {
				e.back = append(e.back, returned{w: w, c: r.copy()})
			}
			s.unlink(r)
			e.records = append(e.records, r)
		}
		r = next
	}
	return e
}

// ended is what a sweep released.
type ended struct {
	records []*record
	back    []returned // reported held too long, and now released
}

// returned is a release a watch reports.
type returned struct {
	w *watcher
	c Checkout
}

// finish recycles the records and reports their releases; the shard's lock
// must not be held.
func (e ended) finish(en *Engine) {
	for _, r := range e.records {
		en.recycle(r)
	}
	for _, b := range e.back {
		b.w.returned(b.c)
	}
}
