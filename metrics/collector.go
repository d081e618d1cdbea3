package metrics

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// kinds are the checkout kinds a client makes, in the order of
// [tracker.Kind]. Every one is exported for every client, 0 when there is
// none, so that a series does not appear and vanish as checkouts come and go.
// A client never holds a checkout of kind client (its own drop is counted by
// its tracker, redisleak_tracker_dropped_total) nor socket: those would be
// series always 0.
var kinds = []tracker.Kind{
	tracker.KindCommand,
	tracker.KindBlocking,
	tracker.KindPipeline,
	tracker.KindConn,
	tracker.KindPubSub,
}

// Label values of redisleak_open_connections' kind, after [pool.OpenByKind].
const (
	openPool   = "pool"
	openPubSub = "pubsub"
	openConn   = "conn"
)

// The tracker label of tracker.Default().
const defaultTrackerLabel = "default"

var (
	clientLabels     = []string{"client"}
	clientKindLabels = []string{"client", "kind"}
	trackerLabels    = []string{"tracker"}

	descOutstanding = prometheus.NewDesc("redisleak_outstanding_checkouts",
		"The client's checkouts outstanding now, by kind (command, blocking, pipeline, conn, pubsub). "+
			"Commands and pipelines come and go; conn or pubsub that only grows is a leak of Conns or Pub/Subs not closed: the client's Report (or the tracker's HTTP handler) names their call sites.",
		clientKindLabels, nil)
	descOldest = prometheus.NewDesc("redisleak_oldest_checkout_age_seconds",
		"Age of the client's oldest outstanding checkout of each kind not yet reported as a definite leak (redisleak_dropped_checkouts counts those), 0 when there is none. "+
			"A command, pipeline or blocking age that keeps growing is a stuck call; a conn or pubsub age of hours is a connection someone forgot, unless it is meant to live that long.",
		clientKindLabels, nil)
	descDropped = prometheus.NewDesc("redisleak_dropped_checkouts",
		"The client's outstanding checkouts whose holder (a Conn or a Pub/Sub) was garbage-collected without Close: definite leaks. "+
			"They stay reported until the process restarts; any value above 0 is a bug to fix at the call site the client's Report names.",
		clientLabels, nil)
	descSentinelConnections = prometheus.NewDesc("redisleak_sentinel_connections",
		"Sockets a failover client (pool.NewFailoverClient) has open to its sentinels, counted apart from redisleak_open_connections: they have a cap of their own per sentinel address and take no slot of the data sockets' cap. "+
			"Exported for a failover client from the first scrape that finds one open. One or two per sentinel is normal (go-redis keeps a Pub/Sub for +switch-master); 0 for long means the client cannot reach any sentinel and will not follow a failover.",
		clientLabels, nil)

	descTrackerCheckouts = prometheus.NewDesc("redisleak_tracker_checkouts_total",
		"Checkouts the tracker has recorded, over all its clients (tracker=\"default\" is tracker.Default(); others are numbered in the order the collector first saw them). "+
			"Minus redisleak_tracker_releases_total it is the tracker's outstanding checkouts.",
		trackerLabels, nil)
	descTrackerReleases = prometheus.NewDesc("redisleak_tracker_releases_total",
		"Checkouts the tracker has seen released. A gap to redisleak_tracker_checkouts_total that keeps widening is a leak; the tracker's Report names the call sites.",
		trackerLabels, nil)
	descTrackerInvalidReleases = prometheus.NewDesc("redisleak_tracker_invalid_releases_total",
		"Releases of a checkout that was already released: a double Close somewhere. Harmless to the pool, but a sign of confused ownership; find the second Close.",
		trackerLabels, nil)
	descTrackerDropped = prometheus.NewDesc("redisleak_tracker_dropped_total",
		"Holders the tracker saw garbage-collected without release, clients dropped without Close included: definite leaks. "+
			"Any increase is a bug; the tracker's Report names the call sites of those still outstanding.",
		trackerLabels, nil)
)

// needs says what a figure of [pool.Stats] needs to be meaningful, that is
// able to be other than 0. A figure is not exported where it cannot be.
type needs int

