// Package tracker is a concurrent registry of checkouts: anything that holds a
// connection (a command in flight, a dedicated connection, a Pub/Sub, a client)
// is checked out with the stack of its caller and released when it is done.
// What is still checked out can be reported at any time, grouped by call site.
//
// The package knows nothing about Redis: the pool package adapts go-redis
// events into checkouts, and the redisleak package asks trackers for reports.
//
// Cost model. A checkout takes a pooled record and links it into one of many
// shards, so the common path takes no allocation and no global lock. Stacks
// are captured as program counters and symbolized only when a report is made.
// Short-lived kinds (commands and pipelines) skip the stack capture unless the
// tracker captures everything (see [WithCapture]); long-lived kinds always
// capture, because those are the leaks worth a stack.
package tracker
