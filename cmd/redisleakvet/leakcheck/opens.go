package leakcheck

import (
	"go/types"
	"strings"

	"golang.org/x/tools/go/ssa"
)

// Import paths of the packages whose calls open handles.
const (
	goRedisPath = "github.com/redis/go-redis/v9"
	poolPath    = "github.com/redisleak/redisleak/pool"
)

// kind is what an open hands out.
type kind int

const (
	kindClient kind = iota // a client with its own connection pool
	kindConn               // a dedicated connection taken from a pool
	kindPubSub             // a Pub/Sub with its own connection
)

// String names the kind as the diagnostics' category.
func (k kind) String() string {
	switch k {
	case kindConn:
		return "conn"
	case kindPubSub:
		return "pubsub"
	default:
		return "client"
	}
}

// constructors are the package-level functions that return a new client, by
// import path. Each client owns a pool of sockets until its Close.
var constructors = map[string]map[string]bool{
	goRedisPath: {
		"NewClient": true, "NewClusterClient": true, "NewRing": true,
		"NewFailoverClient": true, "NewFailoverClusterClient": true,
		"NewUniversalClient": true, "NewSentinelClient": true,
	},
	poolPath: {
		"NewClient": true, "NewClusterClient": true, "NewRing": true,
		"NewFailoverClient": true, "NewUniversalClient": true,
	},
}

// connMethods are the methods that take a dedicated connection out of a
// client's pool, by import path and then receiver type name. Node clients
// (ClusterClient.MasterForKey, the ForEach* callbacks' arguments) are not
// here: the cluster client owns and closes them.
var connMethods = map[string]map[string]map[string]bool{
	goRedisPath: {"Client": {"Conn": true, "EphemeralConn": true}},
	poolPath: {
		"Client":        {"Conn": true, "ConnContext": true, "EphemeralConn": true},
		"ClusterClient": {"ConnForKey": true},
		"Ring":          {"ConnForKey": true},
	},
}

// subscribeMethods open a Pub/Sub on whatever client (or interface of one)
// declares them; the result type tells them from PubSub's own Subscribe,
// which adds channels to an open Pub/Sub and returns an error.
var subscribeMethods = map[string]bool{"Subscribe": true, "PSubscribe": true, "SSubscribe": true}

// open is one call that hands its caller a handle it owns.
type open struct {
	call   *ssa.Call
	handle ssa.Value // the handle: the call or its Extract #0; nil when discarded
	err    ssa.Value // the opener's error (Extract #1) for (T, error) openers
	kind   kind
	what   string // e.g. "*redis.Conn from Client.Conn"
}

// findOpens returns fn's calls that open a handle, in instruction order.
// Deferred and go'ed opens (defer c.Subscribe(...)) are left out: they drop
// their handle at once, are rare, and have no result to follow.
func findOpens(fn *ssa.Function) []*open {
	var opens []*open
	for _, b := range fn.Blocks {
		for _, ins := range b.Instrs {
			call, ok := ins.(*ssa.Call)
			if !ok {
				continue
			}
			obj := calleeFunc(call.Common())
			if obj == nil {
				continue
			}
			k, ok := openKind(obj)
			if !ok {
				continue
			}
			o := &open{call: call, kind: k}
			o.what = handleTypeString(obj) + " from " + funcName(obj)
			if tuple, ok := call.Type().(*types.Tuple); ok {
				o.handle, o.err = extract(call, 0), nil
				if tuple.Len() == 2 && isErrorType(tuple.At(1).Type()) {
					o.err = extract(call, 1)
				}
			} else {
				o.handle = call
			}
			opens = append(opens, o)
		}
	}
	return opens
}

// calleeFunc returns the function or method a call invokes, if known: the
// interface method for dynamic calls, the static callee's declaration
// otherwise (its generic origin for instantiations).
func calleeFunc(c *ssa.CallCommon) *types.Func {
	if c.IsInvoke() {
		return c.Method
	}
	if f := c.StaticCallee(); f != nil {
		if obj, ok := f.Object().(*types.Func); ok {
			return obj
		}
	}
	return nil
}

