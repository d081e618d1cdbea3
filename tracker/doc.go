// Package tracker is a concurrent registry of checkouts: anything that holds a
// connection (a command in flight, a dedicated connection, a Pub/Sub, a client)
// is checked out with the stack of its caller and released when it is done.
// What is still checked out can be reported at any time, grouped by call site.
//
// The package knows nothing about Redis: the pool package adapts go-redis
// events into checkouts, and the redisleak package asks trackers for reports.
//
// What callers use: a [Tracker] ([New], [Default], [All]) given to clients
// with pool.WithTracker, its [Tracker.Report], [Tracker.Stats] and
// [Tracker.Checkouts], the [Report] and its [Group]s, [Handler], [Dump],
// [WithLabel] and the options. The library's clients feed trackers through
// an internal package, which holds the registry itself.
//
// Cost model. A checkout takes a pooled record and links it into one of many
// shards, so the common path takes no allocation and no global lock. Stacks
// are captured as program counters (on amd64 by following frame pointers, a
// few nanoseconds for a whole stack) and symbolized only when a report is
// made.
// Short-lived kinds (commands and pipelines) skip the stack capture unless the
// tracker captures everything (see [WithCapture]); long-lived kinds always
// capture, because those are the leaks worth a stack.
package tracker