const (
	// always: every client counts it.
	always needs = iota
	// aPool: a pool the library built (Stats.PoolSize > 0). The nodes of a
	// failover cluster client (pool.NewUniversalClient with MasterName and
	// RouteByLatency, RouteRandomly or IsClusterMode), whose pools go-redis
	// builds itself, count only their sockets, and so does that client's
	// total: its waits, refusals and Conns are not counted.
	aPool
	// aCap: a cap (MaxConnections > 0, for the client or one of its nodes):
	// without one, a closed socket is closed at once, and nothing drains.
	aCap
	// aPoolOrWhole: as aPool, and also the total of a failover cluster
	// client with a cap on its nodes, which counts its refusals and the idle
	// sockets it sheds as a whole, not per node.
	aPoolOrWhole
)

// stat is a figure of [pool.Stats] exported per client (redisleak_<name>)
// and per node of a cluster or ring client (redisleak_node_<name>).
type stat struct {
	name  string
	help  string
	typ   prometheus.ValueType
	needs needs
	value func(*pool.Stats) float64

	client, node *prometheus.Desc // set by init
}

// openStat is redisleak_open_connections, one series per holder.
var openStat = &stat{name: "open_connections", typ: prometheus.GaugeValue, needs: always,
	help: "Sockets the client has open now, each holding a slot of the cap, by holder: kind=\"pool\" (the main and pipeline pools' sockets, idle or serving a command), " +
		"kind=\"pubsub\" (Pub/Sub sockets) and kind=\"conn\" (dedicated Conns that have run a command). Sockets being dialed and sockets closed but not yet confirmed closed by the server hold a slot too: see redisleak_dialing_connections and redisleak_draining_connections. " +
		"Pubsub or conn that only grows means Pub/Subs or Conns that are never closed: see redisleak_outstanding_checkouts and the client's Report for their call sites."}

// openByKind are openStat's series: the kind label and the value of each.
var openByKind = []struct {
	kind  string
	value func(*pool.Stats) int
}{
	{openPool, func(s *pool.Stats) int { return s.Open.Pool }},
	{openPubSub, func(s *pool.Stats) int { return s.Open.PubSub }},
	{openConn, func(s *pool.Stats) int { return s.Open.Conn }},
}

