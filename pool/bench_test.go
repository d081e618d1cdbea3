package pool_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// The client-side concurrency and pool size every BenchmarkGet variant runs
// with, so that the variants compare like for like.
const (
	benchGoroutines = 64
	benchPoolSize   = 64
)

const (
	benchKey   = "redisleak:bench:key"
	benchValue = "0123456789abcdef0123456789abcdef" // 32 bytes
)

// benchVariant builds one client under test. It returns the go-redis client
// the commands go through, the tracker (nil for the bare client) and a close
// function that fails the benchmark on a close error, a leak report included.
type benchVariant struct {
	name string
	open func(b *testing.B, opt *redis.Options) (*redis.Client, *tracker.Tracker, func())
}

func bareVariant() benchVariant {
	return benchVariant{"bare", func(b *testing.B, opt *redis.Options) (*redis.Client, *tracker.Tracker, func()) {
		rc := redis.NewClient(opt)
		return rc, nil, func() {
			if err := rc.Close(); err != nil {
				b.Errorf("Close: %v", err)
			}
		}
	}}
}

func trackedVariant(name string, newTracker func() *tracker.Tracker, opts ...pool.Option) benchVariant {
	return benchVariant{name, func(b *testing.B, opt *redis.Options) (*redis.Client, *tracker.Tracker, func()) {
		tr := newTracker()
		c, err := pool.NewClient(opt, append([]pool.Option{pool.WithTracker(tr)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return c.Client, tr, func() {
			if err := c.Close(); err != nil {
				b.Errorf("Close: %v", err)
			}
		}
	}}
}

// benchVariants are the clients BenchmarkGet compares: plain go-redis, the
// tracked client with its defaults, with every command's stack captured, and
// with a cap above the pool size.
func benchVariants() []benchVariant {
	return []benchVariant{
		bareVariant(),
		trackedVariant("tracked", func() *tracker.Tracker { return tracker.New() }),
		trackedVariant("tracked-capture-all", func() *tracker.Tracker {
			return tracker.New(tracker.WithCapture(tracker.CaptureAll))
		}),
		trackedVariant("capped-not-bottleneck", func() *tracker.Tracker { return tracker.New() },
			pool.WithMaxConnections(2*benchPoolSize)),
	}
}

// benchParallelism is the b.SetParallelism argument that runs about
// benchGoroutines goroutines (exactly that many when GOMAXPROCS divides it).
func benchParallelism() int {
	procs := runtime.GOMAXPROCS(0)
	return max(1, (benchGoroutines+procs-1)/procs)
}

// reportThroughput adds an ops/s metric: b.N over the measured time.
func reportThroughput(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkGet measures GET of an existing key from 64 goroutines against a
// real redis-server, with a pool of 64 connections, for a plain go-redis
// client and for the tracked variants. Run it with -benchmem (or read the
// allocs/op it reports anyway) to compare allocations per command.
func BenchmarkGet(b *testing.B) {
	srv := testserver.Redis(b)
	ctx := context.Background()
	if err := srv.Admin().Set(ctx, benchKey, benchValue, 0).Err(); err != nil {
		b.Fatal(err)
	}
	for _, v := range benchVariants() {
		b.Run(v.name, func(b *testing.B) {
			opt := &redis.Options{
				Addr:     srv.Addr(),
				PoolSize: benchPoolSize,
				// redis 7.0 does not know CLIENT SETINFO; skip it on
				// every variant so connection setup is the same.
				DisableIdentity: true,
			}
			rc, tr, closeClient := v.open(b, opt)
			defer closeClient()
			warmPool(ctx, b, rc, benchPoolSize)
			var before tracker.Stats
			if tr != nil {
				before = tr.Stats()
			}

			b.ReportAllocs()
			b.SetParallelism(benchParallelism())
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					got, err := rc.Get(ctx, benchKey).Result()
					if err != nil || got != benchValue {
						b.Errorf("GET = %q, %v; want %q", got, err, benchValue)
						return
					}
				}
			})
			b.StopTimer()
			reportThroughput(b)

			if tr != nil {
				after := tr.Stats()
				if n := after.Checkouts - before.Checkouts; n < uint64(b.N) {
					b.Errorf("tracker saw %d checkouts for %d commands", n, b.N)
				}
				if after.Outstanding != 0 {
					b.Errorf("%d checkouts outstanding after the run", after.Outstanding)
				}
			}
		})
	}
}

// warmPool opens n pooled connections before the timer starts, so that no
// variant pays for dials in the measured loop: it holds n dedicated
// connections at once, runs a command on each, and returns them to the pool.
func warmPool(ctx context.Context, b *testing.B, rc *redis.Client, n int) {
	b.Helper()
	conns := make([]*redis.Conn, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range conns {
		conns[i] = rc.Conn()
		wg.Go(func() { errs[i] = conns[i].Ping(ctx).Err() })
	}
	wg.Wait()
	for i, cn := range conns {
		if errs[i] != nil {
			b.Fatalf("warming the pool: %v", errs[i])
		}
		if err := cn.Close(); err != nil {
			b.Fatalf("warming the pool: %v", err)
		}
	}
	if got := rc.PoolStats().TotalConns; got != uint32(n) {
		b.Fatalf("pool holds %d connections after warm-up, want %d", got, n)
	}
}

// shortCircuit is a hook that ends every command and pipeline without
// calling the next hook, so no connection is ever taken or dialed. Added last,
// it runs inside every hook added before it, the tracking hook included.
type shortCircuit struct{}

func (shortCircuit) DialHook(next redis.DialHook) redis.DialHook { return next }

func (shortCircuit) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(context.Context, redis.Cmder) error { return nil }
}

func (shortCircuit) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(context.Context, []redis.Cmder) error { return nil }
}

