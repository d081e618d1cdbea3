package testserver

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// clusterSize is how many redis-servers Cluster starts: three masters
	// with one replica each.
	clusterSize = 6
	// clusterSlots is the number of hash slots of a Redis Cluster.
	clusterSlots = 16384
	// clusterNodeTimeout is the nodes' cluster-node-timeout in milliseconds;
	// short, so that a node is marked failed (and its replica promoted)
	// within seconds.
	clusterNodeTimeout = "2000"
	// settleTimeout bounds each wait for a cluster or a sentinel setup to
	// settle. Settling normally takes well under 3s; the margin is for a
	// loaded CI machine.
	settleTimeout = 30 * time.Second
	// promoteTimeout bounds the wait for a replica to take over after
	// CLUSTER FAILOVER; a manual failover the master did not complete is
	// abandoned by the replica after 5s, so it is sent again.
	promoteTimeout = 7 * time.Second
	// clusterAttempts is how many times redis-cli --cluster create, redis-cli
	// --cluster reshard and CLUSTER FAILOVER are tried.
	clusterAttempts = 3
	// cliTimeout bounds one run of redis-cli.
	cliTimeout = 60 * time.Second
	// pollInterval is the pause between two looks at a settling setup.
	pollInterval = 20 * time.Millisecond
)

// RedisCluster is a Redis Cluster of six redis-server processes on loopback
// ports, three masters with one replica each, started for one test by
// Cluster. Every node is a *Server (see Node), stopped by its PID when the
// test finishes. The nodes use a 2s cluster-node-timeout, so a node that is
// stopped is failed over within seconds.
//
// The methods that read the topology (Masters, Replicas, MasterForSlot,
// ReplicaOf) read CLUSTER NODES from the first node that answers, as it is
// at the time of the call. Failover and Reshard change it, and return once
// every node agrees on the result; they expect every node to be running.
type RedisCluster struct {
	cli   string    // path of redis-cli
	nodes []*Server // in the order they were started
}

// Cluster starts six redis-servers with cluster mode on, on free loopback
// ports, joins them into a cluster with redis-cli --cluster create (three
// masters, one replica each), and returns once every node reports
// cluster_state:ok, every node agrees on the slots, masters and replicas, and
// every replica's link to its master is up. It takes about 3s (redis-cli
// polls the join once a second, and a new master waits 2s before it reports
// cluster_state:ok); the nodes are stopped when the test finishes.
//
// If redis-server or redis-cli is not on PATH the test is skipped, or fails
// when REDISLEAK_REQUIRE_SERVER=1.
func Cluster(t testing.TB) *RedisCluster {
	t.Helper()
	bin := requireBin(t, "redis-server")
	c := &RedisCluster{cli: requireBin(t, "redis-cli")}
	for range clusterSize {
		c.nodes = append(c.nodes, launch(t, bin, clusterNodeArgs))
	}
	c.create(t)
	return c
}

// clusterNodeArgs is the command line of a cluster node on port. The bus
// port is picked apart rather than left at port+10000, which is past 65535
// for a quarter of the ephemeral ports.
func clusterNodeArgs(port int, dir string) ([]string, error) {
	bus, err := freePort()
	for err == nil && bus == port {
		bus, err = freePort()
	}
	if err != nil {
		return nil, fmt.Errorf("picking a cluster bus port: %w", err)
	}
	return append(serverArgs(port, dir),
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"),
		"--cluster-port", strconv.Itoa(bus),
		"--cluster-node-timeout", clusterNodeTimeout,
		// A new replica syncs at once instead of waiting 5s for others.
		"--repl-diskless-sync-delay", "0",
	), nil
}

// create joins the nodes into a cluster and waits for it to settle. A failed
// redis-cli run is retried on reset nodes.
func (c *RedisCluster) create(t testing.TB) {
	t.Helper()
	args := append(append([]string{"--cluster", "create"}, c.Addrs()...),
		"--cluster-replicas", "1", "--cluster-yes")
	for attempt := 1; ; attempt++ {
		err := c.redisCLI(args...)
		if err == nil {
			break
		}
		if attempt == clusterAttempts {
			c.fatal(t, "creating the cluster", err)
		}
		t.Logf("testserver: creating the cluster failed, resetting the nodes and retrying: %v", err)
		if err := c.reset(); err != nil {
			c.fatal(t, "resetting the nodes after a failed create", err)
		}
	}
	c.waitSettled(t, "the new cluster", func(v clusterView) error {
		masters := v.masters()
		if len(masters) != clusterSize/2 {
			return fmt.Errorf("%d masters, want %d", len(masters), clusterSize/2)
		}
		for _, m := range masters {
			if n := len(v.replicasOf(m.id)); n != 1 {
				return fmt.Errorf("master %s has %d replicas, want 1", m.addr, n)
			}
		}
		return nil
	})
}

