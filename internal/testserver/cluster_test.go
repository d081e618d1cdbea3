package testserver

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/goleak"
)

// clusterNodesSample is CLUSTER NODES as printed by redis-server 7.0.15 on
// 127.0.0.1:30001 during a reshard (slot 100 migrating to 30002), with a
// node in handshake and a replica whose master has failed.
const clusterNodesSample = "" +
	"6a80cbd74558b7da7a4aa7d3d2c997c19819dbb3 127.0.0.1:30002@31002 master - 0 1795978469100 2 connected 5461-10922 0-99\n" +
	"dcaf1809650853e2888e609981ee822f8827b9ef 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 100-5460 [100->-6a80cbd74558b7da7a4aa7d3d2c997c19819dbb3]\n" +
	"b5bd36b79a122e25278623265391bfcf26b44d55 127.0.0.1:30006@31006,node6.example slave 6a80cbd74558b7da7a4aa7d3d2c997c19819dbb3 0 1795978469100 2 connected\n" +
	"0c000ec17d816378dd5fb64706bd3cffb9eea95a 127.0.0.1:30003@31003 master,fail - 0 1795978468497 3 disconnected\n" +
	"11c5f0b62cad1ac0cda7151cf8bb5639d8ac7079 127.0.0.1:30004@31004 master - 0 1795978469100 7 connected 10923-16383\n" +
	"1d79babdde9cf0f97b4e6f741526c8c1ba013ae4 127.0.0.1:30005@31005 handshake - 0 0 0 connected\n"

func TestParseClusterNodes(t *testing.T) {
	v, err := parseClusterNodes(clusterNodesSample)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(v), 6; got != want {
		t.Fatalf("%d nodes, want %d:\n%s", got, want, v)
	}
	if got := addrsOf(v.masters()); !slices.Equal(got, []string{"127.0.0.1:30001", "127.0.0.1:30002", "127.0.0.1:30004"}) {
		t.Errorf("masters = %v; want 30001, 30002 and 30004 (30003 failed)", got)
	}
	if r := v.replicasOf("6a80cbd74558b7da7a4aa7d3d2c997c19819dbb3"); len(r) != 1 || r[0].addr != "127.0.0.1:30006" {
		t.Errorf("replicas of 30002 = %+v, want 30006 (hostname stripped)", r)
	}
	self := v.byAddr("127.0.0.1:30001")
	if !self.open || formatSlots(self.slots) != "100-5460" {
		t.Errorf("30001: open %v, slots %s; want open, 100-5460", self.open, formatSlots(self.slots))
	}
	if n := v.byAddr("127.0.0.1:30003"); !n.failed() || n.linkState != "disconnected" {
		t.Errorf("30003 not seen as failed and disconnected: %+v", n)
	}
	if n := v.byAddr("127.0.0.1:30005"); !n.failed() {
		t.Errorf("30005 in handshake not seen as failed: %+v", n)
	}
	for slot, want := range map[int]string{0: "127.0.0.1:30002", 100: "127.0.0.1:30001", 16383: "127.0.0.1:30004"} {
		if got := v.owner(slot); got == nil || got.addr != want {
			t.Errorf("owner of slot %d = %+v, want %s", slot, got, want)
		}
	}
	if err := v.covers(); err != nil {
		t.Errorf("covers: %v", err)
	}
	// The view of another node: no myself flag, same content.
	other, err := parseClusterNodes(strings.Replace(clusterNodesSample, "myself,master", "master", 1))
	if err != nil || other.String() != v.String() {
		t.Errorf("views differing only by myself compare unequal:\n%s\n%s", v, other)
	}

	lost, _ := parseClusterNodes(strings.Replace(clusterNodesSample, " 10923-16383", " 10923-16382", 1))
	if err := lost.covers(); err == nil || !strings.Contains(err.Error(), "slot 16383") {
		t.Errorf("covers with slot 16383 unserved: %v", err)
	}
	for _, bad := range []string{"abc 127.0.0.1:1@2 master", "abc 127.0.0.1:1@2 master - 0 0 1 connected 9-x", "abc 127.0.0.1:1@2 master - 0 0 1 connected 9-3"} {
		if _, err := parseClusterNodes(bad); err == nil {
			t.Errorf("parseClusterNodes(%q) succeeded", bad)
		}
	}
}

