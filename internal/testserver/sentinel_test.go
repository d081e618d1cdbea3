package testserver

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// TestSentinel starts a sentinel setup, checks what the sentinels see, fails
// the master over and back, checking a go-redis failover client follows;
// and that no process or goroutine is left afterwards.
func TestSentinel(t *testing.T) {
	// Registered first so it runs last, after every cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	var pids []int
	t.Run("sentinel", func(t *testing.T) {
		start := time.Now()
		sn := Sentinel(t)
		t.Logf("Sentinel started in %v", time.Since(start).Round(time.Millisecond))
		pids = pidsOf(t, sn.servers())

		addrs, sentinels := sn.Addrs(), sn.SentinelAddrs()
		if len(addrs) != 2 || len(sentinels) != 3 || len(slices.Compact(slices.Sorted(slices.Values(sentinels)))) != 3 {
			t.Fatalf("Addrs %v, SentinelAddrs %v; want 2 data nodes and 3 distinct sentinels", addrs, sentinels)
		}
		if got := sn.Master(t); got != addrs[0] {
			t.Errorf("Master = %s, want %s", got, addrs[0])
		}
		if got := sn.Replicas(t); !slices.Equal(got, addrs[1:]) {
			t.Errorf("Replicas = %v, want %v", got, addrs[1:])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i, s := range sn.Sentinels() {
			if s.Addr() != sentinels[i] || sn.Node(s.Addr()) != s {
				t.Errorf("sentinel %d: Addr %s, Node %p; want %s, %p", i, s.Addr(), sn.Node(s.Addr()), sentinels[i], s)
			}
			cmd := redis.NewMapStringStringCmd(ctx, "SENTINEL", "MASTER", sn.MasterName())
			if err := s.Admin().Process(ctx, cmd); err != nil {
				t.Fatal(err)
			}
			if m := cmd.Val(); m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" || m["quorum"] != "2" {
				t.Errorf("sentinel %s: %s replicas, %s other sentinels, quorum %s; want 1, 2, 2", s.Addr(), m["num-slaves"], m["num-other-sentinels"], m["quorum"])
			}
		}

		const name = "testserver-sentinel"
		newClient := func() *redis.Client {
			return redis.NewFailoverClient(&redis.FailoverOptions{
				MasterName:    sn.MasterName(),
				SentinelAddrs: sentinels,
				ClientName:    name,
			})
		}
		fc := newClient()
		defer fc.Close()
		if err := fc.Set(ctx, "k", "v0", 0).Err(); err != nil {
			t.Fatalf("SET through the failover client: %v", err)
		}
		// The client's socket on the master is listed; no server lists
		// the admin connection, a replication link or a sentinel's.
		byNode := sn.ClientsByNode(t)
		if n := countNamed(byNode[addrs[0]], name); n == 0 {
			t.Errorf("the master lists no socket of the client: %+v", byNode[addrs[0]])
		}
		if len(byNode) != 5 {
			t.Errorf("ClientsByNode has %d servers, want 5", len(byNode))
		}
		for addr, clients := range byNode {
			for _, ci := range clients {
				if ci.Name == AdminClientName || serverLink(ci) {
					t.Errorf("ClientsByNode lists %+v on %s", ci, addr)
				}
			}
		}

		for i, want := range []string{addrs[1], addrs[0]} {
			start := time.Now()
			newMaster := sn.Failover(t)
			t.Logf("Failover %d to %s took %v", i+1, newMaster, time.Since(start).Round(time.Millisecond))
			if newMaster != want {
				t.Fatalf("Failover %d = %s, want %s", i+1, newMaster, want)
			}
			if got := sn.Master(t); got != want {
				t.Errorf("Master after failover %d = %s, want %s", i+1, got, want)
			}
			if got, wantReplicas := sn.Replicas(t), slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == want }); !slices.Equal(got, wantReplicas) {
				t.Errorf("Replicas after failover %d = %v, want %v", i+1, got, wantReplicas)
			}
			val := "v" + strconv.Itoa(i+1)
			// The client switches on the sentinels' +switch-master; a
			// command may fail on the old master until it has.
			deadline := time.Now().Add(5 * time.Second)
			for {
				err := fc.Set(ctx, "k", val, 0).Err()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("SET through the failover client 5s after failover %d: %v", i+1, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			fresh := newClient()
			got, err := fresh.Get(ctx, "k").Result()
			_ = fresh.Close()
			if err != nil || got != val {
				t.Errorf("GET through a new failover client after failover %d = %q, %v; want %q", i+1, got, err, val)
			}
			if got, err := sn.Node(want).Admin().Get(ctx, "k").Result(); err != nil || got != val {
				t.Errorf("GET on the new master %s = %q, %v; want %q", want, got, err, val)
			}
		}

		if err := fc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		waitClients(t, func() bool {
			for _, clients := range sn.ClientsByNode(t) {
				if countNamed(clients, name) != 0 {
					return false
				}
			}
			return true
		})
	})
	if !t.Failed() && len(pids) != 5 {
		t.Fatalf("recorded %d PIDs, want 5", len(pids))
	}
	processesGone(t, pids)
}
