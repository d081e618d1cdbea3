package main

import (
	"sort"
	"time"

	"github.com/redisleak/redisleak/internal/clientlist"
	"github.com/redisleak/redisleak/internal/connname"
)

// This file holds the analysis behind the clients subcommand, as pure
// functions over the CLIENT LIST reply text so they can be tested on fixed
// input.

// Client is one connection as reported by CLIENT LIST.
type Client = clientlist.Client

// parseClientList parses a CLIENT LIST reply; a malformed line is an error,
// because a silently wrong count is worse than none.
func parseClientList(text string) ([]Client, error) { return clientlist.Parse(text) }

// AnalyzeOptions tune analyzeClients.
type AnalyzeOptions struct {
	// SelfID is the inspector's own client id, left out of every count.
	SelfID int64
	// IdleThreshold: a client idle for at least this long counts as idle.
	IdleThreshold time.Duration
	// Top limits the groups, the socket names of each process and the
	// client lists in the report; 0 means no limit.
	Top int
}

// Report is the result of the clients subcommand; its JSON form is the
// --json output, so field names and types are part of the CLI's interface.
// Durations are whole seconds; every list is present (possibly empty).
type Report struct {
	Time                 time.Time `json:"time"`
	SelfID               int64     `json:"self_id"`
	Total                int       `json:"total"`
	IdleThresholdSeconds int64     `json:"idle_threshold_seconds"`
	Top                  int       `json:"top"`
	AgeBuckets           []Bucket  `json:"age_buckets"`
	// ByProcess groups the connections named by redisleak (see
	// connname: "<client>.p<pid>.s<socket>", as pool.NewClient names its
	// sockets) by client and process id; its groups list their sockets.
	ByProcess Grouping `json:"by_process"`
	// NotNamedByRedisleak counts the connections left out of ByProcess:
	// unnamed, or named in another format.
	NotNamedByRedisleak int      `json:"not_named_by_redisleak"`
	ByHost              Grouping `json:"by_host"`
	ByName              Grouping `json:"by_name"`
	// Idle leaves out blocked and pub/sub clients: waiting is their job.
	Idle    ClientSet `json:"idle"`
	Blocked ClientSet `json:"blocked"`
	PubSub  ClientSet `json:"pubsub"`
}

// Bucket counts connections whose age is in [MinSeconds, MaxSeconds);
// MaxSeconds is 0 for the open-ended last bucket.
type Bucket struct {
	Label      string `json:"label"`
	MinSeconds int64  `json:"min_seconds"`
	MaxSeconds int64  `json:"max_seconds"`
	Count      int    `json:"count"`
}

// Grouping is the connections grouped by one key, largest groups first.
type Grouping struct {
	// Groups holds the Top largest groups.
	Groups []Group `json:"groups"`
	// TotalGroups is the number of groups before truncation to Top.
	TotalGroups int `json:"total_groups"`
	// OtherConnections is the number of connections in groups left out.
	OtherConnections int `json:"other_connections"`
}

// Group is the connections sharing one host, one name ("" for unnamed) or
// one process ("<client>.p<pid>", see Report.ByProcess).
type Group struct {
	Key              string `json:"key"`
	Count            int    `json:"count"`
	Idle             int    `json:"idle"`
	Blocked          int    `json:"blocked"`
	PubSub           int    `json:"pubsub"`
	OldestAgeSeconds int64  `json:"oldest_age_seconds"`
	MaxIdleSeconds   int64  `json:"max_idle_seconds"`
	// Sockets, in ByProcess only, are the full names of the group's
	// connections, to look up in the service's own leak report: the
	// Idle ones first, then the others, each part by socket id. At most
	// Top are listed; Count is the total. A name two connections share
	// (two clients of one process with the same name) is listed twice.
	Sockets []string `json:"sockets,omitempty"`
}

// ClientSet is a class of clients: Count of them, and the Top of them
// (longest idle first) in Clients.
type ClientSet struct {
	Count   int             `json:"count"`
	Clients []ClientSummary `json:"clients"`
}

// ClientSummary is one client in a report.
type ClientSummary struct {
	ID          int64  `json:"id"`
	Addr        string `json:"addr"`
	Name        string `json:"name"`
	AgeSeconds  int64  `json:"age_seconds"`
	IdleSeconds int64  `json:"idle_seconds"`
	Flags       string `json:"flags"`
	DB          int    `json:"db"`
	Cmd         string `json:"cmd"`
}

// ageBuckets are the report's age buckets, in order.
var ageBuckets = []Bucket{
	{Label: "<1m", MinSeconds: 0, MaxSeconds: 60},
	{Label: "1m-1h", MinSeconds: 60, MaxSeconds: 3600},
	{Label: "1h-1d", MinSeconds: 3600, MaxSeconds: 86400},
	{Label: ">1d", MinSeconds: 86400, MaxSeconds: 0},
}

// analyzeClientList parses a CLIENT LIST reply and analyses it as of now.
func analyzeClientList(text string, now time.Time, opts AnalyzeOptions) (Report, error) {
	clients, err := parseClientList(text)
	if err != nil {
		return Report{}, err
	}
	return analyzeClients(clients, now, opts), nil
}

