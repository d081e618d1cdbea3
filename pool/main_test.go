package pool_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// goRedisOwnLeaks are goroutines go-redis itself leaves behind, which no
// Close of go-redis's or the library's can end: a test that makes them
// checks that nothing else remains and adds them here.
var goRedisOwnLeaks []goleak.Option

// TestMain fails the package if any goroutine of the library outlives the
// tests: every client in them is closed, so nothing may be left running.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goRedisOwnLeaks...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
