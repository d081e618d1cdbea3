package tracker

import (
	"fmt"
	"io"

	"github.com/redisleak/redisleak/internal/signaldump"
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

// HoldSignalDump makes a SIGUSR1 write [Dump] to stderr until every caller
// has called the release function it returned (each exactly once; later calls
// do nothing). On systems without SIGUSR1 it does nothing.
//
// Deprecated: the library's clients hold the dump themselves in debug mode
// (see [Debug]); HoldSignalDump is removed in the next release.
func HoldSignalDump() (release func()) { return signaldump.Hold(Dump) }
