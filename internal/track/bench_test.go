package track

import (
	"context"
	"testing"
)

// BenchmarkCheckoutRelease is the cost every command pays: a KindCommand
// checkout and release under the default capture, which records no stack.
func BenchmarkCheckoutRelease(b *testing.B) {
	s := newTestEngine(captureLongLived, nil).NewScope("bench")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Checkout(ctx, KindCommand, "GET", 0).Release()
		}
	})
}

// BenchmarkCheckoutReleaseStack is the same under CaptureAll, which records
// the caller's stack for every command.
func BenchmarkCheckoutReleaseStack(b *testing.B) {
	s := newTestEngine(captureAll, nil).NewScope("bench")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Checkout(ctx, KindCommand, "GET", 0).Release()
		}
	})
}

func TestCheckoutReleaseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race sync.Pool drops items at random, so checkouts allocate")
	}
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation")
	}
	// Long-lived checkouts are also added to the pprof profile, which
	// allocates; they are rare next to commands, which must not.
	for _, c := range []struct {
		name    string
		capture bool
		kind    Kind
		ctx     context.Context
	}{
		{"command", captureLongLived, KindCommand, context.Background()},
		{"command/labelled", captureLongLived, KindCommand, WithLabel(context.Background(), "req-1")},
		{"command/CaptureAll", captureAll, KindCommand, context.Background()},
		{"pipeline/CaptureAll", captureAll, KindPipeline, context.Background()},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newTestEngine(c.capture, nil).NewScope("allocs")
			for range 100 { // warm the record pool
				s.Checkout(c.ctx, c.kind, "GET", 0).Release()
			}
			// A GC during the run moves the pool to its victim cache, where
			// Get still finds it; and AllocsPerRun divides in integers, so
			// even the odd refill after two GCs in a row still reads 0.
			allocs := testing.AllocsPerRun(1000, func() {
				if !s.Checkout(c.ctx, c.kind, "GET", 0).Release() {
					t.Fatal("Release = false")
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per checkout and release, want 0", allocs)
			}
		})
	}
}