// stats are the figures of [pool.Stats] the collector exports, openStat
// included, in the order they are collected.
var stats = []*stat{
	{name: "max_connections", typ: prometheus.GaugeValue, needs: always,
		value: func(s *pool.Stats) float64 { return float64(s.MaxConnections) },
		help: "The hard cap on the sockets the client may have open at once (pool.WithMaxConnections, after NewClient reconciled it with PoolSize); 0 when there is none. " +
			"For a cluster or ring client it is the total cap across its nodes, and redisleak_node_max_connections each node's cap (pool.WithMaxConnectionsPerNode). " +
			"Compare redisleak_open_connections with it: when open stays near the cap, callers wait and then get refused; raise the cap or find who holds the sockets."},
	openStat,
	{name: "in_use_connections", typ: prometheus.GaugeValue, needs: aPool,
		value: func(s *pool.Stats) float64 { return float64(s.InUse) },
		help: "Open sockets that are not idle in the pool: serving a command, held by a Pub/Sub or a dedicated Conn. " +
			"In use close to redisleak_max_connections means the cap is the bottleneck; if the traffic does not explain it, look for long-held checkouts."},
	{name: "idle_connections", typ: prometheus.GaugeValue, needs: aPool,
		value: func(s *pool.Stats) float64 { return float64(s.Idle) },
		help:  "Sockets idle in the pool, ready for the next command. Idle at 0 while callers wait (redisleak_waiting_callers above 0, redisleak_wait_count_total rising) means every slot of the cap is busy."},
	{name: "dialing_connections", typ: prometheus.GaugeValue, needs: always,
		value: func(s *pool.Stats) float64 { return float64(s.Dialing) },
		help:  "Sockets being dialed now; under a cap each already holds a slot. Dials take a round trip: a value that stays above 0 means the server is slow to accept or unreachable, and the slots held by the dials are missing to the callers."},
	{name: "draining_connections", typ: prometheus.GaugeValue, needs: aCap,
		value: func(s *pool.Stats) float64 { return float64(s.Draining) },
		help: "Sockets the client has closed whose close the server has not confirmed yet; each keeps its slot of the cap until the server does, or pool.WithDrainTimeout passes, so that the server never counts more of the client's sockets than the cap. " +
			"Exported for a client with a cap (without one nothing drains). A live server confirms in a round trip: many draining for long means a stalled server or a slow path, and the slots they hold are missing to the callers."},
	{name: "waiting_callers", typ: prometheus.GaugeValue, needs: aPool,
		value: func(s *pool.Stats) float64 { return float64(s.Waiting) },
		help:  "Callers waiting now for a pool turn or a slot of the cap. Above 0 for longer than a burst means the pool or the cap is the bottleneck: see redisleak_in_use_connections and who holds the sockets."},
	{name: "wait_count_total", typ: prometheus.CounterValue, needs: aPool,
		value: func(s *pool.Stats) float64 { return float64(s.WaitCount) },
		help:  "Waits for a pool turn or a slot of the cap that got one (a wait that ends in a refusal counts in redisleak_refusals_total instead). A rate that rises with load is expected near the cap; a steady rise without load points to sockets held and not given back."},
	{name: "wait_duration_seconds_total", typ: prometheus.CounterValue, needs: aPool,
		value: func(s *pool.Stats) float64 { return s.WaitDuration.Seconds() },
		help: "Total time spent in waits for a pool turn or a slot of the cap. Divided by redisleak_wait_count_total it is the mean wait; " +
			"a mean approaching PoolTimeout means refusals are next: raise the cap or release connections sooner."},
	{name: "refusals_total", typ: prometheus.CounterValue, needs: aPoolOrWhole,
		value: func(s *pool.Stats) float64 { return float64(s.Timeouts) },
		help: "Waits that ended in a refusal (an error matching pool.ErrMaxConnections) because no slot of the cap freed up within PoolTimeout or the caller's deadline. " +
			"Any increase is a failed request: the refusal's error names the call sites holding the sockets; fix those or raise the cap."},
	{name: "canceled_waits_total", typ: prometheus.CounterValue, needs: aPool,
		value: func(s *pool.Stats) float64 { return float64(s.Canceled) },
		help: "Waits for a slot of the cap or a Pub/Sub reservation abandoned because the caller's context was cancelled first. " +
			"A rise alongside redisleak_wait_count_total means callers give up before the pool can serve them: the cap is too small or sockets are held too long."},
	{name: "shed_total", typ: prometheus.CounterValue, needs: aPoolOrWhole,
		value: func(s *pool.Stats) float64 { return float64(s.Shed) },
		help: "Idle pooled sockets closed to make room under the cap: for a Pub/Sub socket or, in a cluster or ring client, for a socket that another node (or another client of the same node) needs. " +
			"A steady rate costs the pool reconnects: reuse Pub/Subs, or raise the cap."},
	{name: "drain_timeouts_total", typ: prometheus.CounterValue, needs: aCap,
		value: func(s *pool.Stats) float64 { return float64(s.DrainTimeouts) },
		help: "Closed sockets whose close the server did not confirm within pool.WithDrainTimeout; their slot was given back all the same, so for a while the server may count more of the client's sockets than the cap. " +
			"Exported for a client with a cap. A rise means a stalled server or a path slower than the drain timeout."},
	{name: "dead_conns", typ: prometheus.GaugeValue, needs: aPool,
		value: func(s *pool.Stats) float64 { return float64(s.DeadConns) },
		help: "Open dedicated Conns whose socket the server has closed (found about once a second). Each holds a turn of the pool until it is closed, or reclaimed (pool.WithReclaimAbandoned): " +
			"its holder has likely forgotten it; the client's Report names where it was opened."},
	{name: "reclaimed_conns_total", typ: prometheus.CounterValue, needs: aPool,
		value: func(s *pool.Stats) float64 { return float64(s.Reclaimed) },
		help:  "Dedicated Conns the client closed on their holder's behalf (pool.WithReclaimAbandoned; 0 without it). Each is a Conn its holder forgot to close: the client logged where it was opened."},
}

