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

	WaitCount    int64         // waits for a pool turn or a cap slot
	WaitDuration time.Duration // total time spent in those waits
	Timeouts     int64         // waits that ended in a refusal (ErrMaxConnections)
	Canceled     int64         // waits for a slot or a Pub/Sub reservation abandoned because the caller's context was cancelled
	Shed         int64         // pooled sockets closed to make room for a Pub/Sub
	// DrainTimeouts counts closed sockets whose close the server did not
	// confirm within the drain bound (see WithDrainTimeout): their slot was
	// given back all the same.
	DrainTimeouts int64

	// DeadConns counts the open Conns whose socket the server has closed
	// (found about once a second); each holds a turn of the pool until it is
	// closed, or reclaimed (see WithReclaimAbandoned).
	DeadConns int
	Reclaimed int64 // Conns the client closed on their holder's behalf

	Outstanding int // the client's outstanding checkouts in its tracker
}

// OpenByKind splits the open sockets by holder.
type OpenByKind struct {
	Pool   int // the pools' sockets, idle or serving a command
	PubSub int // Pub/Sub sockets
	Conn   int // sockets of dedicated Conns
}

func (o OpenByKind) total() int { return o.Pool + o.PubSub + o.Conn }

// Stats returns the client's connection statistics now.
func (c *Client) Stats() Stats {
	st := c.st
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
	return s
}

// SlotsHeld is the number of the cap's slots held, counted exactly: sockets
// open, being dialed, or closed and not yet confirmed gone by the server.
// Under a cap it never exceeds MaxConnections. OpenConnections, Dialing and
// Draining are read one by one and may add up to one more or less while a
// socket changes state.
func (s Stats) SlotsHeld() int { return s.slots }
