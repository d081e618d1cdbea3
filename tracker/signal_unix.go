//go:build unix

package tracker

import (
	"os"
	"os/signal"
	"syscall"
)

// startSignalDump starts a goroutine that writes Dump to stderr on every
// SIGUSR1, and returns the function that stops it and waits for it to end.
func startSignalDump() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ch:
				Dump(os.Stderr)
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