// nodeHelp is the help of a per-node family: the client family's, for one node.
func nodeHelp(st *stat) string {
	return "redisleak_" + st.name + " for one node of a cluster or ring client (node=\"<name>/<addr>\", the node's name in reports; " +
		"max_connections is then the node's cap, pool.WithMaxConnectionsPerNode). The client's series are the total over its nodes. " + st.help
}

func init() {
	for _, st := range stats {
		labels, nodeLabels := clientLabels, []string{"client", "node"}
		if st == openStat {
			labels, nodeLabels = clientKindLabels, []string{"client", "node", "kind"}
		}
		st.client = prometheus.NewDesc("redisleak_"+st.name, st.help, labels, nil)
		st.node = prometheus.NewDesc("redisleak_node_"+st.name, nodeHelp(st), nodeLabels, nil)
	}
}

// Source is what the collector reads of a client: [*pool.Client],
// [*pool.ClusterClient], [*pool.Ring], and any [pool.UniversalClient] (what
// [pool.NewUniversalClient] returns) are Sources.
type Source interface {
	// Stats returns the client's connection statistics now; a cluster or
	// ring client's nodes in Stats.Nodes.
	Stats() pool.Stats
	// Report returns the client's outstanding checkouts now.
	Report() tracker.Report
	// Tracker returns the tracker that records the client's checkouts.
	Tracker() *tracker.Tracker
}

// Collector exports the connection statistics and outstanding checkouts of
// redisleak clients as Prometheus metrics. It implements
// [prometheus.Collector]: every value is read from the clients when the
// registry is scraped, and nothing runs in between. It is safe for concurrent
// use.
//
// A cluster or ring client is exported under its name like a single client,
// its series being the total over its nodes, and each node's figures again
// under the label node, in the families redisleak_node_* (see the package
// documentation). The node label takes one value per node address the client
// has used, so its cardinality is the number of nodes (a few, a few dozen
// for a large cluster), not anything that grows with the traffic.
//
// The collector refers to its clients weakly, so that adding a client does
// not keep it alive: a client garbage-collected without Close is still
// reported as a leak by its tracker (redisleak_tracker_dropped_total), and its
// per-client series disappear. This holds for [*pool.Client],
// [*pool.ClusterClient] and [*pool.Ring], whatever the static type they are
// added as; a Source of another type is held until it is removed. Remove a
// client when you close it; a closed client still in the collector keeps
// exporting its last values.
//
// Register one Collector per registry: two collectors sharing a client or a
// tracker export the same series twice, which the registry refuses.
type Collector struct {
	mu       sync.Mutex
	clients  map[string]*entry
	trackers map[*tracker.Tracker]*trackerRef
	nextID   int // last index given to a tracker other than tracker.Default()
}

type entry struct {
	// client returns the client, or nil once it has been garbage-collected.
	client func() Source
	// tracker is held strongly: its counters outlive the client, so that a
	// client dropped without Close still shows in redisleak_tracker_dropped_total.
	tracker *tracker.Tracker
	// sentinels is set once the client has had a sentinel socket open: it
	// is a failover client, and redisleak_sentinel_connections is exported
	// for it from then on.
	sentinels atomic.Bool
}

