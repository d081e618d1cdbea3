package leakcheck

import (
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/ssa"
)

// leak is one path of the control-flow graph on which an open handle
// reaches an exit of its function, or is opened again by a loop, without a
// Close.
type leak struct {
	exit     *ssa.Return // the return reached with the handle open; nil when a loop reopens it first
	branches []branch    // the conditional branches the path takes, in order
}

// branch is a conditional branch that a path takes.
type branch struct {
	br   *ssa.If
	took int // which successor the path takes: 0 true, 1 false
}

// other is the successor of the branch that the path does not take.
func (b branch) other() *ssa.BasicBlock { return b.br.Block().Succs[1-b.took] }

// pathNode is a block on the breadth-first search tree, entered from the
// top; the root is the open's own block, entered right after the open.
type pathNode struct {
	b      *ssa.BasicBlock
	parent *pathNode
}

// outcome is what running a block's instructions does to the handle.
type outcome int

const (
	goesOn   outcome = iota // reaches the block's end still open
	closed                  // a close, a deferred close or a hand-off runs
	exits                   // a return runs
	reopened                // the open itself runs again (a loop)
	aborts                  // a panic or a call that does not return
)

// findLeak searches fn's control-flow graph, from right after the open,
// for a path that reaches a return (or the open again) with no close or
// hand-off of the handle on it, and returns the shortest one, or nil.
// Successors on which the handle was never opened (u.deadSucc) are not
// followed; paths that panic or call a function that does not return
// (os.Exit, log.Fatal, t.Fatal) are not leaks. An exit is preferred to a
// loop reopening, as it names a return.
func findLeak(fn *ssa.Function, o *open, u *uses) *leak {
	start := o.call.Block()
	if start == nil {
		return nil
	}
	from := -1
	for i, ins := range start.Instrs {
		if ins == ssa.Instruction(o.call) {
			from = i + 1
		}
	}
	if from < 0 {
		return nil
	}
	if deferredBefore(o.call, u) {
		return nil
	}
	var loop *leak
	visited := make(map[*ssa.BasicBlock]bool)
	queue := []*pathNode{{b: start}}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		first := 0
		if n.parent == nil {
			first = from
		}
		res, ret := scan(n.b, first, o, u)
		switch res {
		case exits:
			l := witness(n)
			l.exit = ret
			return l
		case reopened:
			if loop == nil {
				loop = witness(n)
			}
			continue
		case closed, aborts:
			continue
		}
		for i, succ := range n.b.Succs {
			if br, ok := lastInstr(n.b).(*ssa.If); ok {
				if dead, ok := u.deadSucc[br]; ok && dead == i {
					continue
				}
			}
			if !visited[succ] {
				visited[succ] = true
				queue = append(queue, &pathNode{b: succ, parent: n})
			}
		}
	}
	return loop
}

// scan runs b's instructions from index first and tells what happens to the
// handle, with the return it reaches, if it does.
func scan(b *ssa.BasicBlock, first int, o *open, u *uses) (outcome, *ssa.Return) {
	for _, ins := range b.Instrs[first:] {
		if u.closes[ins] || u.handoffs[ins] {
			return closed, nil
		}
		switch ins := ins.(type) {
		case *ssa.Call:
			if ins == o.call {
				return reopened, nil
			}
			if noReturn(ins.Common()) {
				return aborts, nil
			}
		case *ssa.Return:
			return exits, ins
		case *ssa.Panic:
			return aborts, nil
		}
	}
	return goesOn, nil
}

// deferredBefore tells whether a deferred close of the handle is always
// registered before the open (var ps *redis.PubSub; defer func() { if ps !=
// nil { ps.Close() } }(); ps = c.Subscribe(...)): it then runs at every exit
// after the open, although no path from the open passes it.
func deferredBefore(call *ssa.Call, u *uses) bool {
	for ins := range u.closes {
		d, ok := ins.(*ssa.Defer)
		if !ok {
			continue
		}
		if d.Block() == call.Block() {
			for _, x := range d.Block().Instrs {
				if x == ssa.Instruction(d) {
					return true // the defer comes first in the block
				}
				if x == ssa.Instruction(call) {
					break
				}
			}
			continue
		}
		if d.Block().Dominates(call.Block()) {
			return true
		}
	}
	return false
}

