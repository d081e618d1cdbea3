package stack

// Callers fills pcs with the return addresses of the calling goroutine's
// frames above its caller's, innermost first, and returns how many it wrote:
// what runtime.Callers(2, pcs) returns when called there, except that a
// function inlined into another shares its frame's address rather than
// getting one of its own. runtime.CallersFrames expands those again, and
// [Frames] with it, so symbolized stacks are the same.
//
// On amd64 it follows the frame pointers that Go keeps in every frame, as
// the runtime's execution tracer does (callers_amd64.s): a few nanoseconds
// for a whole stack, against 10–20 ns per frame for runtime.Callers, whose
// unwinder reads each function's tables. Elsewhere it is runtime.Callers.
//
// Unlike runtime.Callers, it also lists the wrapper a go statement runs
// (main.main.gowrap1, say): a goroutine started directly on a library
// method is then named by the line of its go statement.
//
//go:noescape
func Callers(pcs []uintptr) int