func TestServerLink(t *testing.T) {
	for _, tc := range []struct {
		c    ClientInfo
		want bool
	}{
		{ClientInfo{Flags: "S"}, true},
		{ClientInfo{Flags: "M"}, true},
		{ClientInfo{Name: "sentinel-5241c86b-cmd", Flags: "N"}, true},
		{ClientInfo{Name: "sentinel-5241c86b-pubsub", Flags: "P"}, true},
		{ClientInfo{Flags: "N", Cmd: "restore-asking"}, true},
		{ClientInfo{Flags: "N", Cmd: "get"}, false},
		{ClientInfo{Name: "sentinel-client", Flags: "N"}, false},
		{ClientInfo{Flags: "P", Cmd: "subscribe"}, false},
	} {
		if got := serverLink(tc.c); got != tc.want {
			t.Errorf("serverLink(%+v) = %v, want %v", tc.c, got, tc.want)
		}
	}
}

// TestCluster starts a cluster, checks its topology, fails a master over and
// moves slots, checking the keys a go-redis cluster client wrote stay
// readable; and that no process or goroutine is left afterwards.
func TestCluster(t *testing.T) {
	// Registered first so it runs last, after every cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		start := time.Now()
		c := Cluster(t)
		t.Logf("Cluster started in %v", time.Since(start).Round(time.Millisecond))
		pids = pidsOf(t, c.nodes)

		addrs := c.Addrs()
		masters, replicas := c.Masters(t), c.Replicas(t)
		if len(addrs) != 6 || len(masters) != 3 || len(replicas) != 3 {
			t.Fatalf("%d nodes, %d masters, %d replicas; want 6, 3, 3", len(addrs), len(masters), len(replicas))
		}
		if all := slices.Sorted(slices.Values(append(slices.Clone(masters), replicas...))); !slices.Equal(all, slices.Sorted(slices.Values(addrs))) {
			t.Fatalf("masters %v and replicas %v are not the nodes %v", masters, replicas, addrs)
		}
		seen := map[string]bool{}
		for _, m := range masters {
			r := c.ReplicaOf(t, m)
			if !slices.Contains(replicas, r) || seen[r] {
				t.Errorf("ReplicaOf(%s) = %s; want a replica of its own among %v", m, r, replicas)
			}
			seen[r] = true
		}
		for _, a := range addrs {
			if got := c.Node(a).Addr(); got != a {
				t.Errorf("Node(%s).Addr() = %s", a, got)
			}
		}
		for _, slot := range []int{0, 8000, 16383} {
			if m := c.MasterForSlot(t, slot); !slices.Contains(masters, m) {
				t.Errorf("MasterForSlot(%d) = %s, not a master", slot, m)
			}
		}

		const name = "testserver-cluster"
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cc := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                    addrs,
			ClientName:               name,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		defer cc.Close()
		const keys = 3000 // so the 100 slots Reshard moves hold some
		writeKeys(ctx, t, cc, keys, "a")
		checkKeys(ctx, t, cc, keys, "a")

		// Each master serves some of the keys, so it has the client's
		// sockets; no node lists the admin connection or a replication
		// link, which CLIENT LIST on a master does show.
		byNode := c.ClientsByNode(t)
		for _, m := range masters {
			if n := countNamed(byNode[m], name); n == 0 {
				t.Errorf("master %s lists no socket of the client: %+v", m, byNode[m])
			}
			if !slices.ContainsFunc(c.Node(m).Clients(t), func(ci ClientInfo) bool { return strings.Contains(ci.Flags, "S") }) {
				t.Errorf("master %s lists no replication link", m)
			}
		}
		for addr, clients := range byNode {
			for _, ci := range clients {
				if ci.Name == AdminClientName || serverLink(ci) {
					t.Errorf("ClientsByNode lists %+v on %s", ci, addr)
				}
			}
		}

		old := masters[0]
		want := c.ReplicaOf(t, old)
		oldSlot := c.view(t).byAddr(old).slots[0][0]
		start = time.Now()
		newMaster := c.Failover(t, old)
		t.Logf("Failover of %s took %v", old, time.Since(start).Round(time.Millisecond))
		if newMaster != want {
			t.Errorf("Failover(%s) = %s, want its replica %s", old, newMaster, want)
		}
		if m := c.Masters(t); !slices.Contains(m, newMaster) || slices.Contains(m, old) {
			t.Errorf("Masters after the failover = %v; want %s in, %s out", m, newMaster, old)
		}
		if got := c.ReplicaOf(t, newMaster); got != old {
			t.Errorf("ReplicaOf(new master %s) = %s, want the old master %s", newMaster, got, old)
		}
		if got := c.MasterForSlot(t, oldSlot); got != newMaster {
			t.Errorf("slot %d is served by %s after the failover, want %s", oldSlot, got, newMaster)
		}
		checkKeys(ctx, t, cc, keys, "a")
		writeKeys(ctx, t, cc, keys, "b")

		from := c.Masters(t)[0]
		if from == newMaster {
			from = c.Masters(t)[1]
		}
		fromSlots := countSlots(c.view(t).byAddr(from).slots)
		start = time.Now()
		moved := c.Reshard(t, from, newMaster, 100)
		t.Logf("Reshard of 100 slots took %v", time.Since(start).Round(time.Millisecond))
		if len(moved) != 100 {
			t.Fatalf("Reshard moved %d slots, want 100: %v", len(moved), moved)
		}
		v := c.view(t)
		if got := countSlots(v.byAddr(from).slots); got != fromSlots-100 {
			t.Errorf("%s serves %d slots after giving 100 of %d", from, got, fromSlots)
		}
		movedKeys := 0
		for _, slot := range moved {
			if got := v.owner(slot); got == nil || got.addr != newMaster {
				t.Fatalf("moved slot %d is served by %+v, want %s", slot, got, newMaster)
			}
			n, err := c.Node(newMaster).Admin().ClusterCountKeysInSlot(ctx, slot).Result()
			if err != nil {
				t.Fatal(err)
			}
			movedKeys += int(n)
		}
		if movedKeys == 0 {
			t.Errorf("the moved slots hold no keys on %s; Reshard did not migrate them", newMaster)
		}
		checkKeys(ctx, t, cc, keys, "b")
		// The source keeps MIGRATE's socket to the target: listed by
		// Clients, left out by ClientsByNode.
		if !slices.ContainsFunc(c.Node(newMaster).Clients(t), func(ci ClientInfo) bool { return ci.Cmd == "restore-asking" }) {
			t.Errorf("%s lists no MIGRATE connection after migrating %d keys", newMaster, movedKeys)
		}
		for _, ci := range c.ClientsByNode(t)[newMaster] {
			if ci.Cmd == "restore-asking" {
				t.Errorf("ClientsByNode lists the MIGRATE connection %+v", ci)
			}
		}
		t.Logf("moved %d keys in %d slots", movedKeys, len(moved))

		// A fresh client sees the new layout at once. (Its Addrs must not
		// share an array with cc's: go-redis appends to it in place.)
		fresh := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                    []string{addrs[0]},
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		checkKeys(ctx, t, fresh, keys, "b")
		_ = fresh.Close()

		if err := cc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		waitClients(t, func() bool {
			for _, clients := range c.ClientsByNode(t) {
				if countNamed(clients, name) != 0 {
					return false
				}
			}
			return true
		})
	})
	if !t.Failed() && len(pids) != 6 {
		t.Fatalf("recorded %d PIDs, want 6", len(pids))
	}
	processesGone(t, pids)
}