// reset empties every node and makes it forget the others, undoing a
// partial create.
func (c *RedisCluster) reset() error {
	for _, s := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// A replica refuses FLUSHALL; CLUSTER RESET empties it instead.
		_ = s.Admin().FlushAll(ctx).Err()
		err := s.Admin().ClusterResetHard(ctx).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("CLUSTER RESET HARD on %s: %w", s.addr, err)
		}
	}
	return nil
}

// Addrs returns the host:port of all six nodes, masters and replicas, in the
// order they were started (which says nothing of their roles), in a new
// slice on each call: go-redis appends to ClusterOptions.Addrs in place.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		addrs[i] = s.addr
	}
	return addrs
}

// Node returns the node at addr, one of Addrs, to count its clients (Clients,
// ConnectedClients), run commands on it (Admin) or Stop and Restart it. It
// panics if addr is not a node of the cluster.
func (c *RedisCluster) Node(addr string) *Server {
	return node(c.nodes, addr)
}

// Masters returns the addresses of the masters, sorted, as CLUSTER NODES
// reports them now. A node marked failed is left out.
func (c *RedisCluster) Masters(t testing.TB) []string {
	t.Helper()
	return addrsOf(c.view(t).masters())
}

// Replicas returns the addresses of the replicas, sorted, as CLUSTER NODES
// reports them now. A node marked failed is left out.
func (c *RedisCluster) Replicas(t testing.TB) []string {
	t.Helper()
	var replicas []clusterNode
	for _, n := range c.view(t) {
		if !n.isMaster() && !n.failed() {
			replicas = append(replicas, n)
		}
	}
	return addrsOf(replicas)
}

// MasterForSlot returns the address of the master serving the hash slot
// (0-16383) now.
func (c *RedisCluster) MasterForSlot(t testing.TB, slot int) string {
	t.Helper()
	v := c.view(t)
	if m := v.owner(slot); m != nil {
		return m.addr
	}
	t.Fatalf("testserver: no master serves slot %d:\n%s", slot, v)
	return ""
}

// ReplicaOf returns the address of a replica of the master at master (the
// first by address if it has several). The test fails if it has none.
func (c *RedisCluster) ReplicaOf(t testing.TB, master string) string {
	t.Helper()
	v := c.view(t)
	m := v.byAddr(master)
	if m == nil || !m.isMaster() {
		t.Fatalf("testserver: %s is not a master of the cluster:\n%s", master, v)
	}
	replicas := v.replicasOf(m.id)
	if len(replicas) == 0 {
		t.Fatalf("testserver: master %s has no replica:\n%s", master, v)
	}
	return replicas[0].addr
}

// Failover promotes a replica of the master at master (see ReplicaOf) with
// CLUSTER FAILOVER, the manual failover that first lets the replica catch up
// so no acknowledged write is lost. It returns the new master's address once
// every node sees it serving the old master's slots with the old master as
// its replica (linked and in sync) and cluster_state is ok everywhere:
// typically within a second.
func (c *RedisCluster) Failover(t testing.TB, master string) (newMaster string) {
	t.Helper()
	before := c.waitSettled(t, "the cluster before the failover", nil)
	old := before.byAddr(master)
	if old == nil || !old.isMaster() {
		t.Fatalf("testserver: %s is not a master of the cluster:\n%s", master, before)
	}
	replicas := before.replicasOf(old.id)
	if len(replicas) == 0 {
		t.Fatalf("testserver: master %s has no replica to fail over to:\n%s", master, before)
	}
	replica := replicas[0]
	admin := c.Node(replica.addr).Admin()

	for attempt := 1; ; attempt++ {
		err := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := admin.ClusterFailover(ctx).Err(); err != nil {
				return fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica.addr, err)
			}
			return retry(promoteTimeout, func(ctx context.Context) error {
				role, err := roleOf(ctx, c.Node(replica.addr))
				if err == nil && role.role != "master" {
					err = fmt.Errorf("%s is still a %s", replica.addr, role.role)
				}
				return err
			})
		}()
		if err == nil {
			break
		}
		if attempt == clusterAttempts {
			c.fatal(t, "failing over "+master+" to "+replica.addr, err)
		}
		t.Logf("testserver: failover of %s to %s did not happen, retrying: %v", master, replica.addr, err)
	}

	c.waitSettled(t, "the cluster after the failover of "+master, func(v clusterView) error {
		n, o := v.byAddr(replica.addr), v.byAddr(master)
		switch {
		case n == nil || o == nil:
			return fmt.Errorf("%s or %s is missing", replica.addr, master)
		case !n.isMaster():
			return fmt.Errorf("%s is not a master", n.addr)
		case o.masterID != n.id:
			return fmt.Errorf("%s is not a replica of %s", o.addr, n.addr)
		case !slices.Equal(n.slots, old.slots):
			return fmt.Errorf("%s serves slots %s, want %s", n.addr, formatSlots(n.slots), formatSlots(old.slots))
		}
		return nil
	})
	return replica.addr
}

// Reshard moves slots hash slots, with their keys, from the master at from to
// the master at to, with redis-cli --cluster reshard (CLUSTER SETSLOT
// IMPORTING and MIGRATING, MIGRATE of the keys in batches, CLUSTER SETSLOT
// NODE). It returns the moved slots, sorted, once every node agrees on their
// new owner. Clients see MOVED and ASK redirections meanwhile; the source
// keeps MIGRATE's connections to the target open for 10s afterwards (see
// ClientsByNode).
func (c *RedisCluster) Reshard(t testing.TB, from, to string, slots int) (moved []int) {
	t.Helper()
	before := c.waitSettled(t, "the cluster before the reshard", nil)
	src, dst := before.byAddr(from), before.byAddr(to)
	switch {
	case src == nil || !src.isMaster():
		t.Fatalf("testserver: reshard source %s is not a master of the cluster:\n%s", from, before)
	case dst == nil || !dst.isMaster():
		t.Fatalf("testserver: reshard target %s is not a master of the cluster:\n%s", to, before)
	case from == to:
		t.Fatalf("testserver: reshard from %s to itself", from)
	case slots <= 0 || slots > countSlots(src.slots):
		t.Fatalf("testserver: cannot move %d slots from %s, which has %d", slots, from, countSlots(src.slots))
	}

	// movedSince lists the slots v gives to to that src served before.
	movedSince := func(v clusterView) []int {
		var moved []int
		for _, r := range src.slots {
			for slot := r[0]; slot <= r[1]; slot++ {
				if owner := v.owner(slot); owner != nil && owner.addr == to {
					moved = append(moved, slot)
				}
			}
		}
		return moved
	}
	for attempt := 1; ; attempt++ {
		err := c.redisCLI("--cluster", "reshard", from,
			"--cluster-from", src.id, "--cluster-to", dst.id,
			"--cluster-slots", strconv.Itoa(slots-len(moved)), "--cluster-yes")
		if err == nil {
			break
		}
		if attempt == clusterAttempts {
			c.fatal(t, "resharding", err)
		}
		// A run that failed before or between slots leaves a consistent
		// cluster: move what is left. One that failed within a slot leaves
		// it open, and the wait fails with a view that shows it.
		v := c.waitSettled(t, "the cluster after a failed reshard", nil)
		if moved = movedSince(v); len(moved) >= slots {
			break
		}
		t.Logf("testserver: reshard failed after moving %d of %d slots, retrying: %v", len(moved), slots, err)
	}
	v := c.waitSettled(t, "the cluster after the reshard", func(v clusterView) error {
		if n := len(movedSince(v)); n != slots {
			return fmt.Errorf("%d slots of %s moved to %s, want %d", n, from, to, slots)
		}
		return nil
	})
	return movedSince(v)
}

// ClientsByNode returns the connections of every running node, by address,
// leaving out those that are not a client's: the admin connection (as
// Clients does) and the nodes' own links, that is replication links (flags
// S and M) and the connections MIGRATE keeps from one node to another for
// 10s after Reshard (last command restore-asking). Node(addr).Clients lists
// those links too. A stopped node has no entry.
func (c *RedisCluster) ClientsByNode(t testing.TB) map[string][]ClientInfo {
	t.Helper()
	return clientsByNode(t, c.nodes)
}

// view returns CLUSTER NODES as the first node that answers reports it.
func (c *RedisCluster) view(t testing.TB) clusterView {
	t.Helper()
	var errs []error
	for _, s := range c.nodes {
		if !s.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		text, err := s.Admin().ClusterNodes(ctx).Result()
		cancel()
		if err == nil {
			var v clusterView
			if v, err = parseClusterNodes(text); err == nil {
				return v
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.addr, err))
	}
	c.fatal(t, "reading CLUSTER NODES", errors.Join(errs...))
	return nil
}

// waitSettled waits until the cluster has settled (see settled) and cond, if
// not nil, accepts the nodes' common view, which it returns. The test fails
// if that takes longer than settleTimeout.
func (c *RedisCluster) waitSettled(t testing.TB, what string, cond func(clusterView) error) clusterView {
	t.Helper()
	var v clusterView
	err := retry(settleTimeout, func(ctx context.Context) error {
		var err error
		if v, err = c.settled(ctx); err == nil && cond != nil {
			err = cond(v)
		}
		return err
	})
	if err != nil {
		c.fatal(t, "waiting for "+what+" to settle", err)
	}
	return v
}

// settled returns the nodes' common view of the cluster, or an error saying
// why there is none yet: a node does not answer, says cluster_state is not
// ok, sees a node as failing, in handshake or disconnected, has a slot
// migrating or importing, or disagrees with the first node on the nodes,
// their roles or their slots; the slots are not all served; or a replica's
// link to its master is not up.
func (c *RedisCluster) settled(ctx context.Context) (clusterView, error) {
	var first clusterView
	for _, s := range c.nodes {
		pipe := s.Admin().Pipeline()
		info := pipe.ClusterInfo(ctx)
		nodes := pipe.ClusterNodes(ctx)
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.addr, err)
		}
		if !strings.Contains(info.Val(), "cluster_state:ok") {
			return nil, fmt.Errorf("%s: cluster_state is not ok", s.addr)
		}
		v, err := parseClusterNodes(nodes.Val())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.addr, err)
		}
		if len(v) != len(c.nodes) {
			return nil, fmt.Errorf("%s knows %d nodes, want %d:\n%s", s.addr, len(v), len(c.nodes), v)
		}
		for _, n := range v {
			switch {
			case n.failed():
				return nil, fmt.Errorf("%s sees %s as %s", s.addr, n.addr, strings.Join(n.flags, ","))
			case n.linkState != "connected":
				return nil, fmt.Errorf("%s sees %s %s", s.addr, n.addr, n.linkState)
			case n.open:
				return nil, fmt.Errorf("%s has a slot migrating or importing", n.addr)
			}
		}
		if first == nil {
			if err := v.covers(); err != nil {
				return nil, fmt.Errorf("%s: %w", s.addr, err)
			}
			first = v
		} else if v.String() != first.String() {
			return nil, fmt.Errorf("%s and %s disagree:\n%s\nand\n%s", c.nodes[0].addr, s.addr, first, v)
		}
		if self := v.byAddr(s.addr); self != nil && !self.isMaster() {
			role, err := roleOf(ctx, s)
			if err != nil {
				return nil, err
			}
			if role.role != "slave" || role.state != "connected" {
				return nil, fmt.Errorf("%s: ROLE %s %s, want a connected replica", s.addr, role.role, role.state)
			}
		}
	}
	return first, nil
}

// redisCLI runs redis-cli with args, returning an error with its output if
// it fails.
func (c *RedisCluster) redisCLI(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.cli, args...).CombinedOutput()
	if err != nil {
		// redis-cli colors its messages even when not on a terminal.
		out = ansiEscape.ReplaceAll(out, nil)
		return fmt.Errorf("%s %s: %w\noutput:\n%s", c.cli, strings.Join(args, " "), err, out)
	}
	return nil
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// fatal fails the test with err and every node's CLUSTER NODES and log.
func (c *RedisCluster) fatal(t testing.TB, what string, err error) {
	t.Helper()
	var b strings.Builder
	for _, s := range c.nodes {
		fmt.Fprintf(&b, "\n--- node %s", s.addr)
		if s.running() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			text, err := s.Admin().ClusterNodes(ctx).Result()
			cancel()
			if err != nil {
				text = err.Error()
			}
			fmt.Fprintf(&b, "\nCLUSTER NODES:\n%s", text)
		} else {
			b.WriteString(" (stopped)")
		}
		fmt.Fprintf(&b, "\nlog:\n%s", s.output(0))
	}
	t.Fatalf("testserver: cluster: %s: %v\n%s", what, err, b.String())
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr  string
	flags     []string // myself, master, slave, fail?, fail, handshake, noaddr, ...
	masterID  string   // for a replica; "-" for a master
	linkState string   // connected or disconnected
	slots     [][2]int // the ranges served, first to last
	open      bool     // has a slot migrating or importing
}

func (n *clusterNode) isMaster() bool { return slices.Contains(n.flags, "master") }

// failed reports whether the node is failing, or not yet or no longer known
// well enough to be part of the cluster.
func (n *clusterNode) failed() bool {
	for _, f := range n.flags {
		switch f {
		case "fail", "fail?", "handshake", "noaddr":
			return true
		}
	}
	return false
}

// clusterView is the cluster as one node sees it, sorted by address.
type clusterView []clusterNode

// parseClusterNodes parses the reply of CLUSTER NODES.
func parseClusterNodes(text string) (clusterView, error) {
	var v clusterView
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES line %q: too few fields", line)
		}
		// The address is ip:port@busport, maybe followed by ,hostname.
		addr, _, _ := strings.Cut(f[1], "@")
		n := clusterNode{id: f[0], addr: addr, flags: strings.Split(f[2], ","), masterID: f[3], linkState: f[7]}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // [slot->-id] or [slot-<-id]
				n.open = true
				continue
			}
			lo, hi, isRange := strings.Cut(s, "-")
			a, err := strconv.Atoi(lo)
			b := a
			if err == nil && isRange {
				b, err = strconv.Atoi(hi)
			}
			if err != nil || a > b {
				return nil, fmt.Errorf("CLUSTER NODES line %q: bad slots %q", line, s)
			}
			n.slots = append(n.slots, [2]int{a, b})
		}
		v = append(v, n)
	}
	slices.SortFunc(v, func(a, b clusterNode) int { return strings.Compare(a.addr, b.addr) })
	return v, nil
}

// String formats v one node a line, without what differs from one node's
// view to another's (myself, ping times), so that equal strings mean the
// nodes agree.
func (v clusterView) String() string {
	var b strings.Builder
	for _, n := range v {
		role := "master"
		if !n.isMaster() {
			role = "replica of " + n.masterID
			if m := v.byID(n.masterID); m != nil {
				role = "replica of " + m.addr
			}
		}
		var bad []string
		for _, f := range n.flags {
			if f != "myself" && f != "master" && f != "slave" {
				bad = append(bad, f)
			}
		}
		fmt.Fprintf(&b, "%s %s %s %s %s %s\n", n.addr, n.id, role, formatSlots(n.slots), strings.Join(bad, ","), n.linkState)
	}
	return b.String()
}

func (v clusterView) byAddr(addr string) *clusterNode {
	for i := range v {
		if v[i].addr == addr {
			return &v[i]
		}
	}
	return nil
}

func (v clusterView) byID(id string) *clusterNode {
	for i := range v {
		if v[i].id == id {
			return &v[i]
		}
	}
	return nil
}

// masters returns the masters not marked failed.
func (v clusterView) masters() []clusterNode {
	var masters []clusterNode
	for _, n := range v {
		if n.isMaster() && !n.failed() {
			masters = append(masters, n)
		}
	}
	return masters
}

// replicasOf returns the replicas of the master with the id, not marked
// failed.
func (v clusterView) replicasOf(id string) []clusterNode {
	var replicas []clusterNode
	for _, n := range v {
		if !n.isMaster() && !n.failed() && n.masterID == id {
			replicas = append(replicas, n)
		}
	}
	return replicas
}

// owner returns the master serving slot, or nil.
func (v clusterView) owner(slot int) *clusterNode {
	for i := range v {
		if !v[i].isMaster() {
			continue
		}
		for _, r := range v[i].slots {
			if r[0] <= slot && slot <= r[1] {
				return &v[i]
			}
		}
	}
	return nil
}

// covers reports an error unless every slot is served by exactly one
// master.
func (v clusterView) covers() error {
	var served [clusterSlots]int
	for _, n := range v {
		if !n.isMaster() {
			continue
		}
		for _, r := range n.slots {
			if r[0] < 0 || r[1] >= clusterSlots {
				return fmt.Errorf("%s serves slots %d-%d, out of range", n.addr, r[0], r[1])
			}
			for slot := r[0]; slot <= r[1]; slot++ {
				served[slot]++
			}
		}
	}
	for slot, n := range served {
		if n != 1 {
			return fmt.Errorf("slot %d is served by %d masters", slot, n)
		}
	}
	return nil
}

func countSlots(ranges [][2]int) int {
	n := 0
	for _, r := range ranges {
		n += r[1] - r[0] + 1
	}
	return n
}

func formatSlots(ranges [][2]int) string {
	if len(ranges) == 0 {
		return "no-slots"
	}
	s := make([]string, len(ranges))
	for i, r := range ranges {
		s[i] = strconv.Itoa(r[0])
		if r[1] != r[0] {
			s[i] += "-" + strconv.Itoa(r[1])
		}
	}
	return strings.Join(s, ",")
}

// addrsOf returns the nodes' addresses, sorted.
func addrsOf(nodes []clusterNode) []string {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.addr
	}
	slices.Sort(addrs)
	return addrs
}

// The helpers below serve both Cluster and Sentinel.

// role is the reply of ROLE: for a replica, its master's address and the
// state of its link ("connected" once in sync).
type role struct {
	role, master, state string
}

// roleOf asks s for its ROLE.
func roleOf(ctx context.Context, s *Server) (role, error) {
	reply, err := s.Admin().Do(ctx, "ROLE").Slice()
	if err != nil {
		return role{}, fmt.Errorf("ROLE on %s: %w", s.addr, err)
	}
	var r role
	if len(reply) > 0 {
		r.role, _ = reply[0].(string)
	}
	if r.role == "slave" && len(reply) >= 4 {
		host, _ := reply[1].(string)
		port, _ := reply[2].(int64)
		r.master = host + ":" + strconv.FormatInt(port, 10)
		r.state, _ = reply[3].(string)
	}
	if r.role == "" {
		return role{}, fmt.Errorf("ROLE on %s: unexpected reply %v", s.addr, reply)
	}
	return r, nil
}

// node returns the server at addr, panicking if there is none.
func node(servers []*Server, addr string) *Server {
	for _, s := range servers {
		if s.addr == addr {
			return s
		}
	}
	panic("testserver: no server at " + addr + " in this setup")
}

// running reports whether s is a redis-server process that is running.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// clientsByNode returns the client connections of every running server, by
// address: what Clients returns, less the servers' own links (see
// serverLink).
func clientsByNode(t testing.TB, servers []*Server) map[string][]ClientInfo {
	t.Helper()
	m := make(map[string][]ClientInfo, len(servers))
	for _, s := range servers {
		if s.running() {
			m[s.addr] = slices.DeleteFunc(s.Clients(t), serverLink)
		}
	}
	return m
}

// sentinelLinkName is the client name Sentinel gives its connections to
// masters, replicas and other sentinels.
var sentinelLinkName = regexp.MustCompile(`^sentinel-[0-9a-f]{8}-(cmd|pubsub)$`)

// serverLink reports whether c is a connection a server made rather than a
// client: a replication link (flag S on the master, M on the replica), a
// sentinel's connection, or a connection MIGRATE keeps open to its target.
func serverLink(c ClientInfo) bool {
	return strings.ContainsAny(c.Flags, "SM") || sentinelLinkName.MatchString(c.Name) || c.Cmd == "restore-asking"
}

// retry calls f, with a context of at most 5s, until it returns nil or
// timeout has passed, and returns f's last error.
func retry(timeout time.Duration, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollInterval)
	}
}
