package pool

import "time"

// Stats is a snapshot of a client's connections, in the vocabulary of
// database/sql's DBStats and pgxpool's Stat.
type Stats struct {
	// The limits the client runs with, after NewClient reconciled the
	// go-redis options with the cap (see WithMaxConnections).
	MaxConnections int           // the hard cap on open sockets
	PoolSize       int           // the main pool's size
	MaxActiveConns int           // go-redis's MaxActiveConns; 0 means none below the cap
	PoolTimeout    time.Duration // the longest a caller waits for a socket

	// OpenConnections is the number of sockets open now, each holding a slot
	// of the cap: pooled, Pub/Sub and dedicated, plus sockets closed but not
	// yet confirmed closed by the server. It never exceeds MaxConnections.
	OpenConnections int
	Open            OpenByKind // OpenConnections by who holds them
	InUse           int        // OpenConnections that are not idle in the pool
	Idle            int        // sockets idle in the pool

	WaitCount    int64         // waits for a pool turn or a cap slot
	WaitDuration time.Duration // total time spent in those waits
	Timeouts     int64         // waits that ended in a refusal (ErrMaxConnections)
	Canceled     int64         // waits for a slot or a Pub/Sub reservation abandoned because the caller's context was cancelled
	Shed         int64         // pooled sockets closed to make room for a Pub/Sub

	Outstanding int // the client's outstanding checkouts in its tracker
}

// OpenByKind splits the open sockets by holder.
type OpenByKind struct {
	Pool   int // the main pool's sockets, idle or serving a command
	PubSub int // Pub/Sub sockets
	Conn   int // dedicated Conns that have taken their socket
}

// Stats returns the client's connection statistics now.
func (c *Client) Stats() Stats {
	st := c.st
	ps := st.rc.PoolStats()
	s := Stats{
		MaxConnections:  st.set.maxConnections,
		PoolSize:        st.set.poolSize,
		MaxActiveConns:  st.set.maxActiveConns,
		PoolTimeout:     st.set.poolTimeout,
		OpenConnections: int(st.lim.open.Load()),
		Idle:            int(ps.IdleConns),
		WaitCount:       int64(ps.WaitCount) + st.lim.waitCount.Load(),
		WaitDuration:    time.Duration(ps.WaitDurationNs + st.lim.waitDuration.Load()),
		Timeouts:        st.refusals.Load(),
		Canceled:        st.lim.canceled.Load() + st.canceled.Load(),
		Shed:            st.shed.Load(),
		Outstanding:     st.scope.Outstanding(),
	}
	s.Open.PubSub = int(ps.PubSubStats.Active)
	s.Open.Conn = int(st.connSockets.Load())
	s.Open.Pool = max(0, s.OpenConnections-s.Open.PubSub-s.Open.Conn)
	s.InUse = max(0, s.OpenConnections-s.Idle)
	return s
}
