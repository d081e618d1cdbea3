package track

import (
	"runtime"
	"time"

	"github.com/redisleak/redisleak/internal/stack"
)

// Checkout is one outstanding checkout, copied from its record under its
// shard's lock, its stack not yet symbolized: package tracker turns it into a
// tracker.Checkout, which documents the fields.
type Checkout struct {
	ID       ID
	Kind     Kind
	Op       string
	Label    string
	Scope    string // the name of the scope that made it
	ConnName string
	Start    time.Time
	Dropped  bool
	Note     string
	Stack    Stack
}

// ID identifies one checkout among all those of a process, including a later
// checkout that reuses the same record. IDs are comparable.
type ID struct {
	r   *record
	gen uint64
}

// Stack is a captured stack by value: comparable, so it can key a map, and
// symbolized by [Stack.Frames].
type Stack struct {
	n    int
	drop int // see record.drop
	pcs  [maxDepth]uintptr
}

// Frames symbolizes the stack and trims it, the caller's own frame first
// (see stack.Frames); nil when no stack was captured.
func (st Stack) Frames() []runtime.Frame {
	return stack.Frames(st.pcs[:st.n], st.drop)
}

// copy copies r; the caller holds r's shard lock.
func (r *record) copy() Checkout {
	c := Checkout{
		ID: ID{r: r, gen: r.gen}, Kind: r.kind, Op: r.op, Label: r.label,
		Scope: r.scope.name, ConnName: r.connName, Start: clockBase.Add(r.stamp()), Dropped: r.dropped,
		Note: r.note,
	}
	// Copy only the captured frames: what lies past npc is left over from
	// the record's earlier uses and would split equal stacks.
	c.Stack.n, c.Stack.drop = r.npc, r.drop
	copy(c.Stack.pcs[:], r.pcs[:r.npc])
	return c
}

// Checkouts returns every outstanding checkout of the engine that keep
// accepts (all of them when keep is nil). keep runs under a shard lock and
// sees each checkout before its stack is symbolized, so a narrow filter
// costs little.
func (e *Engine) Checkouts(keep func(*Checkout) bool) []Checkout {
	return e.checkouts(nil, keep)
}

// Checkouts returns the outstanding checkouts of this scope and of its
// children that keep accepts, as [Engine.Checkouts] does.
func (s *Scope) Checkouts(keep func(*Checkout) bool) []Checkout {
	return s.e.checkouts(s, keep)
}

// checkouts copies the live records of one scope (of every scope when only is
// nil) that keep accepts.
func (e *Engine) checkouts(only *Scope, keep func(*Checkout) bool) []Checkout {
	var out []Checkout
	e.each(func(r *record) {
		if only == nil || only.includes(r.scope) {
			if c := r.copy(); keep == nil || keep(&c) {
				out = append(out, c)
			}
		}
	})
	return out
}
