package testserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// SentinelMasterName is the name the sentinels started by Sentinel
	// monitor their master under (see RedisSentinel.MasterName).
	SentinelMasterName = "redisleak-master"
	// sentinelCount is how many sentinels Sentinel starts; a quorum of 2 of
	// them agrees that the master is down.
	sentinelCount = 3
)

// RedisSentinel is a master, its replica and three sentinels monitoring it,
// all redis-server processes on loopback ports started for one test by
// Sentinel and stopped by their PIDs when it finishes. The sentinels judge a
// master down after 1s without an answer (quorum 2), so a stopped master is
// failed over within seconds. Failover expects every server to be running.
type RedisSentinel struct {
	data      []*Server // the first master, then its replica
	sentinels []*Server
}

// Sentinel starts a master, a replica of it (--replicaof) and three
// sentinels (redis-server <config> --sentinel, each with a config file of its
// own in a t.TempDir, which the sentinel rewrites) monitoring the master as
// SentinelMasterName with quorum 2, down-after-milliseconds 1000,
// failover-timeout 5000 and parallel-syncs 1. It returns once every sentinel
// reports the master, the replica (in sync) and the two other sentinels,
// which takes about 2s (sentinels find each other through hello messages
// published every 2s).
//
// If redis-server is not on PATH the test is skipped, or fails when
// REDISLEAK_REQUIRE_SERVER=1.
func Sentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	// A new replica syncs at once instead of waiting 5s for others.
	master := Redis(t, "--repl-diskless-sync-delay", "0")
	masterHost, masterPort, _ := net.SplitHostPort(master.addr)
	replica := Redis(t, "--repl-diskless-sync-delay", "0", "--replicaof", masterHost, masterPort)
	sn := &RedisSentinel{data: []*Server{master, replica}}
	sn.waitReplica(t, "the replica's first sync", replica, master.addr)

	bin := requireBin(t, "redis-server")
	for range sentinelCount {
		sn.sentinels = append(sn.sentinels, launch(t, bin, func(port int, dir string) ([]string, error) {
			conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(port)+".conf")
			text := fmt.Sprintf("port %d\n"+
				"sentinel monitor %[2]s %s %s 2\n"+
				"sentinel down-after-milliseconds %[2]s 1000\n"+
				"sentinel failover-timeout %[2]s 5000\n"+
				"sentinel parallel-syncs %[2]s 1\n",
				port, SentinelMasterName, masterHost, masterPort)
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				return nil, err
			}
			// The config file must come first.
			return append([]string{conf, "--sentinel"}, serverArgs(port, dir)...), nil
		}))
	}

	sn.waitSentinels(t, "the sentinels to see the master, the replica and each other", func(_ context.Context, v []sentinelView) error {
		for _, s := range v {
			if s.master != master.addr {
				return fmt.Errorf("sentinel %s reports master %s, want %s", s.addr, s.master, master.addr)
			}
			if len(s.replicas) != 1 {
				return fmt.Errorf("sentinel %s knows %d replicas, want 1", s.addr, len(s.replicas))
			}
			r := s.replicas[0]
			if addr := net.JoinHostPort(r["ip"], r["port"]); addr != replica.addr || r["flags"] != "slave" || r["master-link-status"] != "ok" {
				return fmt.Errorf("sentinel %s sees replica %s with flags %s, link %s; want %s, slave, ok",
					s.addr, addr, r["flags"], r["master-link-status"], replica.addr)
			}
		}
		return nil
	})
	return sn
}

// MasterName returns the name the sentinels know the master by, for
// redis.FailoverOptions.MasterName.
func (sn *RedisSentinel) MasterName() string { return SentinelMasterName }

// SentinelAddrs returns the sentinels' host:port, for
// redis.FailoverOptions.SentinelAddrs, in a new slice on each call.
func (sn *RedisSentinel) SentinelAddrs() []string {
	addrs := make([]string, len(sn.sentinels))
	for i, s := range sn.sentinels {
		addrs[i] = s.addr
	}
	return addrs
}

// Addrs returns the host:port of the two data nodes, the first master then
// its replica (their roles swap with each Failover).
func (sn *RedisSentinel) Addrs() []string {
	return []string{sn.data[0].addr, sn.data[1].addr}
}

// Sentinels returns the three sentinels, in the order of SentinelAddrs.
// Their Clients list the sentinels' links to each other as well; see
// ClientsByNode.
func (sn *RedisSentinel) Sentinels() []*Server { return sn.sentinels }

