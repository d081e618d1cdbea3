package leakcheck

import (
	"go/token"
	"go/types"

	"golang.org/x/tools/go/ssa"
)

// uses is what a function does with one handle, found by following the SSA
// values that stand for it (its aliases).
type uses struct {
	// closes are the instructions after which the handle is closed: a Close
	// call on an alias, or a defer statement whose deferred call closes it.
	closes map[ssa.Instruction]bool
	// handoffs are the instructions that let the handle out of the
	// function (see tracker.value): from there on it is someone else's to
	// close, so a path through one of them is no leak.
	handoffs map[ssa.Instruction]bool
	// escapes is set when the handle is let out at no particular point: the
	// variable holding it is captured by a func literal or has its address
	// taken, so it may be reached from anywhere, at any time.
	escapes bool
	// deadSucc maps a branch to the index of its successor that the handle
	// does not reach open: the err != nil side of the opener's own error, the
	// nil side of the handle itself.
	deadSucc map[*ssa.If]int
}

// trackUses follows o's handle through fn and collects its closes and
// hand-offs, whether it escapes, and the branches on which it was never
// opened.
func trackUses(fn *ssa.Function, o *open) *uses {
	u := &uses{deadSucc: make(map[*ssa.If]int)}
	t := newTracker(fn)
	if o.handle != nil {
		t.value(o.handle)
		for v := range t.seen {
			if _, isVar := v.(*ssa.Alloc); !isVar {
				pruneNilChecks(u, v, token.EQL)
			}
		}
	}
	u.closes, u.handoffs, u.escapes = t.closes, t.handoffs, t.escapes
	if o.err != nil {
		for _, e := range errorValues(o.err) {
			pruneNilChecks(u, e, token.NEQ)
		}
	}
	return u
}

// tracker collects the aliases of a handle inside one function, and what
// is done with them.
type tracker struct {
	fn       *ssa.Function
	seen     map[ssa.Value]bool // the aliases, and the variables holding the handle
	closes   map[ssa.Instruction]bool
	handoffs map[ssa.Instruction]bool
	escapes  bool
}

func newTracker(fn *ssa.Function) *tracker {
	return &tracker{
		fn:       fn,
		seen:     make(map[ssa.Value]bool),
		closes:   make(map[ssa.Instruction]bool),
		handoffs: make(map[ssa.Instruction]bool),
	}
}

// value visits the uses of v, an alias of the handle. A use that lets the
// handle out of the function is a hand-off, conservatively: a store
// anywhere but a local variable, a return, a send, a map update, an argument
// of a call other than the handle's own method, a goroutine, a capture by a
// func literal other than a deferred one that closes it, and any instruction
// not understood below.
func (t *tracker) value(v ssa.Value) {
	if v == nil || t.seen[v] {
		return
	}
	t.seen[v] = true
	refs := v.Referrers()
	if refs == nil {
		return
	}
	for _, ins := range *refs {
		switch ins := ins.(type) {
		case *ssa.Call:
			t.call(v, ins.Common(), ins)
		case *ssa.Defer:
			t.call(v, ins.Common(), ins)
		case *ssa.Go:
			// A goroutine that uses the handle, even one that closes it,
			// owns it from then on.
			t.handoffs[ins] = true
		case *ssa.Phi, *ssa.ChangeType, *ssa.MakeInterface, *ssa.TypeAssert:
			// The same handle under another name or type; an interface
			// holding it is let out when that interface is.
			t.value(ins.(ssa.Value))
		case *ssa.Extract:
			if ins.Index == 0 { // x, ok := v.(T)
				t.value(ins)
			}
		case *ssa.FieldAddr:
			t.field(v, ins, ins.X, ins.Field)
		case *ssa.Field:
			t.field(v, ins, ins.X, ins.Field)
		case *ssa.UnOp:
			if ins.Op == token.MUL { // a load through a pointer alias
				t.value(ins)
			}
		case *ssa.Store:
			t.store(v, ins)
		case *ssa.MakeClosure:
			t.closure(v, ins)
		case *ssa.BinOp, *ssa.If, *ssa.DebugRef:
			// Comparisons (cn == nil) and debug info use no handle.
		default:
			// Return, Send, MapUpdate, Slice, Convert, Panic, Select, ...
			t.handoffs[ins] = true
		}
	}
}

