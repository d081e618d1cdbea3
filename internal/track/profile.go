package track

import (
	"runtime"
	"runtime/pprof"
	"slices"
	"sync/atomic"

	"github.com/redisleak/redisleak/internal/stack"
)

// ProfileName prefixes the names of the runtime/pprof profiles of outstanding
// long-lived checkouts, one per kind ([ProfileNameOf]); tracker.ProfileName
// is this, and documents them. Commands and pipelines stay out, even when
// every checkout captures a stack, to keep the profile's lock and
// allocations off their path.
const ProfileName = "redisleak.checkouts"

// ProfileNameOf returns the name of the pprof profile of kind's outstanding
// checkouts: ProfileName, a dot, and the kind's name.
func ProfileNameOf(k Kind) string { return ProfileName + "." + k.String() }

// profiles are the pprof profiles by kind; nil for a kind without one.
var profiles = func() (p [NumKinds]*pprof.Profile) {
	for _, k := range []Kind{KindBlocking, KindConn, KindPubSub, KindSocket} {
		p[k] = pprof.NewProfile(ProfileNameOf(k))
	}
	return p
}()

// profiles reports whether checkouts of kind k go into k's pprof profile.
// Dedicated connections do only when every checkout captures a stack:
// Profile.Add takes the stack again with runtime.Callers, since nothing lets
// it reuse the one the checkout took, about a microsecond, more than the
// rest of a Conn costs (see tracker.ProfileName).
func (e *Engine) profiles(k Kind) bool {
	return !k.ShortLived() && (k != KindConn || e.cfg.CaptureAll)
}

// addToProfile adds r to the profile of kind, if it has one, and reports
// whether it did. pcs is the stack its caller captured with stack.Callers:
// the profile's stack starts at the first of its frames that is the caller's
// own code, past every frame of the library, go-redis, the standard library
// and the runtime, so that pprof's leaves are the user's functions. (A
// Pub/Sub takes its checkout when it dials, deep in go-redis; a blocking
// command in the client's hook.)
//
// The caller must be checkout or CheckoutAt, called by the function whose
// frame is pcs[0]'s, and neither may be inlined: Profile.Add captures the
// stack again and is told how many frames to skip.
//
//go:noinline
func addToProfile(r *record, kind Kind, pcs []uintptr) bool {
	p := profiles[kind]
	if p == nil {
		return false
	}
	// For Profile.Add, 1 is Add, 2 addToProfile, 3 its caller, 4 the first
	// function of pcs[0]'s frame.
	p.Add(r, 3+callerDepth(pcs))
	return true
}

// depthCache remembers callerDepth's answers by the return addresses up to
// the caller's frame, hashed: the high 48 bits of an entry are the hash, the
// low 16 the depth; zero is an empty slot.
var depthCache [1 << 10]atomic.Uint64

// callerDepth returns how many frames runtime.Callers lists before the
// caller's own code in the stack pcs holds (0 when none is: a checkout the
// library made for itself), for Profile.Add's skip. runtime.Callers lists a
// frame per function, inlined ones included, and leaves some frames out
// (wrappers, reflect's); so for each distinct path to the caller's frame,
// the first checkout asks runtime.Callers itself, and later ones find its
// answer in depthCache.
//
//go:noinline
func callerDepth(pcs []uintptr) int {
	lead := slices.IndexFunc(pcs, stack.HasCaller)
	if lead < 0 {
		return 0
	}
	h := uint64(14695981039346656037) // FNV-1a over the return addresses
	for _, pc := range pcs[:lead+1] {
		h = (h ^ uint64(pc)) * 1099511628211
	}
	h >>= 16
	slot := &depthCache[h&(uint64(len(depthCache))-1)]
	if e := slot.Load(); e != 0 && e>>16 == h {
		return int(e & 0xffff)
	}
	// 0 is runtime.Callers, 1 callerDepth, 2 addToProfile, 3 its caller,
	// 4 the first function of pcs[0]'s frame.
	var logical [2 * maxDepth]uintptr
	n := runtime.Callers(4, logical[:])
	depth, found := 0, false
	frames := runtime.CallersFrames(logical[:n])
	for !found {
		f, more := frames.Next()
		if found = stack.IsCaller(f); !found {
			depth++
		}
		if !more {
			break
		}
	}
	if !found {
		return 0
	}
	slot.Store(h<<16 | uint64(depth&0xffff))
	return depth
}

// removeFromProfile takes r out of its kind's profile.
func removeFromProfile(r *record) {
	if p := profiles[r.kind]; p != nil {
		p.Remove(r)
	}
}