// witness rebuilds the path that ends in n, with the branches it takes.
func witness(n *pathNode) *leak {
	var rev []branch
	for c := n; c.parent != nil; c = c.parent {
		br, ok := lastInstr(c.parent.b).(*ssa.If)
		if !ok || len(c.parent.b.Succs) != 2 {
			continue
		}
		for i, s := range c.parent.b.Succs {
			if s == c.b {
				rev = append(rev, branch{br: br, took: i})
				break
			}
		}
	}
	l := &leak{branches: make([]branch, 0, len(rev))}
	for i := len(rev) - 1; i >= 0; i-- {
		l.branches = append(l.branches, rev[i])
	}
	return l
}

// decidingBranch returns the branch of the path that made it a leak: the
// last one whose other side could still reach a close or a hand-off of the
// handle (the early return on an error, the continue that skips the Close),
// or nil when no branch of the path had that choice.
func decidingBranch(l *leak, o *open, u *uses) *branch {
	for i := len(l.branches) - 1; i >= 0; i-- {
		if reachesRelease(l.branches[i].other(), o, u) {
			return &l.branches[i]
		}
	}
	return nil
}

// reachesRelease tells whether some path from the top of b reaches a close
// or a hand-off of the handle before the open runs again (a release after
// that is the next handle's).
func reachesRelease(b *ssa.BasicBlock, o *open, u *uses) bool {
	seen := map[*ssa.BasicBlock]bool{b: true}
	for stack := []*ssa.BasicBlock{b}; len(stack) > 0; {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		reopens := false
		for _, ins := range cur.Instrs {
			if u.closes[ins] || u.handoffs[ins] {
				return true
			}
			if ins == ssa.Instruction(o.call) {
				reopens = true
				break
			}
		}
		if reopens {
			continue
		}
		for _, s := range cur.Succs {
			if !seen[s] {
				seen[s] = true
				stack = append(stack, s)
			}
		}
	}
	return false
}

func lastInstr(b *ssa.BasicBlock) ssa.Instruction {
	if len(b.Instrs) == 0 {
		return nil
	}
	return b.Instrs[len(b.Instrs)-1]
}

// noReturnFuncs are functions, by import path and name (Type.Method for
// methods), after whose call the function's code no longer runs: the
// process exits, or the goroutine panics or exits (deferred calls run).
var noReturnFuncs = map[string]map[string]bool{
	"os":      {"Exit": true},
	"runtime": {"Goexit": true},
	"log": {
		"Fatal": true, "Fatalf": true, "Fatalln": true, "Panic": true, "Panicf": true, "Panicln": true,
		"Logger.Fatal": true, "Logger.Fatalf": true, "Logger.Fatalln": true,
		"Logger.Panic": true, "Logger.Panicf": true, "Logger.Panicln": true,
	},
	"testing": {
		"common.Fatal": true, "common.Fatalf": true, "common.FailNow": true,
		"common.Skip": true, "common.Skipf": true, "common.SkipNow": true,
		"TB.Fatal": true, "TB.Fatalf": true, "TB.FailNow": true,
		"TB.Skip": true, "TB.Skipf": true, "TB.SkipNow": true,
	},
	// Ginkgo's Fail and Skip panic to end the spec.
	"github.com/onsi/ginkgo":    {"Fail": true, "Skip": true},
	"github.com/onsi/ginkgo/v2": {"Fail": true, "Skip": true},
	"github.com/bsm/ginkgo/v2":  {"Fail": true, "Skip": true}, // go-redis's fork
}

