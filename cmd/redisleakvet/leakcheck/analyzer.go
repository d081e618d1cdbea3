// Package leakcheck is a static analyzer that reports go-redis and redisleak
// handles (clients, dedicated connections, Pub/Subs) that the function which
// opened them does not close on every path.
//
// A handle is reported at the line that opened it when some path from the
// open to a return of the function passes no Close of it (direct or
// deferred) and does not hand it off. A hand-off lets the handle out of the
// function: returned, stored anywhere but a local variable, sent, passed to
// a function that is not one of its own methods, given to a goroutine or a
// func literal other than a deferred one that closes it. From there the
// handle is someone else's to close, and an intraprocedural check cannot
// tell whose, so a path through a hand-off is no leak; a path that returns
// before it, say on an error, still is. A handle whose variable is captured
// by a func literal (other than such a deferred close) or has its address
// taken escapes at no particular point and is never reported.
//
// Paths on which the opener's own error is non-nil open nothing, as in
//
//	c, err := pool.NewClient(opt)
//	if err != nil {
//		return err // not a leak: there is no client
//	}
//
// Clients created in func main live as long as the program and are not
// reported, nor are (T, error) opens whose T is assigned to the blank
// identifier: `_, err := pool.NewClient(opt)` checks options, as tests of
// refused options do. A //redisleak:ignore comment on the line of the open, or on the
// line before it, silences that open's finding.
package leakcheck

import (
	"go/ast"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/passes/buildssa"
	"golang.org/x/tools/go/ssa"
)

// Analyzer reports Redis handles that are not closed on some path of the
// function that opened them. Run it with singlechecker, go vet -vettool, or
// any driver of golang.org/x/tools/go/analysis.
var Analyzer = &analysis.Analyzer{
	Name:     "redisleakvet",
	Doc:      doc,
	Run:      run,
	Requires: []*analysis.Analyzer{buildssa.Analyzer},
}

const doc = `report Redis connections, Pub/Subs and clients left open

redisleakvet reports, at the line that opens it, a go-redis or redisleak
handle (Client.Conn, Subscribe/PSubscribe/SSubscribe, redis.NewClient and
the other client constructors, pool.NewClient, ClusterClient.ConnForKey, ...)
that some path of the opening function leaves without Close and without
handing it off (returning, storing, sending or passing it to a function,
giving it to a goroutine or func literal). Paths on which the opener's own
error is non-nil are not leaks. A //redisleak:ignore comment on the line of the open or the
line before silences one finding.`

// ignoreDirective is the comment that silences the finding of an open on its
// line or the next.
const ignoreDirective = "redisleak:ignore"

func run(pass *analysis.Pass) (any, error) {
	ssaRes, ok := pass.ResultOf[buildssa.Analyzer].(*buildssa.SSA)
	if !ok || ssaRes == nil {
		return nil, nil
	}
	r := newReporter(pass)
	for _, fn := range ssaRes.SrcFuncs {
		if fn == nil || len(fn.Blocks) == 0 {
			continue
		}
		for _, o := range findOpens(fn) {
			if o.kind == kindClient && isMainFunc(fn) {
				continue // lives as long as the program
			}
			if o.handle == nil && o.err != nil {
				// `_, err := pool.NewClient(opt)`: only the error is wanted,
				// the way tests check that bad options are refused.
				continue
			}
			u := trackUses(fn, o)
			if u.escapes {
				continue // reachable from anywhere: someone else's to close
			}
			if leak := findLeak(fn, o, u); leak != nil {
				r.report(fn, o, u, leak)
			}
		}
	}
	return nil, nil
}

// isMainFunc tells whether fn is the body of package main's func main (not a
// func literal inside it, which may run once per request).
func isMainFunc(fn *ssa.Function) bool {
	return fn.Parent() == nil && fn.Signature.Recv() == nil && fn.Name() == "main" &&
		fn.Pkg != nil && fn.Pkg.Pkg.Name() == "main"
}

// reporter turns leaks into diagnostics. It indexes the package's syntax once
// on first use: the calls by their parenthesis (to report at the start of
// the call expression, where SSA only keeps the Lparen), the comparisons by
// their operator (to print a branch condition as written), and the lines
// that carry an ignore directive.
type reporter struct {
	pass    *analysis.Pass
	indexed bool
	calls   map[token.Pos]*ast.CallExpr
	binops  map[token.Pos]*ast.BinaryExpr
	ignored map[string]map[int]bool // file name -> lines with the directive
}

func newReporter(pass *analysis.Pass) *reporter { return &reporter{pass: pass} }

func (r *reporter) index() {
	if r.indexed {
		return
	}
	r.indexed = true
	r.calls = make(map[token.Pos]*ast.CallExpr)
	r.binops = make(map[token.Pos]*ast.BinaryExpr)
	r.ignored = make(map[string]map[int]bool)
	for _, f := range r.pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				r.calls[n.Lparen] = n
			case *ast.BinaryExpr:
				r.binops[n.OpPos] = n
			}
			return true
		})
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				text := strings.TrimSpace(strings.TrimPrefix(c.Text, "//"))
				if !strings.HasPrefix(text, ignoreDirective) {
					continue
				}
				p := r.pass.Fset.Position(c.Slash)
				if r.ignored[p.Filename] == nil {
					r.ignored[p.Filename] = make(map[int]bool)
				}
				r.ignored[p.Filename][p.Line] = true
			}
		}
	}
}

// report emits the diagnostic of one leaking open, unless an ignore
// directive covers it.
func (r *reporter) report(fn *ssa.Function, o *open, u *uses, l *leak) {
	r.index()
	pos := o.call.Pos()
	if call := r.calls[pos]; call != nil {
		pos = call.Pos()
	}
	p := r.pass.Fset.Position(pos)
	if lines := r.ignored[p.Filename]; lines[p.Line] || lines[p.Line-1] {
		return
	}
	r.pass.Report(analysis.Diagnostic{
		Pos:      pos,
		Category: o.kind.String(),
		Message:  o.what + " " + r.describe(fn, o, u, l),
	})
}

// where renders pos as file:line, without the directory: the diagnostic
// itself already carries the full position.
func (r *reporter) where(pos token.Pos) string {
	p := r.pass.Fset.Position(pos)
	if !p.IsValid() {
		return "an unknown line"
	}
	return filepath.Base(p.Filename) + ":" + strconv.Itoa(p.Line)
}
