package pool_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
)

// TestRefusalOvershoot measures how late callers refused a socket return
// past their deadline, with many waiting at once, for bare go-redis (its pool
// full) and for the client (its cap full). It publishes figures and asserts
// none: run it with REDISLEAK_SOAK set, e.g.
//
//	REDISLEAK_SOAK=1 go test -run TestRefusalOvershoot -v ./pool/
func TestRefusalOvershoot(t *testing.T) {
	if os.Getenv("REDISLEAK_SOAK") == "" {
		t.Skip("a measurement, not a check: set REDISLEAK_SOAK to run it")
	}
	srv := testserver.Redis(t)
	const deadline = 300 * time.Millisecond
	for _, waiters := range []int{200, 1000, 3000} {
		opt := testOptions(srv.Addr())
		opt.PoolSize = 1
		opt.PoolTimeout = time.Minute // the callers' deadline ends every wait
		bare := redis.NewClient(opt)
		c := claimClient(t, opt, nil, pool.WithMaxConnections(1))
		for _, tc := range []struct {
			name string
			rc   redis.UniversalClient
			conn func() interface{ Close() error }
		}{
			{"bare go-redis", bare, func() interface{ Close() error } { return holdConn(t, bare.Conn()) }},
			{"pool.NewClient", c, func() interface{ Close() error } { return holdConn(t, c.Conn()) }},
		} {
			held := tc.conn()
			med, p99, worst := overshoot(tc.rc, waiters, deadline)
			_ = held.Close()
			t.Logf("%5d waiters, %-15s overshoot past a %s deadline: median %s, p99 %s, max %s", waiters, tc.name, deadline, med, p99, worst)
		}
		_ = bare.Close()
		_ = c.Close()
	}
}

// holdConn takes the only socket with cn.
func holdConn[C interface {
	Ping(context.Context) *redis.StatusCmd
	Close() error
}](t *testing.T, cn C) C {
	if err := cn.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	return cn
}

// overshoot runs n callers at once, each with a deadline d from a common
// start, and returns how late past it they returned: median, p99 and max.
func overshoot(rc redis.UniversalClient, n int, d time.Duration) (med, p99, worst time.Duration) {
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(d))
	defer cancel()
	late := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_ = rc.Get(ctx, "k").Err()
			late[i] = time.Since(start) - d
		})
	}
	wg.Wait()
	slices.Sort(late)
	return late[n/2], late[n*99/100], late[n-1]
}
