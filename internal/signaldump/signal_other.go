//go:build !unix

package signaldump

import "io"

// start does nothing where the system has no SIGUSR1.
func start(func(io.Writer)) (stop func()) { return func() {} }
