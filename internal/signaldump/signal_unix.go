//go:build unix

package signaldump

import (
	"io"
	"os"
	"os/signal"
	"syscall"
)

// start starts a goroutine that writes dump to stderr on every SIGUSR1, and
// returns the function that stops it and waits for it to end.
func start(dump func(io.Writer)) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ch:
				dump(os.Stderr)
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
		<-done
	}
}