// Node returns the server at addr: the master, the replica or a sentinel.
// It panics if addr is none of them.
func (sn *RedisSentinel) Node(addr string) *Server {
	return node(sn.servers(), addr)
}

// Master returns the master's address as the first running sentinel reports
// it (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (sn *RedisSentinel) Master(t testing.TB) string {
	t.Helper()
	var lastErr error
	for _, s := range sn.sentinels {
		if !s.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addr, err := masterAddr(ctx, s)
		cancel()
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatalf("testserver: no sentinel reports the master: %v", lastErr)
	return ""
}

// Replicas returns the addresses of the data nodes that say they are
// replicas (ROLE), so a replica the sentinels are still reconfiguring is
// not listed yet. A stopped node is left out.
func (sn *RedisSentinel) Replicas(t testing.TB) []string {
	t.Helper()
	var replicas []string
	for _, s := range sn.data {
		if !s.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := roleOf(ctx, s)
		cancel()
		if err != nil {
			t.Fatalf("testserver: %v", err)
		}
		if r.role == "slave" {
			replicas = append(replicas, s.addr)
		}
	}
	return replicas
}

// Failover runs SENTINEL FAILOVER, which promotes the replica without
// asking the other sentinels, and returns the new master's address once
// every sentinel reports it with no failover in progress and it answers
// ROLE master. The old master is then made a replica of the new one and
// Failover waits for it to sync: the sentinels would do the same, but only
// about 10s later, leaving two masters meanwhile. It typically takes 1-2s.
func (sn *RedisSentinel) Failover(t testing.TB) (newMaster string) {
	t.Helper()
	before := sn.waitSentinels(t, "the sentinels before the failover", nil)
	old := before[0].master

	// NOGOODSLAVE (no replica the sentinel deems fit yet) and INPROG (a
	// failover in progress) pass; other errors do not.
	var failed error
	err := retry(settleTimeout, func(ctx context.Context) error {
		err := sn.sentinels[0].Admin().Do(ctx, "SENTINEL", "FAILOVER", SentinelMasterName).Err()
		if err != nil && !strings.HasPrefix(err.Error(), "NOGOODSLAVE") && !strings.HasPrefix(err.Error(), "INPROG") {
			failed = err
			return nil
		}
		return err
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		sn.fatal(t, "SENTINEL FAILOVER on "+sn.sentinels[0].addr, err)
	}
	after := sn.waitSentinels(t, "the sentinels after the failover", func(ctx context.Context, v []sentinelView) error {
		if v[0].master == old {
			return fmt.Errorf("sentinel %s still reports master %s", v[0].addr, old)
		}
		r, err := roleOf(ctx, sn.Node(v[0].master))
		if err == nil && r.role != "master" {
			err = fmt.Errorf("new master %s says it is a %s", v[0].master, r.role)
		}
		return err
	})
	newMaster = after[0].master

	oldServer := sn.Node(old)
	if !oldServer.running() { // stopped by the test: nothing to reconfigure
		return newMaster
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := roleOf(ctx, oldServer); err != nil || r.role == "master" {
		host, port, _ := net.SplitHostPort(newMaster)
		if err := oldServer.Admin().ReplicaOf(ctx, host, port).Err(); err != nil {
			sn.fatal(t, "making the old master "+old+" a replica", err)
		}
	}
	sn.waitReplica(t, "the old master "+old+" to sync from "+newMaster, oldServer, newMaster)
	return newMaster
}

// ClientsByNode returns the connections of every running server, the data
// nodes and the sentinels, by address, leaving out the admin connection (as
// Clients does) and the servers' own links: replication links (flags S and
// M) and the sentinels' connections to the data nodes and to each other
// (named sentinel-<id>-cmd or -pubsub).
func (sn *RedisSentinel) ClientsByNode(t testing.TB) map[string][]ClientInfo {
	t.Helper()
	return clientsByNode(t, sn.servers())
}

// servers returns the data nodes, then the sentinels.
func (sn *RedisSentinel) servers() []*Server {
	return append(append([]*Server(nil), sn.data...), sn.sentinels...)
}

// waitReplica waits until replica reports a link to master that is up.
func (sn *RedisSentinel) waitReplica(t testing.TB, what string, replica *Server, master string) {
	t.Helper()
	err := retry(settleTimeout, func(ctx context.Context) error {
		r, err := roleOf(ctx, replica)
		if err == nil && (r.role != "slave" || r.master != master || r.state != "connected") {
			err = fmt.Errorf("%s: ROLE %s of %s, %s; want a replica of %s, connected", replica.addr, r.role, r.master, r.state, master)
		}
		return err
	})
	if err != nil {
		sn.fatal(t, "waiting for "+what, err)
	}
}

// sentinelView is what one sentinel reports of the master it monitors.
type sentinelView struct {
	addr     string // the sentinel's
	master   string // the master's
	replicas []map[string]string
}

// waitSentinels waits until every sentinel reports the same master, with no
// failover in progress and the two other sentinels connected, and cond, if
// not nil, accepts their views, which it returns. The test fails if that
// takes longer than settleTimeout.
func (sn *RedisSentinel) waitSentinels(t testing.TB, what string, cond func(context.Context, []sentinelView) error) []sentinelView {
	t.Helper()
	var views []sentinelView
	err := retry(settleTimeout, func(ctx context.Context) error {
		views = views[:0]
		for _, s := range sn.sentinels {
			v, err := sentinelViewOf(ctx, s)
			if err != nil {
				return err
			}
			if len(views) > 0 && v.master != views[0].master {
				return fmt.Errorf("sentinel %s reports master %s, sentinel %s %s", views[0].addr, views[0].master, v.addr, v.master)
			}
			views = append(views, v)
		}
		if cond != nil {
			return cond(ctx, views)
		}
		return nil
	})
	if err != nil {
		sn.fatal(t, "waiting for "+what, err)
	}
	return views
}

// sentinelViewOf asks the sentinel s about the master, failing unless the
// sentinel sees it as up with no failover in progress and sees the other
// sentinels connected.
func sentinelViewOf(ctx context.Context, s *Server) (sentinelView, error) {
	v := sentinelView{addr: s.addr}
	admin := s.Admin()
	pipe := admin.Pipeline()
	addr := redis.NewStringSliceCmd(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterName)
	_ = pipe.Process(ctx, addr)
	master := redis.NewMapStringStringCmd(ctx, "SENTINEL", "MASTER", SentinelMasterName)
	_ = pipe.Process(ctx, master)
	replicas := redis.NewMapStringStringSliceCmd(ctx, "SENTINEL", "REPLICAS", SentinelMasterName)
	_ = pipe.Process(ctx, replicas)
	sentinels := redis.NewMapStringStringSliceCmd(ctx, "SENTINEL", "SENTINELS", SentinelMasterName)
	_ = pipe.Process(ctx, sentinels)
	if _, err := pipe.Exec(ctx); err != nil {
		return v, fmt.Errorf("sentinel %s: %w", s.addr, err)
	}
	var err error
	if v.master, err = masterAddrReply(s, addr); err != nil {
		return v, err
	}
	v.replicas = replicas.Val()

	m := master.Val()
	if m["flags"] != "master" {
		return v, fmt.Errorf("sentinel %s sees master %s with flags %s", s.addr, v.master, m["flags"])
	}
	others := sentinels.Val()
	if len(others) != sentinelCount-1 {
		return v, fmt.Errorf("sentinel %s knows %d other sentinels, want %d", s.addr, len(others), sentinelCount-1)
	}
	for _, o := range others {
		if o["flags"] != "sentinel" {
			return v, fmt.Errorf("sentinel %s sees sentinel %s:%s with flags %s", s.addr, o["ip"], o["port"], o["flags"])
		}
	}
	return v, nil
}

// masterAddr asks the sentinel s for the master's address.
func masterAddr(ctx context.Context, s *Server) (string, error) {
	cmd := redis.NewStringSliceCmd(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterName)
	_ = s.Admin().Process(ctx, cmd)
	return masterAddrReply(s, cmd)
}

// masterAddrReply returns the host:port of the reply of the sentinel s to
// SENTINEL GET-MASTER-ADDR-BY-NAME.
func masterAddrReply(s *Server, cmd *redis.StringSliceCmd) (string, error) {
	hostPort, err := cmd.Result()
	if err != nil || len(hostPort) != 2 {
		return "", fmt.Errorf("sentinel %s: GET-MASTER-ADDR-BY-NAME replied %q, %v", s.addr, hostPort, err)
	}
	return net.JoinHostPort(hostPort[0], hostPort[1]), nil
}

// fatal fails the test with err and every server's log.
func (sn *RedisSentinel) fatal(t testing.TB, what string, err error) {
	t.Helper()
	var b strings.Builder
	for i, s := range sn.servers() {
		kind := "data node"
		if i >= len(sn.data) {
			kind = "sentinel"
		}
		fmt.Fprintf(&b, "\n--- %s %s log:\n%s", kind, s.addr, s.output(0))
	}
	t.Fatalf("testserver: sentinel: %s: %v\n%s", what, err, b.String())
}
