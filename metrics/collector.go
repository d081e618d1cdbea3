package metrics

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
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

	descMaxConnections = prometheus.NewDesc("redisleak_max_connections",
		"The hard cap on the sockets the client may have open at once (pool.WithMaxConnections, after NewClient reconciled it with PoolSize). "+
			"Compare redisleak_open_connections with it: when open stays near the cap, callers wait and then get refused; raise the cap or find who holds the sockets.",
		clientLabels, nil)
	descOpenConnections = prometheus.NewDesc("redisleak_open_connections",
		"Sockets the client has open now, each holding a slot of the cap, by holder: kind=\"pool\" (the main pool, idle or serving a command, plus sockets closed but not yet confirmed closed by the server), "+
			"kind=\"pubsub\" (Pub/Sub sockets) and kind=\"conn\" (dedicated Conns that have run a command). "+
			"Pubsub or conn that only grows means Pub/Subs or Conns that are never closed: see redisleak_outstanding_checkouts and the client's Report for their call sites.",
		clientKindLabels, nil)
	descInUseConnections = prometheus.NewDesc("redisleak_in_use_connections",
		"Open sockets that are not idle in the pool: serving a command, held by a Pub/Sub or a dedicated Conn, or closing. "+
			"In use close to redisleak_max_connections means the cap is the bottleneck; if the traffic does not explain it, look for long-held checkouts.",
		clientLabels, nil)
	descIdleConnections = prometheus.NewDesc("redisleak_idle_connections",
		"Sockets idle in the main pool, ready for the next command. Idle at 0 while callers wait (redisleak_wait_count_total rising) means every slot of the cap is busy.",
		clientLabels, nil)
	descWaitCount = prometheus.NewDesc("redisleak_wait_count_total",
		"Waits for a pool turn or a slot of the cap. A rate that rises with load is expected near the cap; a steady rise without load points to sockets held and not given back.",
		clientLabels, nil)
	descWaitDuration = prometheus.NewDesc("redisleak_wait_duration_seconds_total",
		"Total time spent in waits for a pool turn or a slot of the cap. Divided by redisleak_wait_count_total it is the mean wait; "+
			"a mean approaching PoolTimeout means refusals are next: raise the cap or release connections sooner.",
		clientLabels, nil)
	descRefusals = prometheus.NewDesc("redisleak_refusals_total",
		"Waits that ended in a refusal (an error matching pool.ErrMaxConnections) because no slot of the cap freed up within PoolTimeout or the caller's deadline. "+
			"Any increase is a failed request: the refusal's error names the call sites holding the sockets; fix those or raise the cap.",
		clientLabels, nil)
	descCanceledWaits = prometheus.NewDesc("redisleak_canceled_waits_total",
		"Waits for a slot of the cap or a Pub/Sub reservation abandoned because the caller's context was cancelled first. "+
			"A rise alongside redisleak_wait_count_total means callers give up before the pool can serve them: the cap is too small or sockets are held too long.",
		clientLabels, nil)
	descShed = prometheus.NewDesc("redisleak_shed_total",
		"Idle pooled sockets closed to make room for a Pub/Sub socket under the cap. A steady rate means Pub/Subs keep opening near the cap, "+
			"costing the pool reconnects; reuse Pub/Subs or raise the cap.",
		clientLabels, nil)
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

	allDescs = []*prometheus.Desc{
		descMaxConnections, descOpenConnections, descInUseConnections, descIdleConnections,
		descWaitCount, descWaitDuration, descRefusals, descCanceledWaits, descShed,
		descOutstanding, descOldest, descDropped,
		descTrackerCheckouts, descTrackerReleases, descTrackerInvalidReleases, descTrackerDropped,
	}
)

// Collector exports the connection statistics and outstanding checkouts of
// redisleak clients as Prometheus metrics. It implements
// [prometheus.Collector]: every value is read from the clients when the
// registry is scraped, and nothing runs in between. It is safe for concurrent
// use.
//
// The collector refers to its clients weakly, so that adding a client does
// not keep it alive: a client garbage-collected without Close is still
// reported as a leak by its tracker (redisleak_tracker_dropped_total), and its
// per-client series disappear. Remove a client when you close it; a closed
// client still in the collector keeps exporting its last values.
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
	client weak.Pointer[pool.Client]
	// tracker is held strongly: its counters outlive the client, so that a
	// client dropped without Close still shows in redisleak_tracker_dropped_total.
	tracker *tracker.Tracker
}

type trackerRef struct {
	label string
	users int // entries that use the tracker
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of clients, each labelled with its name
// (pool.Client.Name: the address, or "ClientName/address" when the options
// name the client). A second client of a name already present is labelled
// "name#2", a third "name#3", and so on. It panics on a nil client.
func NewCollector(clients ...*pool.Client) *Collector {
	c := &Collector{
		clients:  make(map[string]*entry),
		trackers: make(map[*tracker.Tracker]*trackerRef),
	}
	for _, cl := range clients {
		if cl == nil {
			panic("metrics: NewCollector: nil *pool.Client")
		}
		name := cl.Name()
		for n := 2; c.clients[name] != nil; n++ {
			name = cl.Name() + "#" + strconv.Itoa(n)
		}
		c.add(name, cl)
	}
	return c
}

// Add exports the client under the label client=name, replacing the client
// already exported under that name, if any. It panics on a nil client or an
// empty name.
func (c *Collector) Add(name string, cl *pool.Client) {
	if cl == nil {
		panic("metrics: Collector.Add: nil *pool.Client")
	}
	if name == "" {
		panic("metrics: Collector.Add: empty name")
	}
	c.add(name, cl)
}

func (c *Collector) add(name string, cl *pool.Client) {
	t := cl.Tracker()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(name)
	c.clients[name] = &entry{client: weak.Make(cl), tracker: t}
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

// Describe sends the descriptors of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

type namedClient struct {
	name   string
	client *pool.Client
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
		collectClient(ch, nc.name, nc.client)
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
		if cl := e.client.Value(); cl != nil {
			clients = append(clients, namedClient{name: name, client: cl})
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

func collectClient(ch chan<- prometheus.Metric, name string, cl *pool.Client) {
	st := cl.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}

	gauge(descMaxConnections, float64(st.MaxConnections), name)
	gauge(descOpenConnections, float64(st.Open.Pool), name, openPool)
	gauge(descOpenConnections, float64(st.Open.PubSub), name, openPubSub)
	gauge(descOpenConnections, float64(st.Open.Conn), name, openConn)
	gauge(descInUseConnections, float64(st.InUse), name)
	gauge(descIdleConnections, float64(st.Idle), name)

	counter(descWaitCount, float64(st.WaitCount), name)
	counter(descWaitDuration, st.WaitDuration.Seconds(), name)
	counter(descRefusals, float64(st.Timeouts), name)
	counter(descCanceledWaits, float64(st.Canceled), name)
	counter(descShed, float64(st.Shed), name)

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
	for _, g := range cl.Report().Groups {
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