// field follows a field selection on an alias. An embedded field is part
// of the handle (pool.Conn embeds *redis.Conn, whose Close closes both;
// promoted methods go through embedded fields). Other fields are the
// handle's internals: reading them neither closes nor lets out the handle.
func (t *tracker) field(v ssa.Value, sel ssa.Value, x ssa.Value, index int) {
	if x != v {
		return
	}
	if f := structField(x.Type(), index); f != nil && f.Anonymous() {
		t.value(sel)
	}
}

// call handles a call that uses alias v: as its receiver (a method of its
// own, maybe Close), or as an argument (a hand-off).
func (t *tracker) call(v ssa.Value, c *ssa.CallCommon, ins ssa.Instruction) {
	recv, method := receiver(c)
	if recv == v && method == "Close" {
		t.closes[ins] = true
	}
	if call, ok := ins.(*ssa.Call); ok && recv == v && types.Identical(call.Type(), v.Type()) {
		// A method of the handle that returns its own type hands out a
		// clone sharing its pool (Client.WithTimeout): closing or
		// returning the clone closes or hands off the handle.
		t.value(call)
	}
	// A call of a func-typed part of the handle (c.Value == v: go-redis's
	// embedded cmdable) is its own machinery, not a hand-off; only arguments
	// other than the receiver let the handle out.
	for i, a := range c.Args {
		if a == v && (i > 0 || recv == nil || c.IsInvoke()) {
			t.handoffs[ins] = true
		}
	}
}

// receiver returns the receiver and the method name of a method call
// (static or through an interface), or nil.
func receiver(c *ssa.CallCommon) (ssa.Value, string) {
	if c.IsInvoke() {
		return c.Value, c.Method.Name()
	}
	if f := c.StaticCallee(); f != nil && f.Signature.Recv() != nil && len(c.Args) > 0 {
		return c.Args[0], f.Name()
	}
	return nil, ""
}

// store handles a store of alias v. Into a local variable of the function
// (an Alloc that stayed one because a closure captures it or its address is
// taken), the variable stands for the handle. Any other destination, a
// field, an element, a global, another function's variable, is a hand-off.
func (t *tracker) store(v ssa.Value, st *ssa.Store) {
	if st.Val != v {
		return // a store into the handle's own memory, or a reassignment of its variable
	}
	if a, ok := st.Addr.(*ssa.Alloc); ok && a.Parent() == t.fn {
		t.variable(a)
		return
	}
	t.handoffs[st] = true
}

// variable visits the uses of a local variable that holds the handle: its
// loads are aliases. A closure that captures it, unless a deferred one
// that closes the handle, or its address let out, may reach the handle from
// anywhere at any time, even from before the open: the handle escapes.
func (t *tracker) variable(a *ssa.Alloc) {
	if t.seen[a] {
		return
	}
	t.seen[a] = true
	refs := a.Referrers()
	if refs == nil {
		return
	}
	for _, ins := range *refs {
		switch ins := ins.(type) {
		case *ssa.UnOp:
			if ins.Op == token.MUL {
				t.value(ins)
			} else {
				t.escapes = true
			}
		case *ssa.Store:
			if ins.Val == a {
				t.escapes = true // &x stored somewhere
			}
		case *ssa.MakeClosure:
			t.closure(a, ins)
		case *ssa.DebugRef:
		default:
			t.escapes = true
		}
	}
}