type trackerRef struct {
	label string
	users int // entries that use the tracker
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of clients, each labelled with its name
// (the Name method of [*pool.Client], [*pool.ClusterClient] and [*pool.Ring]:
// the address, or "ClientName/address" when the options name the client; a
// cluster's or ring's seed addresses, comma-separated). A second client of a
// name already present is labelled "name#2", a third "name#3", and so on.
// It panics on a nil client, and on a client without a Name method: add such
// a client with [Collector.Add].
//
// A [pool.UniversalClient] is a Source, so the result of
// [pool.NewUniversalClient] can be passed as it is. Clients of a static type
// other than Source need converting: a []*pool.Client as
// NewCollector(clients...) does not compile; pass each client, or build a
// []metrics.Source.
func NewCollector(clients ...Source) *Collector {
	c := &Collector{
		clients:  make(map[string]*entry),
		trackers: make(map[*tracker.Tracker]*trackerRef),
	}
	for _, cl := range clients {
		if isNil(cl) {
			panic(fmt.Sprintf("metrics: NewCollector: nil client (%T)", cl))
		}
		named, ok := cl.(interface{ Name() string })
		if !ok {
			panic(fmt.Sprintf("metrics: NewCollector: %T has no Name method; add it under a name of your own with Collector.Add", cl))
		}
		name := named.Name()
		for n := 2; c.clients[name] != nil; n++ {
			name = named.Name() + "#" + strconv.Itoa(n)
		}
		c.add(name, cl)
	}
	return c
}

// Add exports the client under the label client=name, replacing the client
// already exported under that name, if any. It panics on a nil client or an
// empty name.
func (c *Collector) Add(name string, cl Source) {
	if isNil(cl) {
		panic(fmt.Sprintf("metrics: Collector.Add: nil client (%T)", cl))
	}
	if name == "" {
		panic("metrics: Collector.Add: empty name")
	}
	c.add(name, cl)
}

// isNil reports whether cl is nil, or a nil pointer (or map, ...) of some type.
func isNil(cl Source) bool {
	if cl == nil {
		return true
	}
	switch v := reflect.ValueOf(cl); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// weakly returns a function that returns cl while it is alive, without
// keeping it alive, for the clients of this module; any other Source is held.
func weakly(cl Source) func() Source {
	switch cl := cl.(type) {
	case *pool.Client:
		return weakRef(cl)
	case *pool.ClusterClient:
		return weakRef(cl)
	case *pool.Ring:
		return weakRef(cl)
	}
	return func() Source { return cl }
}

func weakRef[T any, P interface {
	*T
	Source
}](cl P) func() Source {
	w := weak.Make((*T)(cl))
	return func() Source {
		if v := w.Value(); v != nil {
			return P(v)
		}
		return nil
	}
}

func (c *Collector) add(name string, cl Source) {
	t := cl.Tracker()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(name)
	c.clients[name] = &entry{client: weakly(cl), tracker: t}
	ref := c.trackers[t]
	if ref == nil {
		ref = &trackerRef{}
		if t == tracker.Default() {
			ref.label = defaultTrackerLabel
		} else {
			c.nextID++
			ref.label = strconv.Itoa(c.nextID)
		}
		c.trackers[t] = ref
	}
	ref.users++
}

// Remove stops exporting the client labelled name, and its tracker's
// counters when no other client of the collector uses that tracker. Removing
// a name that is not there does nothing.
func (c *Collector) Remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(name)
}

func (c *Collector) removeLocked(name string) {
	e := c.clients[name]
	if e == nil {
		return
	}
	delete(c.clients, name)
	if ref := c.trackers[e.tracker]; ref != nil {
		ref.users--
		if ref.users <= 0 {
			delete(c.trackers, e.tracker)
		}
	}
}

// Describe sends the descriptors of every metric the collector may export.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, st := range stats {
		ch <- st.client
		ch <- st.node
	}
	for _, d := range []*prometheus.Desc{
		descOutstanding, descOldest, descDropped, descSentinelConnections,
		descTrackerCheckouts, descTrackerReleases, descTrackerInvalidReleases, descTrackerDropped,
	} {
		ch <- d
	}
}

type namedClient struct {
	name   string
	client Source
	entry  *entry
}

type namedTracker struct {
	label   string
	tracker *tracker.Tracker
}

// Collect reads every client's statistics and report, and every distinct
// tracker's counters, and sends them as constant metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	clients, trackers := c.snapshot()
	for _, nc := range clients {
		collectClient(ch, nc)
	}
	for _, nt := range trackers {
		collectTracker(ch, nt.label, nt.tracker)
	}
}

