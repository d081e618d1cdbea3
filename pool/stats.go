package pool

import "time"

// Stats is a snapshot of a client's connections, in the vocabulary of
// database/sql's DBStats and pgxpool's Stat. Every count is measured, not
// derived: the sockets by state and holder are counted by the library's
// dialer as they change.
type Stats struct {
	// The limits the client runs with, after NewClient reconciled the
	// go-redis options with the cap (see WithMaxConnections).
	MaxConnections int           // the hard cap on sockets; 0: none
	PoolSize       int           // the main pool's size
	PubSubShare    int           // under a cap, Pub/Sub sockets that open without a turn of the pool
	PoolTimeout    time.Duration // the longest a caller waits for a socket

	// slots is SlotsHeld's.
	slots int
	// OpenConnections is the number of sockets open now: pooled, Pub/Sub and
	// dedicated.
	OpenConnections int
	Open            OpenByKind // OpenConnections by who holds them
	Dialing         int        // sockets being dialed
	Draining        int        // sockets closed but not yet confirmed gone by the server
	InUse           int        // open sockets not idle in the pool: serving a command, a Conn or a Pub/Sub
	Idle            int        // sockets idle in the pool
	Waiting         int        // callers waiting for a socket now

	// WaitCount counts the waits for a pool turn or a cap slot that got
	// one (go-redis's pool counts only those); a wait that ends in a refusal
	// counts in Timeouts instead.
	WaitCount    int64
	WaitDuration time.Duration // total time spent in the waits WaitCount counts
	Timeouts     int64         // waits that ended in a refusal (ErrMaxConnections)
	Canceled     int64         // waits for a slot or a Pub/Sub reservation abandoned because the caller's context was cancelled
	Shed         int64         // pooled sockets closed to make room for a Pub/Sub
	// DrainTimeouts counts closed sockets whose close the server did not
	// confirm within the drain bound (see WithDrainTimeout): their slot was
	// given back all the same.
	DrainTimeouts int64

	// DeadConns counts the open Conns whose socket the server has closed
	// (found about once a second); each holds a turn of the pool until it is
	// closed, or reclaimed (see WithReclaimAbandoned), and then no longer
	// counts.
	DeadConns int
	Reclaimed int64 // Conns the client closed on their holder's behalf

	Outstanding int // the client's outstanding checkouts in its tracker

	// Nodes, for a cluster or ring client, has one entry per node address
	// the client has used, keyed by the node's name ("<name>/<addr>"), each
	// counted as for a single client under the per-node cap
	// (WithMaxConnectionsPerNode). The fields above then add the nodes' counts
	// up, except MaxConnections, the total cap (WithMaxConnections; 0: none),
	// whose slots SlotsHeld counts, and PoolSize, PubSubShare and
	// PoolTimeout, which are one node's. Nil for a single client.
	Nodes map[string]Stats
	// SentinelConnections, for a failover client, counts the sockets open
	// to sentinels; they have their own cap per sentinel address and never
	// take a slot of the data connections'.
	SentinelConnections int
}

// OpenByKind splits the open sockets by holder.
type OpenByKind struct {
	Pool   int // the pools' sockets, idle or serving a command
	PubSub int // Pub/Sub sockets
	Conn   int // sockets of dedicated Conns
}

func (o OpenByKind) total() int { return o.Pool + o.PubSub + o.Conn }

// Stats returns the client's connection statistics now.
func (c *Client) Stats() Stats { return c.st.stats() }

