package metrics_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: the
// collector starts none, and every client in the tests is closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
