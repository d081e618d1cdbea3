package tracker

import (
	"fmt"
	"io"
	"sync"
)

// Debug reports whether debug mode is on: in a binary built with
// -tags redisleakdebug, or when the environment variable REDISLEAK was
// "debug" at start. In debug mode every checkout records a stack (trackers
// default to [CaptureAll]), clients write their report to stderr at Close,
// and a SIGUSR1 (where the system has it) writes every tracker's report to
// stderr. A release build without the variable pays nothing for it.
func Debug() bool { return debugBuild || envDebug }

// Dump writes the report of every tracker ([All]) to w.
func Dump(w io.Writer) {
	all := All()
	for i, t := range all {
		fmt.Fprintf(w, "redisleak: tracker %d of %d\n%s\n", i+1, len(all), t.Report())
	}
}

// signalDump runs the SIGUSR1 handler while at least one holder needs it, so
// that no goroutine of the library outlives the last client that asked.
var signalDump struct {
	mu      sync.Mutex
	holders int
	stop    func() // stops the handler; set while holders > 0
}

// HoldSignalDump makes a SIGUSR1 write [Dump] to stderr until every caller
// has called the release function it returned (each exactly once; later calls
// do nothing). On systems without SIGUSR1 it does nothing.
//
// It is part of the integration API, which the library's clients (package
// pool) use to feed trackers; see the package documentation.
func HoldSignalDump() (release func()) {
	signalDump.mu.Lock()
	defer signalDump.mu.Unlock()
	if signalDump.holders == 0 {
		signalDump.stop = startSignalDump()
	}
	signalDump.holders++
	var once sync.Once
	return func() {
		once.Do(func() {
			signalDump.mu.Lock()
			defer signalDump.mu.Unlock()
			signalDump.holders--
			if signalDump.holders == 0 {
				signalDump.stop()
				signalDump.stop = nil
			}
		})
	}
}
