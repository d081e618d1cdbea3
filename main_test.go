package redisleak_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests: the library's
// own (Pub/Sub watchers, socket drains) must all end at the client's Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