// analyzeClients builds the report for clients, leaving out opts.SelfID.
func analyzeClients(all []Client, now time.Time, opts AnalyzeOptions) Report {
	r := Report{
		Time:                 now.UTC().Truncate(time.Second),
		SelfID:               opts.SelfID,
		IdleThresholdSeconds: seconds(opts.IdleThreshold),
		Top:                  opts.Top,
		AgeBuckets:           append([]Bucket(nil), ageBuckets...),
	}
	byHost := map[string]*Group{}
	byName := map[string]*Group{}
	byProcess := map[string]*Group{}
	sockets := map[string][]namedSocket{} // by process
	var idle, blocked, pubsub []Client
	for _, c := range all {
		if c.ID == opts.SelfID {
			continue
		}
		r.Total++
		age := seconds(c.Age)
		for i := range r.AgeBuckets {
			b := &r.AgeBuckets[i]
			if age >= b.MinSeconds && (b.MaxSeconds == 0 || age < b.MaxSeconds) {
				b.Count++
				break
			}
		}
		isIdle := c.Idle >= opts.IdleThreshold && !c.Blocked() && !c.PubSub()
		switch {
		case c.Blocked():
			blocked = append(blocked, c)
		case c.PubSub():
			pubsub = append(pubsub, c)
		case isIdle:
			idle = append(idle, c)
		}
		group(byHost, c.Host()).add(c, isIdle)
		// A socket named by redisleak has a name of its own; by name, it
		// counts under its client's name, as the sockets of any other pool.
		n, named := connname.Parse(c.Name)
		name := c.Name
		if named {
			name = n.Client
		}
		group(byName, name).add(c, isIdle)
		if named {
			key := n.Process()
			group(byProcess, key).add(c, isIdle)
			sockets[key] = append(sockets[key], namedSocket{name: c.Name, id: n.Socket, idle: isIdle})
		} else {
			r.NotNamedByRedisleak++
		}
	}
	r.ByProcess = grouping(byProcess, opts.Top)
	for i := range r.ByProcess.Groups {
		g := &r.ByProcess.Groups[i]
		g.Sockets = socketNames(sockets[g.Key], opts.Top)
	}
	r.ByHost = grouping(byHost, opts.Top)
	r.ByName = grouping(byName, opts.Top)
	r.Idle = clientSet(idle, opts.Top)
	r.Blocked = clientSet(blocked, opts.Top)
	r.PubSub = clientSet(pubsub, opts.Top)
	return r
}

func group(m map[string]*Group, key string) *Group {
	g := m[key]
	if g == nil {
		g = &Group{Key: key}
		m[key] = g
	}
	return g
}

// add counts c, idle or not, in g.
func (g *Group) add(c Client, isIdle bool) {
	g.Count++
	if isIdle {
		g.Idle++
	}
	if c.Blocked() {
		g.Blocked++
	}
	if c.PubSub() {
		g.PubSub++
	}
	g.OldestAgeSeconds = max(g.OldestAgeSeconds, seconds(c.Age))
	g.MaxIdleSeconds = max(g.MaxIdleSeconds, seconds(c.Idle))
}

// namedSocket is a connection whose name parsed with connname.Parse.
type namedSocket struct {
	name string // as CLIENT LIST gave it
	id   uint64
	idle bool
}

// socketNames sorts socks idle first, then by socket id, and returns the
// names of the top of them.
func socketNames(socks []namedSocket, top int) []string {
	sort.Slice(socks, func(i, j int) bool {
		a, b := socks[i], socks[j]
		if a.idle != b.idle {
			return a.idle
		}
		if a.id != b.id {
			return a.id < b.id
		}
		return a.name < b.name
	})
	if top > 0 && len(socks) > top {
		socks = socks[:top]
	}
	names := make([]string, len(socks))
	for i, s := range socks {
		names[i] = s.name
	}
	return names
}

// grouping sorts groups by count (then key) and keeps the top of them.
func grouping(m map[string]*Group, top int) Grouping {
	groups := make([]Group, 0, len(m))
	for _, g := range m {
		groups = append(groups, *g)
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].Count != groups[j].Count {
			return groups[i].Count > groups[j].Count
		}
		return groups[i].Key < groups[j].Key
	})
	out := Grouping{TotalGroups: len(groups)}
	if top > 0 && len(groups) > top {
		for _, g := range groups[top:] {
			out.OtherConnections += g.Count
		}
		groups = groups[:top]
	}
	out.Groups = groups
	return out
}

// clientSet sorts clients longest idle first (then oldest, then id) and
// keeps the top of them.
func clientSet(clients []Client, top int) ClientSet {
	sortByIdle(clients)
	set := ClientSet{Count: len(clients), Clients: []ClientSummary{}}
	for i, c := range clients {
		if top > 0 && i == top {
			break
		}
		set.Clients = append(set.Clients, summarize(c))
	}
	return set
}

func sortByIdle(clients []Client) {
	sort.SliceStable(clients, func(i, j int) bool {
		a, b := clients[i], clients[j]
		if a.Idle != b.Idle {
			return a.Idle > b.Idle
		}
		if a.Age != b.Age {
			return a.Age > b.Age
		}
		return a.ID < b.ID
	})
}

func summarize(c Client) ClientSummary {
	return ClientSummary{
		ID:          c.ID,
		Addr:        c.Addr,
		Name:        c.Name,
		AgeSeconds:  seconds(c.Age),
		IdleSeconds: seconds(c.Idle),
		Flags:       c.Flags,
		DB:          c.DB,
		Cmd:         c.Cmd,
	}
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }
