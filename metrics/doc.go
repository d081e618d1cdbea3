// Package metrics exports redisleak's connection statistics and outstanding
// checkouts as Prometheus metrics.
//
// It is a module of its own, github.com/redisleak/redisleak/metrics, so that
// the core module depends on go-redis alone and only programs that import this
// package pull in the Prometheus client.
//
//	client, err := pool.NewClient(&redis.Options{Addr: addr}, pool.WithMaxConnections(32))
//	...
//	prometheus.MustRegister(metrics.NewCollector(client))
//
// [NewCollector] and [Collector.Add] take any [Source]: [*pool.Client],
// [*pool.ClusterClient], [*pool.Ring], or the [pool.UniversalClient] that
// [pool.NewUniversalClient] returns. Give one collector every client of a
// registry (clients sharing a tracker, such as [tracker.Default], would
// otherwise have its series exported twice):
//
//	cluster, err := pool.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}, pool.WithMaxConnectionsPerNode(16))
//	...
//	prometheus.MustRegister(metrics.NewCollector(client, cluster))
//
// [Collector] reads each client's Stats and Report and its tracker's
// [tracker.Tracker.Stats] at scrape time; it starts no goroutine. Per client
// (label client: its Name, the address, "ClientName/address", or a cluster's
// or ring's seed addresses; or the name given to [Collector.Add]), a cluster's
// or ring's series being the total over its nodes:
//
//	redisleak_max_connections                     gauge       the cap (a cluster's or ring's total cap); 0: none
//	redisleak_open_connections{kind}              gauge       open sockets; kind pool, pubsub, conn
//	redisleak_in_use_connections                  gauge    P  open sockets not idle in the pool
//	redisleak_idle_connections                    gauge    P  idle pooled sockets
//	redisleak_dialing_connections                 gauge       sockets being dialed
//	redisleak_draining_connections                gauge    C  closed sockets the server has not yet seen close
//	redisleak_waiting_callers                     gauge    P  callers waiting for a pool turn or a cap slot now
//	redisleak_wait_count_total                    counter  P  waits for a pool turn or a cap slot
//	redisleak_wait_duration_seconds_total         counter  P  time spent waiting
//	redisleak_refusals_total                      counter  W  waits ended in ErrMaxConnections
//	redisleak_canceled_waits_total                counter  P  waits abandoned by a cancelled context
//	redisleak_shed_total                          counter  W  idle sockets closed to make room under the cap
//	redisleak_drain_timeouts_total                counter  C  drains that reached WithDrainTimeout
//	redisleak_dead_conns                          gauge    P  open Conns whose socket the server closed
//	redisleak_reclaimed_conns_total               counter  P  Conns closed by WithReclaimAbandoned
//	redisleak_outstanding_checkouts{kind}         gauge       outstanding checkouts; every kind, 0 when none
//	redisleak_oldest_checkout_age_seconds{kind}   gauge       age of the oldest of each kind, 0 when none
//	redisleak_dropped_checkouts                   gauge       outstanding checkouts garbage-collected unreleased
//	redisleak_sentinel_connections                gauge    F  a failover client's sockets to its sentinels
//
// A figure is exported only where it can be other than 0. C: for a client
// with a cap (its own, or one of its nodes'), since without one a closed
// socket does not drain. P: for a client whose pools the library built,
// which leaves out go-redis's failover cluster client
// (pool.NewUniversalClient with MasterName and RouteByLatency, RouteRandomly
// or IsClusterMode), whose nodes count only their sockets. W: as P, and for
// that failover cluster client's total too when its nodes have a cap: it
// counts its refusals and sheds as a whole, not per node. F: for a failover
// client ([pool.NewFailoverClient]), from the first scrape that finds a
// sentinel socket open.
//
// Per node of a cluster or ring client, with the labels client and node (the
// node's name in reports, "<name>/<addr>"), the figures of the table that
// come from the client's statistics, redisleak_node_max_connections (the
// node's cap, pool.WithMaxConnectionsPerNode) to
// redisleak_node_reclaimed_conns_total, on the same conditions. The node
// label takes one value per node address the client has used: a few, or a few
// dozen for a large cluster, whatever the traffic (a node that moves to a new
// address adds one, for the client's life).
//
// Per distinct tracker of the clients (label tracker: "default" for
// [tracker.Default], otherwise a number):
//
//	redisleak_tracker_checkouts_total             counter
//	redisleak_tracker_releases_total              counter
//	redisleak_tracker_invalid_releases_total      counter  double releases (double Close)
//	redisleak_tracker_dropped_total               counter  definite leaks, dropped clients included
//
// Reading a client's report walks its outstanding checkouts and symbolizes
// their stacks, once per distinct stack, so a scrape costs in proportion to
// what is outstanding, not to the traffic.
//
// The file alerts.yml next to this package holds Prometheus alerting rules
// for these metrics.
package metrics
