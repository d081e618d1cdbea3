package tracker

import (
	"runtime"
	"runtime/pprof"

	"github.com/redisleak/redisleak/internal/stack"
)

// ProfileName prefixes the names of the runtime/pprof profiles of outstanding
// long-lived checkouts, one per kind ([ProfileNameOf]): dedicated connections
// ("redisleak.checkouts.conn"), Pub/Subs (".pubsub"), blocking commands
// (".blocking") and untracked sockets (".socket"). `go tool pprof` groups each
// by call site, the caller's own function as the leaf: with net/http/pprof
// mounted, `go tool pprof http://host/debug/pprof/redisleak.checkouts.conn`.
// Commands and pipelines stay out, even under CaptureAll, to keep the
// profile's lock and allocations off their path.
const ProfileName = "redisleak.checkouts"

// ProfileNameOf returns the name of the pprof profile of kind's outstanding
// checkouts: ProfileName, a dot, and the kind's name. Only the long-lived
// kinds (conn, pubsub, blocking, socket) have one.
func ProfileNameOf(k Kind) string { return ProfileName + "." + k.String() }

// profiles are the pprof profiles by kind; nil for a kind without one.
var profiles = func() (p [kindCount]*pprof.Profile) {
	for _, k := range []Kind{KindBlocking, KindConn, KindPubSub, KindSocket} {
		p[k] = pprof.NewProfile(ProfileNameOf(k))
	}
	return p
}()

// addToProfile adds r to the profile of kind, if it has one, and reports
// whether it did. The profile's stack starts at the caller's own code: at
// the frame skip frames above the caller of addToProfile's caller, and past
// it every frame of the library, go-redis, the standard library and the
// runtime, so that pprof's leaves are the user's functions. (A Pub/Sub takes
// its checkout when it dials, deep in go-redis; a blocking command in the
// client's hook.)
func addToProfile(r *record, kind Kind, skip int) bool {
	p := profiles[kind]
	if p == nil {
		return false
	}
	// 0 is runtime.Callers, 1 addToProfile, 2 its caller, 3 that one's
	// caller.
	var pcs [maxDepth]uintptr
	n := runtime.Callers(3+skip, pcs[:])
	lead := 0
	for lead < n && !stack.IsCaller(outermost(pcs[lead])) {
		lead++
	}
	if lead == n {
		lead = 0 // all library: a checkout the library made for itself
	}
	p.Add(r, 3+skip+lead) // Add counts as runtime.Callers does
	return true
}

// outermost is the frame of the function pc is in: the outermost of the
// functions inlined there.
func outermost(pc uintptr) runtime.Frame {
	frames := runtime.CallersFrames([]uintptr{pc})
	for {
		f, more := frames.Next()
		if !more {
			return f
		}
	}
}

// removeFromProfile takes r out of its kind's profile.
func removeFromProfile(r *record) {
	if p := profiles[r.kind]; p != nil {
		p.Remove(r)
	}
}