// openKind tells whether a call of obj opens a handle, and which kind.
func openKind(obj *types.Func) (kind, bool) {
	if obj.Pkg() == nil {
		return 0, false
	}
	path := packagePath(obj.Pkg())
	if path != goRedisPath && path != poolPath {
		return 0, false
	}
	sig, ok := obj.Type().(*types.Signature)
	if !ok {
		return 0, false
	}
	if sig.Recv() == nil {
		return kindClient, constructors[path][obj.Name()]
	}
	if connMethods[path][recvTypeName(sig)][obj.Name()] {
		return kindConn, true
	}
	if subscribeMethods[obj.Name()] && sig.Results().Len() == 1 && isNamedPtr(sig.Results().At(0).Type(), goRedisPath, "PubSub") {
		return kindPubSub, true
	}
	return 0, false
}

// packagePath is pkg's import path without a vendor directory prefix, so
// that a vendored go-redis is recognized too.
func packagePath(pkg *types.Package) string {
	path := pkg.Path()
	if i := strings.LastIndex(path, "/vendor/"); i >= 0 {
		return path[i+len("/vendor/"):]
	}
	return strings.TrimPrefix(path, "vendor/")
}

// recvTypeName is the name of a method's receiver type (Client for
// (*Client).Conn, UniversalClient for an interface's method), or "".
func recvTypeName(sig *types.Signature) string {
	if sig.Recv() == nil {
		return ""
	}
	t := types.Unalias(sig.Recv().Type())
	if p, ok := t.(*types.Pointer); ok {
		t = types.Unalias(p.Elem())
	}
	if n, ok := t.(*types.Named); ok {
		return n.Obj().Name()
	}
	return ""
}

// isNamedPtr tells whether t is *path.name.
func isNamedPtr(t types.Type, path, name string) bool {
	p, ok := types.Unalias(t).(*types.Pointer)
	if !ok {
		return false
	}
	n, ok := types.Unalias(p.Elem()).(*types.Named)
	return ok && n.Obj().Name() == name && n.Obj().Pkg() != nil && packagePath(n.Obj().Pkg()) == path
}

var errorType = types.Universe.Lookup("error").Type()

// isErrorType tells whether t is the error interface or implements it: the
// last result of an opener, or a value compared with nil on a branch.
func isErrorType(t types.Type) bool {
	return t != nil && types.Implements(t, errorType.Underlying().(*types.Interface))
}

// funcName renders an opener as in a diagnostic: Client.Conn for a method,
// redis.NewClient for a function.
func funcName(obj *types.Func) string {
	sig, _ := obj.Type().(*types.Signature)
	if sig != nil && sig.Recv() != nil {
		if name := recvTypeName(sig); name != "" {
			return name + "." + obj.Name()
		}
		return obj.Name()
	}
	return obj.Pkg().Name() + "." + obj.Name()
}

// handleTypeString renders the type of the handle obj returns (its first
// result) qualified by package name: *redis.Conn, *pool.Client.
func handleTypeString(obj *types.Func) string {
	sig, ok := obj.Type().(*types.Signature)
	if !ok || sig.Results().Len() == 0 {
		return "handle"
	}
	return types.TypeString(sig.Results().At(0).Type(), func(p *types.Package) string { return p.Name() })
}

// extract returns the Extract of result i of a tuple-valued call, or nil
// when that result is unused (assigned to _ or dropped).
func extract(call *ssa.Call, i int) ssa.Value {
	refs := call.Referrers()
	if refs == nil {
		return nil
	}
	for _, ins := range *refs {
		if e, ok := ins.(*ssa.Extract); ok && e.Index == i {
			if uses := e.Referrers(); uses != nil && len(*uses) > 0 {
				return e
			}
		}
	}
	return nil
}