// snapshot copies the live clients and the trackers under the lock, so that
// the scrape itself runs without it.
func (c *Collector) snapshot() ([]namedClient, []namedTracker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clients := make([]namedClient, 0, len(c.clients))
	for name, e := range c.clients {
		if cl := e.client(); cl != nil {
			clients = append(clients, namedClient{name: name, client: cl, entry: e})
		}
	}
	trackers := make([]namedTracker, 0, len(c.trackers))
	for t, ref := range c.trackers {
		trackers = append(trackers, namedTracker{label: ref.label, tracker: t})
	}
	slices.SortFunc(clients, func(a, b namedClient) int { return cmp.Compare(a.name, b.name) })
	slices.SortFunc(trackers, func(a, b namedTracker) int { return cmp.Compare(a.label, b.label) })
	return clients, trackers
}

// meaningful reports whether a figure that needs n can be other than 0 in
// s: a client's total when node is false, one of its nodes' otherwise.
func meaningful(n needs, s *pool.Stats, node bool) bool {
	switch n {
	case aPool:
		// A total without nodes yet (a cluster or ring client not used so
		// far) is all zeros, but real ones.
		return s.PoolSize > 0 || (!node && len(s.Nodes) == 0)
	case aPoolOrWhole:
		return meaningful(aPool, s, node) || (!node && meaningful(aCap, s, node))
	case aCap:
		if s.MaxConnections > 0 {
			return true
		}
		for _, ns := range s.Nodes {
			if ns.MaxConnections > 0 {
				return true
			}
		}
		return false
	}
	return true
}

// collectStats sends the figures of s, a client's (node "") or one of its
// nodes'.
func collectStats(ch chan<- prometheus.Metric, s *pool.Stats, client, node string) {
	labels := []string{client}
	if node != "" {
		labels = append(labels, node)
	}
	for _, st := range stats {
		if !meaningful(st.needs, s, node != "") {
			continue
		}
		d := st.client
		if node != "" {
			d = st.node
		}
		if st == openStat {
			for _, o := range openByKind {
				ch <- prometheus.MustNewConstMetric(d, st.typ, float64(o.value(s)), append(slices.Clip(labels), o.kind)...)
			}
			continue
		}
		ch <- prometheus.MustNewConstMetric(d, st.typ, st.value(s), labels...)
	}
}

func collectClient(ch chan<- prometheus.Metric, nc namedClient) {
	name := nc.name
	st := nc.client.Stats()
	collectStats(ch, &st, name, "")
	for _, node := range slices.Sorted(maps.Keys(st.Nodes)) {
		ns := st.Nodes[node]
		collectStats(ch, &ns, name, node)
	}
	if st.SentinelConnections > 0 {
		nc.entry.sentinels.Store(true)
	}
	if nc.entry.sentinels.Load() {
		ch <- prometheus.MustNewConstMetric(descSentinelConnections, prometheus.GaugeValue, float64(st.SentinelConnections), name)
	}

	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	type byKind struct {
		count  int
		oldest float64
	}
	var (
		per     = make(map[tracker.Kind]*byKind, len(kinds))
		dropped int
	)
	for _, k := range kinds {
		per[k] = &byKind{}
	}
	for _, g := range nc.client.Report().Groups {
		dropped += g.Dropped
		b := per[g.Kind]
		if b == nil { // a kind this package does not know: count it under its own name
			b = &byKind{}
			per[g.Kind] = b
		}
		b.count += g.Count
		if g.Dropped < g.Count { // the oldest may be a dropped one: an age alert would never clear
			b.oldest = max(b.oldest, g.Oldest.Seconds())
		}
	}
	for k, b := range per {
		gauge(descOutstanding, float64(b.count), name, k.String())
		gauge(descOldest, b.oldest, name, k.String())
	}
	gauge(descDropped, float64(dropped), name)
}

func collectTracker(ch chan<- prometheus.Metric, label string, t *tracker.Tracker) {
	st := t.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
	}
	counter(descTrackerCheckouts, st.Checkouts)
	counter(descTrackerReleases, st.Releases)
	counter(descTrackerInvalidReleases, st.InvalidReleases)
	counter(descTrackerDropped, st.Dropped)
}
