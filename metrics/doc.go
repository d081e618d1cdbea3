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
// [Collector] reads [pool.Client.Stats], [pool.Client.Report] and
// [tracker.Tracker.Stats] at scrape time; it starts no goroutine. Per client
// (label client, the address unless given a name with [Collector.Add]):
//
//	redisleak_max_connections                     gauge    the cap
//	redisleak_open_connections{kind}              gauge    open sockets; kind pool, pubsub, conn
//	redisleak_in_use_connections                  gauge    open sockets not idle in the pool
//	redisleak_idle_connections                    gauge    idle pooled sockets
//	redisleak_wait_count_total                    counter  waits for a pool turn or a cap slot
//	redisleak_wait_duration_seconds_total         counter  time spent waiting
//	redisleak_refusals_total                      counter  waits ended in ErrMaxConnections
//	redisleak_canceled_waits_total                counter  waits abandoned by a cancelled context
//	redisleak_shed_total                          counter  idle sockets closed to make room for a Pub/Sub
//	redisleak_outstanding_checkouts{kind}         gauge    outstanding checkouts; every kind, 0 when none
//	redisleak_oldest_checkout_age_seconds{kind}   gauge    age of the oldest of each kind, 0 when none
//	redisleak_dropped_checkouts                   gauge    outstanding checkouts garbage-collected unreleased
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
