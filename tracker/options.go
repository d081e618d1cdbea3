package tracker

import (
	"os"
	"strings"
	"time"
)

// Capture says which checkouts record the stack of their caller.
type Capture uint8

const (
	// CaptureLongLived, the default, records a stack for every kind except
	// plain commands and pipelines, which record their kind, command name and
	// age only. That keeps the per-command cost to a few tens of nanoseconds
	// while every connection, Pub/Sub, client and blocking command, the
	// checkouts that actually leak, still reports its origin.
	CaptureLongLived Capture = iota
	// CaptureAll records a stack for every checkout, commands included: on
	// amd64, where stacks are taken by following frame pointers, a few tens
	// of nanoseconds more per command (see BENCHMARKS.md), elsewhere a few
	// hundred. It also puts dedicated connections in their pprof profile
	// (see [ProfileName]), about a microsecond more per Conn. It is what
	// debug builds and REDISLEAK=debug turn on.
	CaptureAll
)

// String returns "long-lived" or "all".
func (c Capture) String() string {
	if c == CaptureAll {
		return "all"
	}
	return "long-lived"
}

// Option configures a [Tracker].
type Option func(*config)

type config struct {
	capture Capture
	now     func() time.Time // nil: time.Now, read by the engine's cheaper monotonic clock
}

func defaultConfig() config {
	return config{capture: captureFromEnv()}
}

// WithCapture sets which checkouts record a stack; see [Capture].
func WithCapture(c Capture) Option {
	return func(cfg *config) { cfg.capture = c }
}

// withClock replaces time.Now, for tests of ages.
func withClock(now func() time.Time) Option {
	return func(cfg *config) { cfg.now = now }
}

// HeldTooLong sets, per kind, how long a checkout may be held before it is
// reported; a zero or negative duration turns the check off for that kind.
// Dedicated connections and Pub/Subs live long by design, so
// [DefaultHeldTooLong] leaves them off.
type HeldTooLong map[Kind]time.Duration

// DefaultHeldTooLong is the thresholds a client watches unless told
// otherwise: a command or pipeline held for 10s, a blocking command for 5m.
func DefaultHeldTooLong() HeldTooLong {
	return HeldTooLong{KindCommand: 10 * time.Second, KindPipeline: 10 * time.Second, KindBlocking: 5 * time.Minute}
}

// envDebug is read once, at start, so a service cannot change behaviour
// half-way through by touching its own environment.
var envDebug = strings.EqualFold(os.Getenv("REDISLEAK"), "debug")

func captureFromEnv() Capture {
	if envDebug || debugBuild {
		return CaptureAll
	}
	return CaptureLongLived
}
