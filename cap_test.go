package redisleak_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// sampler counts the server's client connections (the admin's excluded)
// every few milliseconds until stopped, and keeps the largest count.
type sampler struct {
	peak    atomic.Int64
	samples atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

func sample(t *testing.T, srv *testserver.Server) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	admin := srv.Admin()
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			text, err := admin.ClientList(context.Background()).Result()
			if err == nil {
				infos, err := testserver.ParseClientList(text)
				if err == nil {
					n := int64(0)
					for _, ci := range infos {
						if ci.Name != testserver.AdminClientName {
							n++
						}
					}
					s.samples.Add(1)
					if n > s.peak.Load() {
						s.peak.Store(n)
					}
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return s
}

func (s *sampler) finish() (peak, samples int64) {
	close(s.stop)
	<-s.done
	return s.peak.Load(), s.samples.Load()
}

// load is the workload of the cap acceptance test: commands and pipelines
// from many goroutines, subscribers that retry until they get through, and a
// few goroutines holding dedicated connections for a while.
type load struct {
	commands, pipelines atomic.Int64 // succeeded
	cmdRefused          atomic.Int64 // failed with ErrMaxConnections
	subscribed          atomic.Int64 // subscribers that got through
	subRefused          atomic.Int64 // subscribe attempts refused
	refusalText         atomic.Value // one refusal's text
	unexpected          atomic.Value // first unexpected error
}

func (l *load) fail(err error) { l.unexpected.CompareAndSwap(nil, err) }

// runLoad runs the workload against c for d: cmdWorkers command goroutines,
// subscribers subscribing goroutines, and holders goroutines that hold a Conn
// for most of d and then close it, which lets the refused subscribers in.
func runLoad(c redis.UniversalClient, conn func() interface {
	Ping(context.Context) *redis.StatusCmd
	Close() error
}, d time.Duration, cmdWorkers, subscribers, holders int) *load {
	l := &load{}
	ctx := context.Background()
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range cmdWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("key-%d", i)
			for j := 0; time.Now().Before(stop); j++ {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				var err error
				if j%4 == 3 {
					_, err = c.Pipelined(cctx, func(p redis.Pipeliner) error {
						p.Incr(cctx, key)
						p.Get(cctx, key)
						return nil
					})
					if err == nil {
						l.pipelines.Add(1)
					}
				} else {
					err = c.Set(cctx, key, j, 0).Err()
					if err == nil {
						err = c.Get(cctx, key).Err()
					}
					if err == nil {
						l.commands.Add(1)
					}
				}
				cancel()
				switch {
				case err == nil:
				case errors.Is(err, pool.ErrMaxConnections):
					l.cmdRefused.Add(1)
				case errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout):
					// Bare go-redis waits the same way; not a failure.
				default:
					l.fail(fmt.Errorf("command: %w", err))
				}
			}
		}()
	}
	for range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn := conn()
			defer cn.Close()
			for time.Now().Before(stop.Add(-d / 3)) {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := cn.Ping(cctx).Err()
				cancel()
				if err != nil && !errors.Is(err, pool.ErrMaxConnections) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, redis.ErrPoolTimeout) {
					l.fail(fmt.Errorf("conn: %w", err))
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	for i := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Let the commands warm the pool first; then retry until
			// through, and hold the subscription for a while.
			time.Sleep(d / 6)
			for time.Now().Before(stop.Add(10 * time.Second)) {
				ps := c.Subscribe(ctx, fmt.Sprintf("ch-%d", i))
				rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				_, err := ps.Receive(rctx)
				cancel()
				if err == nil {
					l.subscribed.Add(1)
					time.Sleep(d / 6)
					_ = ps.Close()
					return
				}
				_ = ps.Close()
				if errors.Is(err, pool.ErrMaxConnections) {
					l.subRefused.Add(1)
					l.refusalText.CompareAndSwap(nil, err.Error())
				} else if !errors.Is(err, context.DeadlineExceeded) {
					l.fail(fmt.Errorf("subscribe: %w", err))
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return l
}

func TestCapHoldsUnderLoad(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last, once the server is stopped
	srv := testserver.Redis(t)
	const capacity = 5
	const d = 3 * time.Second

	// Bare go-redis under the same load, for the record.
	bare := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: capacity, MaxActiveConns: capacity, PoolTimeout: 500 * time.Millisecond})
	s := sample(t, srv)
	bl := runLoad(bare, func() interface {
		Ping(context.Context) *redis.StatusCmd
		Close() error
	} {
		return bare.Conn()
	}, d, 200, 12, 3)
	barePeak, _ := s.finish()
	_ = bare.Close()
	t.Logf("bare go-redis, PoolSize=MaxActiveConns=%d: server saw up to %d connections (%d commands, %d subscribers through)",
		capacity, barePeak, bl.commands.Load(), bl.subscribed.Load())
	waitClients(t, srv, 0)

	tr := tracker.New()
	c, err := pool.NewClient(&redis.Options{Addr: srv.Addr(), PoolTimeout: 500 * time.Millisecond},
		pool.WithMaxConnections(capacity), pool.WithTracker(tr))
	if err != nil {
		t.Fatal(err)
	}
	s = sample(t, srv)
	l := runLoad(c, func() interface {
		Ping(context.Context) *redis.StatusCmd
		Close() error
	} {
		return c.Conn()
	}, d, 200, 12, 3)
	peak, samples := s.finish()
	t.Logf("redisleak, MaxConnections=%d: server saw up to %d connections in %d samples; %d commands, %d pipelines, %d refused; %d subscribers through, %d refusals",
		capacity, peak, samples, l.commands.Load(), l.pipelines.Load(), l.cmdRefused.Load(), l.subscribed.Load(), l.subRefused.Load())

	if err, _ := l.unexpected.Load().(error); err != nil {
		t.Fatalf("unexpected error under load: %v", err)
	}
	if peak > capacity {
		t.Errorf("server saw %d connections from a client capped at %d", peak, capacity)
	}
	if samples < 100 {
		t.Errorf("only %d samples of CLIENT LIST; the check is too weak", samples)
	}
	if l.commands.Load() == 0 || l.pipelines.Load() == 0 {
		t.Errorf("no command or pipeline got through")
	}
	if got := l.subscribed.Load(); got != 12 {
		t.Errorf("%d of 12 subscribers got through", got)
	}
	if l.subRefused.Load() == 0 {
		t.Errorf("no subscriber was refused: the cap was never full")
	} else if text, _ := l.refusalText.Load().(string); !strings.Contains(text, "held by") || !strings.Contains(text, "conn") || !strings.Contains(text, fmt.Sprintf("of %d sockets open", capacity)) {
		t.Errorf("refusal does not name the cap and the holders:\n%s", text)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if st := c.Stats(); st.OpenConnections != 0 || st.Outstanding != 0 {
		t.Fatalf("after Close: %+v", st)
	}
	if st := tr.Stats(); st.Outstanding != 0 || st.InvalidReleases != 0 {
		t.Fatalf("tracker after Close: %+v", st)
	}
	waitClients(t, srv, 0)
}

// waitClients waits until the server counts want client connections; the
// server notices a closed socket a moment after the client closes it.
func waitClients(t *testing.T, srv *testserver.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := srv.ConnectedClients(t)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server counts %d clients, want %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
