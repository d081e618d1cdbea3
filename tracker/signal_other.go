//go:build !unix

package tracker

// startSignalDump does nothing where the system has no SIGUSR1.
func startSignalDump() (stop func()) { return func() {} }