// BenchmarkHook measures what the tracking hook adds to a command without the
// network: Get through go-redis with a final hook that short-circuits, so the
// only difference between the variants is the pool's hook (its checkout and
// release in the tracker). The target is zero extra allocations per command.
// The deadline mode runs each command with a context that has a deadline, for
// which the hook allocates the wrapper that tells a deadline passed waiting
// for a socket from one passed later (see pool/wait.go).
func BenchmarkHook(b *testing.B) {
	variants := []benchVariant{
		bareVariant(),
		trackedVariant("tracked", func() *tracker.Tracker { return tracker.New() }),
		trackedVariant("tracked-capture-all", func() *tracker.Tracker {
			return tracker.New(tracker.WithCapture(tracker.CaptureAll))
		}),
	}
	for _, mode := range []string{"serial", "parallel", "deadline"} {
		ctx := context.Background()
		if mode == "deadline" {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Hour)
			defer cancel()
		}
		for _, v := range variants {
			b.Run(mode+"/"+v.name, func(b *testing.B) {
				// The address is never dialed: the short-circuit ends every
				// command before it takes a connection.
				rc, tr, closeClient := v.open(b, &redis.Options{Addr: "127.0.0.1:1", PoolSize: benchPoolSize})
				defer closeClient()
				rc.AddHook(shortCircuit{})
				for range 1000 { // warm the tracker's record pool
					_ = rc.Get(ctx, "k")
				}
				var before tracker.Stats
				if tr != nil {
					before = tr.Stats()
				}

				b.ReportAllocs()
				b.ResetTimer()
				if mode != "parallel" {
					for range b.N {
						_ = rc.Get(ctx, "k")
					}
				} else {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							_ = rc.Get(ctx, "k")
						}
					})
				}
				b.StopTimer()

				if tr != nil {
					after := tr.Stats()
					if n := after.Checkouts - before.Checkouts; n < uint64(b.N) {
						b.Errorf("tracker saw %d checkouts for %d commands: the tracking hook did not run", n, b.N)
					}
				}
				if got := rc.PoolStats().TotalConns; got != 0 {
					b.Errorf("%d connections opened; the short-circuit hook should end every command first", got)
				}
			})
		}
	}
}

// BenchmarkConnCreate measures what the tracked client adds to creating and
// closing a dedicated Conn, without the network (no command runs, so no
// socket is taken): the checkout with its stack, the cleanup that reports a
// dropped Conn, and the hooks that name its socket; under CaptureAll, also
// the Conn's entry in its pprof profile.
func BenchmarkConnCreate(b *testing.B) {
	opt := &redis.Options{Addr: "127.0.0.1:1"} // never dialed
	b.Run("bare", func(b *testing.B) {
		rc := redis.NewClient(opt)
		defer rc.Close()
		b.ReportAllocs()
		for range b.N {
			_ = rc.Conn().Close()
		}
	})
	for _, v := range []struct {
		name    string
		capture tracker.Capture
	}{{"tracked", tracker.CaptureLongLived}, {"tracked-capture-all", tracker.CaptureAll}} {
		b.Run(v.name, func(b *testing.B) {
			c, err := pool.NewClient(opt, pool.WithTracker(tracker.New(tracker.WithCapture(v.capture))))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			for range b.N {
				_ = c.Conn().Close()
			}
		})
	}
}
