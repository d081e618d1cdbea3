// Package stack turns captured program counters into frames and trims the
// frames that belong to the library, go-redis and the Go runtime, so that a
// report starts at the caller's own code.
package stack

import (
	"runtime"
	"strings"
)

// libraryPrefixes are the package paths whose non-test frames are trimmed
// from the top of a stack. Examples live under the module but are user code
// (package main), so they are never trimmed.
var libraryPrefixes = []string{
	"github.com/redis/go-redis/",
	"github.com/redisleak/redisleak",
	"golang.org/x/sync/",
}

// Frames symbolizes pcs, as runtime.Callers or [Callers] return them, and
// trims them: the first drop frames (those of whoever captured the stack),
// then leading library frames, and every runtime frame are dropped. When
// every frame is library code (a checkout made by the library itself) the
// frames trimmed of only the first drop are returned, so a report never shows
// an empty origin.
func Frames(pcs []uintptr, drop int) []runtime.Frame {
	if len(pcs) == 0 {
		return nil
	}
	all := make([]runtime.Frame, 0, len(pcs))
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		switch {
		case drop > 0:
			drop--
		case !IsRuntime(f.Function) && !isElided(f):
			all = append(all, f)
		}
		if !more {
			break
		}
	}
	for i, f := range all {
		if !IsLibrary(f.Function, f.File) {
			return all[i:]
		}
	}
	return all
}

// IsLibrary reports whether a frame belongs to go-redis or to redisleak's own
// non-test, non-example code.
func IsLibrary(function, file string) bool {
	if strings.HasSuffix(file, "_test.go") {
		return false
	}
	pkg := PackagePath(function)
	for _, p := range libraryPrefixes {
		if strings.HasPrefix(pkg, p) {
			return !strings.HasPrefix(pkg, "github.com/redisleak/redisleak/examples/")
		}
	}
	return false
}

// IsCaller reports whether f is the caller's own code: neither the runtime's,
// the library's (see IsLibrary) nor the standard library's, whose packages
// have no dot in their first path element. Code of package main, and test
// code, is the caller's whatever its path.
func IsCaller(f runtime.Frame) bool {
	if IsRuntime(f.Function) || IsLibrary(f.Function, f.File) {
		return false
	}
	pkg := PackagePath(f.Function)
	first, _, _ := strings.Cut(pkg, "/")
	return pkg == "main" || strings.Contains(first, ".") || strings.HasSuffix(f.File, "_test.go")
}

// IsRuntime reports whether function is part of the Go runtime.
func IsRuntime(function string) bool {
	return strings.HasPrefix(function, "runtime.") || strings.HasPrefix(function, "internal/runtime/")
}

// PackagePath returns the import path of the package that defines function,
// given a fully qualified name such as
// "github.com/redis/go-redis/v9.(*Client).Get" or "main.main.func1".
func PackagePath(function string) string {
	slash := strings.LastIndexByte(function, '/')
	dot := strings.IndexByte(function[slash+1:], '.')
	if dot < 0 {
		return function
	}
	return function[:slash+1+dot]
}
