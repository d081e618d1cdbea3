// Package signaldump runs, while a client of the library in debug mode asks
// for it, a handler that writes every tracker's report to stderr on SIGUSR1.
package signaldump

import (
	"io"
	"sync"
)

// handler runs the SIGUSR1 handler while at least one holder needs it, so
// that no goroutine of the library outlives the last client that asked.
var handler struct {
	mu      sync.Mutex
	holders int
	stop    func() // stops the handler; set while holders > 0
}

// Hold makes a SIGUSR1 write dump(os.Stderr) until every caller has called
// the release function it returned (each exactly once; later calls do
// nothing). The dump of the first hold is the one written. On systems
// without SIGUSR1 it does nothing.
func Hold(dump func(io.Writer)) (release func()) {
	handler.mu.Lock()
	defer handler.mu.Unlock()
	if handler.holders == 0 {
		handler.stop = start(dump)
	}
	handler.holders++
	var once sync.Once
	return func() {
		once.Do(func() {
			handler.mu.Lock()
			defer handler.mu.Unlock()
			handler.holders--
			if handler.holders == 0 {
				handler.stop()
				handler.stop = nil
			}
		})
	}
}