// closure handles a func literal that captures v (the handle, or the
// variable holding it). A literal that is only ever deferred and that closes
// its capture is a deferred close: `defer func() { _ = cn.Close() }()`, and
// `defer f()` for f := cn.Close, whose bound-method wrapper closes its
// capture in the same way. Any other capture, a goroutine, a callback, a
// literal that is called or stored, makes the literal an owner of the
// handle: a hand-off where the literal is made, or an escape when it
// captures a variable.
func (t *tracker) closure(v ssa.Value, mc *ssa.MakeClosure) {
	letOut := func() {
		if _, isVar := v.(*ssa.Alloc); isVar {
			t.escapes = true
		} else {
			t.handoffs[mc] = true
		}
	}
	body, ok := mc.Fn.(*ssa.Function)
	if !ok {
		letOut()
		return
	}
	var defers []ssa.Instruction
	if refs := mc.Referrers(); refs != nil {
		for _, ins := range *refs {
			d, ok := ins.(*ssa.Defer)
			if !ok || d.Call.Value != mc || len(d.Call.Args) > 0 {
				letOut()
				return
			}
			defers = append(defers, d)
		}
	}
	closes := false
	for i, b := range mc.Bindings {
		if b != v || i >= len(body.FreeVars) {
			continue
		}
		inner := newTracker(body)
		inner.value(body.FreeVars[i])
		closes = closes || len(inner.closes) > 0
	}
	if !closes {
		letOut()
		return
	}
	for _, d := range defers {
		t.closes[d] = true
	}
}

// errorValues returns the values that are the opener's error err at its
// checks: err itself, and, when err is kept in a variable that a closure
// captures (a named result, say), the loads of that variable that follow
// the store in the same block with no other store in between.
func errorValues(err ssa.Value) []ssa.Value {
	vals := []ssa.Value{err}
	refs := err.Referrers()
	if refs == nil {
		return vals
	}
	for _, ins := range *refs {
		st, ok := ins.(*ssa.Store)
		if !ok || st.Val != err {
			continue
		}
		addr, ok := st.Addr.(*ssa.Alloc)
		if !ok {
			continue
		}
		b := st.Block()
		after := false
		for _, next := range b.Instrs {
			if next == ssa.Instruction(st) {
				after = true
				continue
			}
			if !after {
				continue
			}
			if other, ok := next.(*ssa.Store); ok && other.Addr == addr {
				break
			}
			if load, ok := next.(*ssa.UnOp); ok && load.Op == token.MUL && load.X == addr {
				vals = append(vals, load)
			}
		}
	}
	return vals
}

// pruneNilChecks marks the successor of each `v == nil` / `v != nil` branch
// on which the handle is not open: with v the opener's error, the side
// where it is non-nil (deadOp token.NEQ); with v the handle, the side where
// it is nil (token.EQL).
func pruneNilChecks(u *uses, v ssa.Value, deadOp token.Token) {
	refs := v.Referrers()
	if refs == nil {
		return
	}
	for _, ins := range *refs {
		cmp, ok := ins.(*ssa.BinOp)
		if !ok || (cmp.Op != token.EQL && cmp.Op != token.NEQ) || !isNilConst(other(cmp, v)) {
			continue
		}
		dead := 1 // the false side of cmp
		if cmp.Op == deadOp {
			dead = 0 // the true side
		}
		cmpRefs := cmp.Referrers()
		if cmpRefs == nil {
			continue
		}
		for _, r := range *cmpRefs {
			if br, ok := r.(*ssa.If); ok {
				u.deadSucc[br] = dead
			}
		}
	}
}

// other returns the operand of cmp that is not v.
func other(cmp *ssa.BinOp, v ssa.Value) ssa.Value {
	if cmp.X == v {
		return cmp.Y
	}
	return cmp.X
}

// structField returns field index of the struct that t (a struct or a
// pointer to one) is, or nil.
func structField(t types.Type, index int) *types.Var {
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	s, ok := t.Underlying().(*types.Struct)
	if !ok || index < 0 || index >= s.NumFields() {
		return nil
	}
	return s.Field(index)
}

func isNilConst(v ssa.Value) bool {
	c, ok := v.(*ssa.Const)
	return ok && c.IsNil()
}
