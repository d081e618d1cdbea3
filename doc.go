// Package redisleak makes Redis connection leaks visible and connection limits
// real for services built on go-redis.
//
// The work is done by two packages: [github.com/redisleak/redisleak/pool]
// provides NewClient, a drop-in replacement for redis.NewClient that tracks
// every connection checkout and enforces a hard cap on sockets, and
// [github.com/redisleak/redisleak/tracker] records checkouts and reports the
// outstanding ones grouped by call site. This package is where test helpers
// that inspect every tracker live.
package redisleak