func (st *state) stats() Stats {
	st.sweepConns()
	ps := st.rc.PoolStats()
	n := st.lim.counts()
	idle := int(ps.IdleConns)
	if ps.PipelineStats != nil {
		idle += int(ps.PipelineStats.IdleConns)
	}
	s := Stats{
		MaxConnections:  st.set.maxConnections,
		PoolSize:        st.set.poolSize,
		PubSubShare:     st.set.pubsubShare,
		PoolTimeout:     st.set.poolTimeout,
		slots:           n.held,
		OpenConnections: n.open.total(),
		Open:            n.open,
		Dialing:         n.dialing,
		Draining:        n.draining,
		Idle:            idle,
		InUse:           max(0, n.open.total()-idle),
		Waiting:         st.waiting(),
		WaitCount:       int64(ps.WaitCount) + st.lim.waitCount.Load(),
		WaitDuration:    time.Duration(ps.WaitDurationNs + st.lim.waitDuration.Load()),
		Timeouts:        st.refusals.Load(),
		Canceled:        st.lim.canceled.Load() + st.canceled.Load(),
		Shed:            st.shed.Load(),
		DrainTimeouts:   st.lim.drainTimeouts.Load(),
		DeadConns:       int(st.deadConns.Load()),
		Reclaimed:       st.reclaimed.Load(),
		Outstanding:     st.scope.Outstanding(),
	}
	if st.sentinels != nil {
		s.SentinelConnections = st.sentinels.open()
	}
	return s
}

// SlotsHeld is the number of the cap's slots held, counted exactly: sockets
// open, being dialed, or closed and not yet confirmed gone by the server.
// Under a cap it never exceeds MaxConnections. OpenConnections, Dialing and
// Draining are read one by one and may add up to one more or less while a
// socket changes state.
func (s Stats) SlotsHeld() int { return s.slots }

// stats is the Stats of a cluster or ring client: the nodes' counts added
// up, and each node's in Nodes.
func (g *group) stats() Stats {
	g.mu.Lock()
	latest := make([]*state, 0, len(g.latest))
	for _, st := range g.latest {
		latest = append(latest, st)
	}
	g.mu.Unlock()
	t := Stats{Nodes: make(map[string]Stats, len(latest))}
	for _, st := range latest {
		s := st.stats()
		t.Nodes[st.scope.Name()] = s
		t.PoolSize, t.PubSubShare, t.PoolTimeout = s.PoolSize, s.PubSubShare, s.PoolTimeout
		t.add(s)
	}
	for addr, l := range g.addressLimiters() {
		// A failover cluster client's node, whose client go-redis built:
		// only its sockets are known.
		c := l.counts()
		s := Stats{MaxConnections: int(l.max), slots: c.held, OpenConnections: c.open.total(), Open: c.open,
			Dialing: c.dialing, Draining: c.draining, DrainTimeouts: l.drainTimeouts.Load()}
		t.Nodes[g.clientName+"/"+addr] = s
		t.add(s)
	}
	if g.direct {
		// A failover cluster client's refusals name an address, and its
		// sheds are of a node, but both are counted by the client as a
		// whole: its node clients are go-redis's.
		t.Timeouts += g.root.refusals.Load()
		t.Shed += g.root.shed.Load()
	}
	if g.total != nil {
		t.MaxConnections = int(g.total.max)
		t.slots = int(g.total.held.Load())
	}
	t.Outstanding = g.scope.Outstanding()
	return t
}

// add adds the counts of s, one node's, to t, the total.
func (t *Stats) add(s Stats) {
	t.slots += s.slots
	t.OpenConnections += s.OpenConnections
	t.Open.Pool += s.Open.Pool
	t.Open.PubSub += s.Open.PubSub
	t.Open.Conn += s.Open.Conn
	t.Dialing += s.Dialing
	t.Draining += s.Draining
	t.InUse += s.InUse
	t.Idle += s.Idle
	t.Waiting += s.Waiting
	t.WaitCount += s.WaitCount
	t.WaitDuration += s.WaitDuration
	t.Timeouts += s.Timeouts
	t.Canceled += s.Canceled
	t.Shed += s.Shed
	t.DrainTimeouts += s.DrainTimeouts
	t.DeadConns += s.DeadConns
	t.Reclaimed += s.Reclaimed
}
