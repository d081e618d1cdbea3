package stack

import (
	"runtime"
	"testing"
)

func TestPackagePath(t *testing.T) {
	cases := map[string]string{
		"github.com/redis/go-redis/v9.(*Client).Get":         "github.com/redis/go-redis/v9",
		"github.com/redisleak/redisleak/pool.(*Client).Conn": "github.com/redisleak/redisleak/pool",
		"main.main.func1": "main",
		"github.com/redisleak/redisleak_test.TestLeak":          "github.com/redisleak/redisleak_test",
		"github.com/redisleak/redisleak/examples/leakdemo.main": "github.com/redisleak/redisleak/examples/leakdemo",
		"noDot": "noDot",
	}
	for in, want := range cases {
		if got := PackagePath(in); got != want {
			t.Errorf("PackagePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsLibrary(t *testing.T) {
	cases := []struct {
		fn, file string
		want     bool
	}{
		{"github.com/redis/go-redis/v9.(*Client).Get", "/m/go-redis/string_commands.go", true},
		{"github.com/redisleak/redisleak/pool.(*Client).Conn", "/r/pool/client.go", true},
		{"github.com/redisleak/redisleak/pool.TestConn", "/r/pool/client_test.go", false},
		{"github.com/redisleak/redisleak_test.TestLeak", "/r/pool_test.go", false},
		{"github.com/redisleak/redisleak/examples/leakdemo.leak", "/r/examples/leakdemo/main.go", false},
		{"main.main", "/app/main.go", false},
		{"golang.org/x/sync/semaphore.(*Weighted).Acquire", "/m/semaphore.go", true},
	}
	for _, c := range cases {
		if got := IsLibrary(c.fn, c.file); got != c.want {
			t.Errorf("IsLibrary(%q, %q) = %v, want %v", c.fn, c.file, got, c.want)
		}
	}
}

func capture() []uintptr {
	pcs := make([]uintptr, 32)
	return pcs[:runtime.Callers(1, pcs)]
}

func TestFramesStartAtCaller(t *testing.T) {
	frames := Frames(capture(), 0)
	if len(frames) == 0 {
		t.Fatal("no frames")
	}
	// capture lives in a _test.go file, so it is user code and comes first.
	if got := frames[0].Function; got != "github.com/redisleak/redisleak/internal/stack.capture" {
		t.Fatalf("first frame %q, want capture", got)
	}
	for _, f := range frames {
		if IsRuntime(f.Function) {
			t.Errorf("runtime frame kept: %s", f.Function)
		}
	}
}

func TestFramesEmpty(t *testing.T) {
	if Frames(nil, 0) != nil {
		t.Fatal("want nil for no pcs")
	}
}

func TestIsRuntime(t *testing.T) {
	cases := map[string]bool{
		"runtime.goexit":                     true,
		"runtime.Callers":                    true,
		"internal/runtime/atomic.Load":       true,
		"runtime/debug.Stack":                false, // another package, not "runtime."
		"main.runtime":                       false,
		"github.com/x/runtime.Foo":           false,
		"github.com/redisleak/redisleak.New": false,
	}
	for fn, want := range cases {
		if got := IsRuntime(fn); got != want {
			t.Errorf("IsRuntime(%q) = %v, want %v", fn, got, want)
		}
	}
}

func TestFramesTrimsOnlyLeadingLibraryFrames(t *testing.T) {
	// The frames of this test are user code, so none is trimmed, and the
	// testing package below is kept too: only leading frames are trimmed.
	frames := Frames(capture(), 0)
	var sawTesting bool
	for _, f := range frames {
		if f.Function == "testing.tRunner" {
			sawTesting = true
		}
	}
	if len(frames) < 3 || !sawTesting {
		t.Fatalf("frames %v, want capture, the test and testing.tRunner", frames)
	}
	if got := frames[1].Function; got != "github.com/redisleak/redisleak/internal/stack.TestFramesTrimsOnlyLeadingLibraryFrames" {
		t.Fatalf("second frame %q, want the test", got)
	}
}
