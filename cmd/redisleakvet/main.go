// Command redisleakvet reports go-redis and redisleak handles (dedicated
// connections, Pub/Subs, clients) that a function opens and does not close on
// every path: the leaks that redisleak's runtime tracking finds in
// production, found at build time instead.
//
// Install it, then run it alone or through go vet:
//
//	go install github.com/redisleak/redisleak/cmd/redisleakvet@latest
//	redisleakvet ./...
//	go vet -vettool=$(which redisleakvet) ./...
//
// Each finding names the handle, the line that opened it, and the path that
// leaves it open:
//
//	handler.go:38:8: *redis.Conn from Client.Conn is not closed when err != nil at handler.go:42
//
// A //redisleak:ignore comment on the line of the open, or the line before,
// silences one finding. See the leakcheck package for what counts as an
// open, a close and an escape, and this directory's README for the measured
// recall and precision.
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/redisleak/redisleak/cmd/redisleakvet/leakcheck"
)

func main() { singlechecker.Main(leakcheck.Analyzer) }