// writeKeys sets key0..key<n-1> to val<i>, in one pipeline.
func writeKeys(ctx context.Context, t *testing.T, c redis.UniversalClient, n int, val string) {
	t.Helper()
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Set(ctx, "key"+strconv.Itoa(i), val+strconv.Itoa(i), 0)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writing %d keys: %v", n, err)
	}
}

// checkKeys fails t unless key<i> is val<i> for every i < n.
func checkKeys(ctx context.Context, t *testing.T, c redis.UniversalClient, n int, val string) {
	t.Helper()
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Get(ctx, "key"+strconv.Itoa(i))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading %d keys: %v", n, err)
	}
	for i, cmd := range cmds {
		if got, want := cmd.(*redis.StringCmd).Val(), val+strconv.Itoa(i); got != want {
			t.Fatalf("key%d = %q, want %q", i, got, want)
		}
	}
}

// countNamed counts the connections named name.
func countNamed(clients []ClientInfo, name string) int {
	n := 0
	for _, c := range clients {
		if c.Name == name {
			n++
		}
	}
	return n
}

// waitClients waits up to 5s for cond, which reads the servers' client
// lists; a closed socket leaves a server's list as soon as the server has
// read the close.
func waitClients(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("the client's sockets are still listed 5s after Close")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pidsOf returns the PIDs of the running servers.
func pidsOf(t *testing.T, servers []*Server) []int {
	t.Helper()
	var pids []int
	for _, s := range servers {
		s.mu.Lock()
		if s.proc == nil {
			t.Errorf("%s is not running", s.addr)
		} else {
			pids = append(pids, s.proc.cmd.Process.Pid)
		}
		s.mu.Unlock()
	}
	return pids
}

// processesGone fails t if a process in pids still exists.
func processesGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after the test (kill -0: %v)", pid, err)
		}
	}
}
