package pool_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine of the library outlives the
// tests: every client in them is closed, so nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