// noReturn tells whether a call never returns to its caller.
func noReturn(c *ssa.CallCommon) bool {
	obj := calleeFunc(c)
	if obj == nil || obj.Pkg() == nil {
		return false
	}
	name := obj.Name()
	if sig, ok := obj.Type().(*types.Signature); ok && sig.Recv() != nil {
		name = recvTypeName(sig) + "." + name
	}
	return noReturnFuncs[packagePath(obj.Pkg())][name]
}

// describe renders where l leaves the handle open. A path that takes the
// error side of an error's nil check is named by it ("when err != nil at
// handler.go:42"), the commonest leak: an early return that skips the
// Close. Others are named by their return, or the loop that reopens, and by
// the branch that decided the leak when there is one.
func (r *reporter) describe(fn *ssa.Function, o *open, u *uses, l *leak) string {
	verb := "is not closed"
	if len(u.closes) == 0 {
		verb = "is never closed; it leaks"
	}
	dec := decidingBranch(l, o, u)
	named := dec
	if named == nil && len(l.branches) > 0 {
		// Nothing releases the handle on any branch: the last branch still
		// tells an error path from the others.
		named = &l.branches[len(l.branches)-1]
	}
	if named != nil {
		if cond, pos, ok := r.errorSide(*named); ok {
			msg := verb + " when " + cond + " at " + r.where(pos)
			if l.exit == nil {
				msg += " before the loop opens another"
			}
			return msg
		}
	}
	var msg string
	if l.exit == nil {
		msg = verb + " before the loop opens another at " + r.where(o.call.Pos())
	} else {
		msg = verb + " on the path returning at " + r.where(returnPos(fn, l.exit))
	}
	if dec != nil {
		if pos := branchPos(dec.br); pos.IsValid() {
			if at := r.where(pos); !strings.HasSuffix(msg, " at "+at) {
				msg += " (through the branch at " + at + ")"
			}
		}
	}
	return msg
}

// errorSide renders a branch as the condition that holds on the path
// ("err != nil") when the branch checks an error against nil and the path
// takes its error side.
func (r *reporter) errorSide(b branch) (string, token.Pos, bool) {
	cmp, ok := b.br.Cond.(*ssa.BinOp)
	if !ok || (cmp.Op != token.EQL && cmp.Op != token.NEQ) {
		return "", token.NoPos, false
	}
	// The true side of err != nil, or the false side of err == nil.
	if (cmp.Op == token.NEQ) != (b.took == 0) {
		return "", token.NoPos, false
	}
	var checked ssa.Value
	switch {
	case isNilConst(cmp.Y):
		checked = cmp.X
	case isNilConst(cmp.X):
		checked = cmp.Y
	default:
		return "", token.NoPos, false
	}
	if !isErrorType(checked.Type()) {
		return "", token.NoPos, false
	}
	expr := r.binops[cmp.Pos()]
	if expr == nil {
		return "", token.NoPos, false
	}
	operand := expr.X
	if id, ok := ast.Unparen(operand).(*ast.Ident); ok && id.Name == "nil" {
		operand = expr.Y
	}
	return types.ExprString(operand) + " != nil", cmp.Pos(), true
}

// branchPos is the position of a branch: its condition's, or failing that
// (a condition made of && and ||) the last positioned instruction of its
// block.
func branchPos(br *ssa.If) token.Pos {
	if pos := br.Cond.Pos(); pos.IsValid() {
		return pos
	}
	instrs := br.Block().Instrs
	for i := len(instrs) - 1; i >= 0; i-- {
		if pos := instrs[i].Pos(); pos.IsValid() {
			return pos
		}
	}
	return token.NoPos
}

// returnPos is the position of a return: its own for an explicit one, the
// closing brace of the function for the implicit one at its end.
func returnPos(fn *ssa.Function, ret *ssa.Return) token.Pos {
	if ret.Pos().IsValid() {
		return ret.Pos()
	}
	switch syn := fn.Syntax().(type) {
	case *ast.FuncDecl:
		if syn.Body != nil {
			return syn.Body.Rbrace
		}
	case *ast.FuncLit:
		return syn.Body.Rbrace
	}
	return fn.Pos()
}
