package pool_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// TestFailover: a failover client's data sockets stay under its cap on every
// address through SENTINEL FAILOVER; its sentinel sockets are counted apart,
// under their own cap per sentinel, and never take a data slot: under a cap
// of 1 the one data socket still serves commands.
func TestFailover(t *testing.T) {
	sn := testserver.Sentinel(t)
	// A dial go-redis's pool started before Close (a failover client's dial
	// asks a sentinel for the master first) retries, refused, with go-redis's
	// backoff for about a second and a half after Close: bare go-redis does
	// the same when a dial fails then. Nothing of the library's may remain.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		for end := time.Now().Add(5 * time.Second); goleak.Find(ignore) != nil && time.Now().Before(end); {
			time.Sleep(100 * time.Millisecond)
		}
		goleak.VerifyNone(t, ignore)
	})
	ctx := context.Background()
	for _, capacity := range []int{1, 3} {
		t.Run("cap"+strconv.Itoa(capacity), func(t *testing.T) {
			name := "failover" + strconv.Itoa(capacity)
			c, err := pool.NewFailoverClient(&redis.FailoverOptions{
				MasterName:    sn.MasterName(),
				SentinelAddrs: sn.SentinelAddrs(),
				ClientName:    name,
				PoolTimeout:   2 * time.Second,
			}, pool.WithTracker(tracker.New()), pool.WithMaxConnections(capacity))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Set(ctx, "f", 1, time.Minute).Err(); err != nil {
				t.Fatalf("SET under a cap of %d: %v", capacity, err)
			}
			if s := c.Stats(); s.SentinelConnections == 0 || s.SlotsHeld() > capacity {
				t.Errorf("Stats: %d sentinel sockets, %d data slots held; want sentinel sockets counted apart, at most %d data slots", s.SentinelConnections, s.SlotsHeld(), capacity)
			}

			quit := make(chan struct{})
			addrs := append([]string{sn.Master(t)}, sn.Replicas(t)...)
			over := make(chan string, 1)
			go func() {
				for !isClosed(quit) {
					for _, addr := range addrs {
						r, _, err := readNode(ctx, addr, sn.Node(addr).Admin(), name)
						if err == nil && r.named > capacity {
							select {
							case over <- addr + ": " + strconv.Itoa(r.named):
							default:
							}
						}
					}
				}
			}()
			run := clusterLoad{workers: 20}.start(c)
			time.Sleep(500 * time.Millisecond)
			newMaster := sn.Failover(t)
			waitFor(t, "a write on the new master", func() bool {
				return c.Set(ctx, "f", 2, time.Minute).Err() == nil && c.Stats().SlotsHeld() <= capacity
			})
			time.Sleep(500 * time.Millisecond)
			run.stop()
			close(quit)
			t.Logf("cap %d: failover to %s; %d commands ok, %d failed; first error %s", capacity, newMaster, run.ok.Load(), run.fail.Load(), deref(run.firstErr.Load()))
			select {
			case s := <-over:
				t.Errorf("a data node listed more of the client's sockets than the cap of %d: %s", capacity, s)
			default:
			}
			for _, s := range sn.Sentinels() {
				if n := len(namedClients(t, s, name)); n > capacity {
					t.Errorf("sentinel %s lists %d of the client's sockets, above its cap of %d", s.Addr(), n, capacity)
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
