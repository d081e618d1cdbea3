package redisleak

import (
	"fmt"
	"os"
)

// TestingM is what [VerifyTestMain] needs of a *testing.M, as goleak's
// TestingM is: the package need not import testing.
type TestingM interface {
	Run() int
}

// VerifyTestMain runs the tests of m, then the function of [Cleanup], if
// any, and then checks, as [Find] does, that no checkout is left outstanding. When the tests passed but something
// leaked, it prints the report on stderr and exits with status 1. Use it as
//
//	func TestMain(m *testing.M) { redisleak.VerifyTestMain(m) }
func VerifyTestMain(m TestingM, opts ...Option) {
	code := m.Run()
	if cleanup := buildConfig(opts).cleanup; cleanup != nil {
		cleanup(code)
	}
	if code == 0 {
		if err := Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "redisleak: leaks found after the tests passed:\n%v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
