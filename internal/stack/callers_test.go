package stack

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// functions symbolizes pcs, one function name per frame, leaving out the
// wrappers runtime.Callers leaves out.
func functions(pcs []uintptr) []string {
	var out []string
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function != "" && !isElided(f) && !isGoWrapper(f) {
			out = append(out, f.Function)
		}
		if !more {
			return out
		}
	}
}

// both captures the stack above its caller with Callers and with
// runtime.Callers.
//
//go:noinline
func both() (fp, rt []string) {
	var a, b [64]uintptr
	n := Callers(a[:])
	m := runtime.Callers(2, b[:])
	return functions(a[:n]), functions(b[:m])
}

func inlined() (fp, rt []string) { return both() }

//go:noinline
func notInlined() (fp, rt []string) { return inlined() }

type receiver struct{}

func (receiver) method() (fp, rt []string) { return notInlined() }

type embedder struct{ receiver }

type methoder interface{ method() ([]string, []string) }

// TestCallersMatchesRuntime checks that Callers, whatever way it is reached
// (inlined calls, an interface call through a promoted method's wrapper, a
// closure, a goroutine, reflect), lists the frames runtime.Callers lists,
// once symbolized.
func TestCallersMatchesRuntime(t *testing.T) {
	var m methoder = embedder{}
	cases := map[string]func() ([]string, []string){
		"direct":    both,
		"inlined":   inlined,
		"interface": m.method,
		"closure":   func() ([]string, []string) { return m.method() },
		"reflect": func() ([]string, []string) {
			out := reflect.ValueOf(notInlined).Call(nil)
			return out[0].Interface().([]string), out[1].Interface().([]string)
		},
		"goroutine": func() (fp, rt []string) {
			done := make(chan struct{})
			go func() { defer close(done); fp, rt = notInlined() }()
			<-done
			return fp, rt
		},
	}
	for name, call := range cases {
		t.Run(name, func(t *testing.T) {
			fp, rt := call()
			if len(rt) < 3 {
				t.Fatalf("runtime.Callers listed %v: too few to compare", rt)
			}
			if !slices.Equal(fp, rt) {
				t.Errorf("Callers listed\n  %s\nruntime.Callers listed\n  %s", strings.Join(fp, "\n  "), strings.Join(rt, "\n  "))
			}
		})
	}
}

// TestCallersBounded checks that Callers fills no more than the buffer, and
// that a short buffer gets the innermost frames.
func TestCallersBounded(t *testing.T) {
	var pcs [2]uintptr
	if n := Callers(pcs[:]); n != 2 {
		t.Fatalf("Callers filled %d of 2", n)
	}
	if got := functions(pcs[:1]); len(got) == 0 || !strings.HasSuffix(got[0], "testing.tRunner") {
		t.Errorf("first frame %v, want testing.tRunner (the test's caller)", got)
	}
	if n := Callers(nil); n != 0 {
		t.Errorf("Callers(nil) = %d", n)
	}
}

// TestCallersNamesGoStatement checks the one difference from runtime.Callers:
// the wrapper a go statement runs is listed, with the go statement's line.
func TestCallersNamesGoStatement(t *testing.T) {
	frames := make(chan []runtime.Frame, 1)
	collect := func(pcs []uintptr) {
		var out []runtime.Frame
		fs := runtime.CallersFrames(pcs)
		for {
			f, more := fs.Next()
			out = append(out, f)
			if !more {
				break
			}
		}
		frames <- out
	}
	capture := func(k int) {
		var pcs [8]uintptr
		collect(pcs[:Callers(pcs[:])])
	}
	go capture(1)
	line := thisLine() - 1
	var found bool
	for _, f := range <-frames {
		if strings.Contains(f.Function, "gowrap") && f.Line == line {
			found = true
		}
	}
	if !found {
		t.Errorf("no frame of the go statement at line %d", line)
	}
}

func thisLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

// isGoWrapper reports whether f is the function a go statement runs, which
// Callers lists and runtime.Callers leaves out.
func isGoWrapper(f runtime.Frame) bool {
	return strings.Contains(f.Function[strings.LastIndexByte(f.Function, '.')+1:], "gowrap")
}

// callerFrames captures the stack above its caller with Callers and tells
// for each frame whether HasCaller finds the caller's code in it.
//
//go:noinline
func callerFrames() []bool {
	var pcs [64]uintptr
	var has []bool
	for _, pc := range pcs[:Callers(pcs[:])] {
		has = append(has, HasCaller(pc))
	}
	return has
}

// inlinedCallerFrames is inlined into its caller.
func inlinedCallerFrames() []bool { return callerFrames() }

// TestHasCaller checks HasCaller on a test's frames (the caller's code),
// directly and through a function inlined into the test (a frame of its own
// when built with -l), and on testing's and the runtime's frames above them
// (not the caller's), twice: the second time from the cache.
func TestHasCaller(t *testing.T) {
	for range 2 {
		for name, has := range map[string][]bool{"direct": callerFrames(), "inlined": inlinedCallerFrames()} {
			callers := slices.Index(has, false) // the test's frames come first
			if len(has) < 3 || callers < 1 || callers > 2 || slices.Contains(has[callers:], true) {
				t.Errorf("%s: HasCaller per frame %v, want the test's frames first and no other", name, has)
			}
		}
	}
	if HasCaller(0) {
		t.Error("HasCaller(0) = true")
	}
}

var sink int

func BenchmarkCallers(b *testing.B) {
	var pcs [32]uintptr
	for range b.N {
		sink += Callers(pcs[:])
	}
}

func BenchmarkRuntimeCallers(b *testing.B) {
	var pcs [32]uintptr
	for range b.N {
		sink += runtime.Callers(2, pcs[:])
	}
}

// firstHasCaller is what HasCaller says of the first frame above
// firstHasCaller's caller.
var firstHasCaller bool

// firstEntry is the entry of the function whose frame is the first above
// capturingPredicate's: the test's when slices.IndexFunc was inlined into it.
var firstEntry uintptr

// capturingPredicate is never inlined: the frame above it is the one that
// called it.
//
//go:noinline
func capturingPredicate(int) bool {
	var pcs [1]uintptr
	firstHasCaller = Callers(pcs[:]) == 1 && HasCaller(pcs[0])
	firstEntry = runtime.FuncForPC(pcs[0] - 1).Entry()
	return true
}

// TestHasCallerBehindInlinedLibrary checks HasCaller on a frame whose
// innermost function is not the caller's code but was inlined into the
// caller's: slices.IndexFunc, inlined into the test, calls the predicate.
func TestHasCallerBehindInlinedLibrary(t *testing.T) {
	firstHasCaller = false
	if slices.IndexFunc([]int{1}, capturingPredicate) != 0 {
		t.Fatal("the predicate said false")
	}
	if firstEntry != reflect.ValueOf(TestHasCallerBehindInlinedLibrary).Pointer() {
		t.Skip("slices.IndexFunc was not inlined into the test (a build with -l)")
	}
	if !firstHasCaller {
		t.Error("the test's frame, with slices.IndexFunc inlined into it, is not found to be the caller's")
	}
}
