//go:build !amd64

package stack

import "runtime"

// Callers is runtime.Callers(2, pcs) as called by Callers's caller; on amd64
// it follows frame pointers instead (see callers_amd64.go).
func Callers(pcs []uintptr) int {
	// 0 is runtime.Callers, 1 Callers (inlined or not), 2 its caller.
	return runtime.Callers(3, pcs)
}
