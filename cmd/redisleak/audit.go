package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/connname"
)

// This file is the audit subcommand: it reads the server's settings and
// counters that decide how long a leaked connection lives and how many the
// server takes, and turns them into findings, each with its reason and fix.
// Reading (readAudit) is kept apart from judging (analyzeAudit), a pure
// function, so that every finding can be tested on fixed input, including
// those a healthy redis-server never shows.

// Exit statuses of audit. They differ from the other subcommands', which
// use 1 for any runtime error: a script or a CI job runs audit to learn
// whether there is something to fix, so 1 means findings only, and
// anything that kept the audit from running (a bad command line, a server
// that cannot be reached, a refused password) is 2, like a usage error.
const (
	exitFindings    = 1
	exitAuditFailed = 2
)

// exitStatus ends the command with status code. err, when not nil, is
// reported on stderr as any other error; when nil, the output has already
// said everything.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return "exit status " + strconv.Itoa(e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

// Thresholds of the findings.
const (
	// nearMaxclientsPercent: connected_clients at or above this share of
	// maxclients is a finding; the server refuses connections at 100%.
	nearMaxclientsPercent = 80
	// timeoutSlack is how far past timeout a client's idle time may go
	// before it counts as not closed: the server checks each client about
	// once a second (clientsCron), and closes it once idle exceeds timeout,
	// so a healthy server shows idle = timeout+1 for up to a second.
	timeoutSlack = 2 * time.Second
	// goRedisConnMaxIdleTime is go-redis's default Options.ConnMaxIdleTime,
	// quoted in the timeout finding's fix.
	goRedisConnMaxIdleTime = 30 * time.Minute
	// recommendedTimeout and recommendedKeepalive are the values the fixes
	// suggest; 300 is also tcp-keepalive's default since Redis 3.2.1.
	recommendedTimeout   = 300
	recommendedKeepalive = 300
	// auditTop bounds the groups and processes a finding lists in the text
	// output; --json lists them all.
	auditTop = 10
)

// The CONFIG GET parameters audit reads, one per CONFIG GET because
// servers before 7.0 take one parameter at a time.
const (
	paramTimeout      = "timeout"
	paramTCPKeepalive = "tcp-keepalive"
	paramMaxclients   = "maxclients"
)

// Sources of maxclients, as AuditValues.MaxclientsFrom names them.
const (
	fromConfig = "CONFIG GET"
	fromInfo   = "INFO clients"
)

// Severities of findings. critical: connections are (or will be) refused;
// warning: leaked connections go unnoticed or the numbers do not add up.
const (
	severityCritical = "critical"
	severityWarning  = "warning"
)

// Expectation is one --expect item: the sockets of each process of the
// service whose sockets are named "<Name>.p<pid>.s<socket>" are capped at
// Cap (pool.WithMaxConnections).
type Expectation struct {
	Name string
	Cap  int
}

// expectFlag is --expect: name=cap items, comma-separated; the flag can be
// repeated.
type expectFlag []Expectation

func (e *expectFlag) String() string {
	items := make([]string, len(*e))
	for i, x := range *e {
		items[i] = x.Name + "=" + strconv.Itoa(x.Cap)
	}
	return strings.Join(items, ",")
}

func (e *expectFlag) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		// The last '=', since the cap is a number and a name may hold
		// anything CLIENT SETNAME takes.
		i := strings.LastIndexByte(item, '=')
		if i <= 0 {
			return fmt.Errorf("%q: want name=cap, for example orders-api=20", item)
		}
		limit, err := strconv.Atoi(item[i+1:])
		if err != nil || limit <= 0 {
			return fmt.Errorf("%q: the cap must be a positive whole number", item)
		}
		// Matched as pool.NewClient writes names on the server.
		name := connname.Sanitize(item[:i])
		for _, x := range *e {
			if x.Name == name {
				return fmt.Errorf("%q given twice", name)
			}
		}
		*e = append(*e, Expectation{Name: name, Cap: limit})
	}
	return nil
}

// auditInput is what audit read from the server. A setting the server did
// not give is nil; ConfigRefused and ClientListRefused hold the server's
// reply when it refused CONFIG GET or CLIENT LIST.
type auditInput struct {
	Values            AuditValues
	ConfigRefused     string
	Clients           []Client
	ClientListRefused string
	// User is the ACL user audit ran as, named in the notices.
	User string
}

// AuditOptions tune analyzeAudit.
type AuditOptions struct {
	Now  time.Time
	Addr string
	// Idle is the threshold of the leak suspects, used when timeout is 0
	// or unknown.
	Idle   time.Duration
	Expect []Expectation
}

// AuditReport is the result of the audit subcommand; its JSON form is the
// --json output, so field names and types are part of the CLI's interface.
// Every list is present (possibly empty).
type AuditReport struct {
	Time                 time.Time   `json:"time"`
	Addr                 string      `json:"addr"`
	IdleThresholdSeconds int64       `json:"idle_threshold_seconds"`
	Values               AuditValues `json:"values"`
	// Services are the --expect items, with the processes seen for each.
	Services []ServiceUsage `json:"services"`
	// Notices say what could not be audited, and why; they do not change
	// the exit status.
	Notices  []Notice  `json:"notices"`
	Findings []Finding `json:"findings"`
}

// AuditValues are the values audit read; a value the server did not give
// is null.
type AuditValues struct {
	TimeoutSeconds      *int64 `json:"timeout_seconds"`
	TCPKeepaliveSeconds *int64 `json:"tcp_keepalive_seconds"`
	Maxclients          *int64 `json:"maxclients"`
	// MaxclientsFrom is where Maxclients was read: "CONFIG GET", or
	// "INFO clients" (servers from 7.0 report it there too) when CONFIG
	// GET did not give it; "" when neither did.
	MaxclientsFrom string `json:"maxclients_from"`
	// From INFO clients and INFO stats; connected_clients includes this
	// inspector's own connection.
	ConnectedClients         int64 `json:"connected_clients"`
	BlockedClients           int64 `json:"blocked_clients"`
	RejectedConnections      int64 `json:"rejected_connections"`
	TotalConnectionsReceived int64 `json:"total_connections_received"`
	// ClientListCount is the number of connections CLIENT LIST showed,
	// this inspector's included; null when CLIENT LIST was refused.
	ClientListCount *int `json:"client_list_count"`
}

// ServiceUsage is one --expect item against CLIENT LIST.
type ServiceUsage struct {
	Name string `json:"name"`
	Cap  int    `json:"cap"`
	// Processes are the processes seen with sockets named after Name,
	// most sockets first.
	Processes []ProcessUsage `json:"processes"`
	// Sockets is the number of sockets of all of them.
	Sockets int `json:"sockets"`
	// ExpectedMax is Cap times the processes seen, counting at least one:
	// the sockets the service holds at its caps.
	ExpectedMax int64 `json:"expected_max"`
}

// ProcessUsage counts the sockets of one process of a service. A process
// is its name's "<client>.p<pid>" and the host its sockets come from:
// processes in containers often share a pid (1, say), and the host tells
// them apart unless they also share an address.
type ProcessUsage struct {
	Process string `json:"process"`
	Host    string `json:"host"`
	Sockets int    `json:"sockets"`
}

// Notice is something audit could not check, and why.
type Notice struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Finding is one thing to fix.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Reason   string `json:"reason"`
	Fix      string `json:"fix"`
	// Values are the numbers the finding rests on, by name.
	Values map[string]int64 `json:"values"`
	// Processes, for process-over-cap, are the processes above the cap.
	Processes []ProcessUsage `json:"processes,omitempty"`
	// Groups, for the idle findings, are the idle clients by name and host.
	Groups []IdleGroup `json:"groups,omitempty"`
}

// IdleGroup counts the idle clients sharing a name and a host. Sockets
// named by redisleak are grouped by process ("<client>.p<pid>").
type IdleGroup struct {
	Name           string `json:"name"`
	Host           string `json:"host"`
	Count          int    `json:"count"`
	MaxIdleSeconds int64  `json:"max_idle_seconds"`
	// Cmds are the distinct names of the commands the clients ran last
	// (CLIENT LIST's cmd=, which never holds arguments).
	Cmds []string `json:"cmds"`
}

// runAudit is the audit subcommand.
func runAudit(args []string, co *connOptions, stdout io.Writer) error {
	fs := newFlagSet("audit")
	addConnFlags(fs, co)
	asJSON := fs.Bool("json", false, "print JSON")
	idle := fs.Duration("idle", time.Hour, "idle threshold of the leak suspects when timeout is 0")
	var expect expectFlag
	fs.Var(&expect, "expect", "per-process socket caps of the services, name=cap,name2=cap2")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *idle <= 0 {
		// 0 would make every connection, busy ones too, a leak suspect.
		return usagef("audit: --idle must be positive, got %s", *idle)
	}
	if err := co.validate(); err != nil {
		return err
	}

	in, err := readAudit(context.Background(), co)
	if err != nil {
		return &exitStatus{code: exitAuditFailed, err: err}
	}
	r := analyzeAudit(in, AuditOptions{Now: time.Now(), Addr: co.addr, Idle: *idle, Expect: expect})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		writeAudit(stdout, r)
	}
	if len(r.Findings) > 0 {
		return &exitStatus{code: exitFindings}
	}
	return nil
}

// readAudit reads INFO clients and stats, the CONFIG GET parameters and
// CLIENT LIST. INFO is required; CONFIG GET and CLIENT LIST may be refused
// (managed servers rename or drop CONFIG, an ACL user may lack +config or
// +client), which auditInput records for the notices. Any other failure is
// an error.
func readAudit(ctx context.Context, co *connOptions) (auditInput, error) {
	in := auditInput{User: co.user}
	if in.User == "" {
		in.User = "default"
	}
	rdb := newClient(co)
	defer rdb.Close()

	// INFO first: it is the one source audit cannot do without, and the
	// first command is where an unreachable server or a wrong password
	// shows.
	s, err := takeSample(ctx, rdb)
	if err != nil {
		return in, describeErr(err, co, "INFO")
	}
	v := &in.Values
	v.ConnectedClients = s.ConnectedClients
	v.BlockedClients = s.BlockedClients
	v.RejectedConnections = s.RejectedConnections
	v.TotalConnectionsReceived = s.TotalConnectionsReceived

	for _, p := range []struct {
		name string
		dst  **int64
	}{
		{paramTimeout, &v.TimeoutSeconds},
		{paramTCPKeepalive, &v.TCPKeepaliveSeconds},
		{paramMaxclients, &v.Maxclients},
	} {
		m, err := rdb.ConfigGet(ctx, p.name).Result()
		if reply, ok := refusal(err); ok {
			// One refusal covers the others: ACLs grant config|get
			// whole, and a renamed command is gone for all.
			in.ConfigRefused = reply
			break
		}
		if err != nil {
			return in, describeErr(err, co, "CONFIG GET")
		}
		// A parameter the server does not know (or hides) is absent
		// from the reply; it stays nil.
		if text, ok := m[p.name]; ok {
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return in, fmt.Errorf("CONFIG GET %s at %s: invalid value %q", p.name, co.addr, text)
			}
			*p.dst = &n
		}
	}
	if v.Maxclients != nil {
		v.MaxclientsFrom = fromConfig
	} else {
		text, err := rdb.Info(ctx, "clients").Result()
		if err != nil {
			return in, describeErr(err, co, "INFO")
		}
		if n, err := strconv.ParseInt(parseInfo(text)["maxclients"], 10, 64); err == nil {
			v.Maxclients, v.MaxclientsFrom = &n, fromInfo
		}
	}

	text, err := rdb.ClientList(ctx).Result()
	if reply, ok := refusal(err); ok {
		in.ClientListRefused = reply
		return in, nil
	}
	if err != nil {
		return in, describeErr(err, co, "CLIENT LIST")
	}
	if in.Clients, err = parseClientList(text); err != nil {
		return in, err
	}
	n := len(in.Clients)
	v.ClientListCount = &n
	return in, nil
}

// refusal returns the server's error reply, in one line, when err is one: the
// server answered, so the connection is fine and only this command was
// refused.
func refusal(err error) (string, bool) {
	var re redis.Error
	if err == nil || !errors.As(err, &re) {
		return "", false
	}
	return oneLine(err.Error()), true
}

// analyzeAudit judges what readAudit read.
func analyzeAudit(in auditInput, opts AuditOptions) AuditReport {
	v := in.Values
	r := AuditReport{
		Time:                 opts.Now.UTC().Truncate(time.Second),
		Addr:                 opts.Addr,
		IdleThresholdSeconds: seconds(opts.Idle),
		Values:               v,
		Notices:              auditNotices(in),
		Findings:             []Finding{},
	}
	clientsKnown := in.ClientListRefused == ""
	r.Services = serviceUsage(in.Clients, opts.Expect)
	add := func(f Finding, ok bool) {
		if ok {
			r.Findings = append(r.Findings, f)
		}
	}
	add(timeoutZero(v))
	add(keepaliveZero(v))
	add(nearMaxclients(v))
	add(capsOverMaxclients(v, r.Services))
	for _, s := range r.Services {
		add(processOverCap(s))
	}
	add(rejectedConnections(v))
	if clientsKnown {
		add(idleClients(in.Clients, v, opts.Idle))
	}
	// Critical first; otherwise in the order above.
	sort.SliceStable(r.Findings, func(i, j int) bool {
		return r.Findings[i].Severity == severityCritical && r.Findings[j].Severity != severityCritical
	})
	return r
}

// auditNotices says what the server did not let audit read.
func auditNotices(in auditInput) []Notice {
	v := in.Values
	notices := []Notice{}
	maxclients := "maxclients was read from INFO clients"
	if v.Maxclients == nil {
		maxclients = "maxclients is unknown too (INFO clients reports it from Redis 7.0), so nothing is checked against it"
	}
	var missing []string
	for _, p := range []struct {
		name string
		val  *int64
	}{{paramTimeout, v.TimeoutSeconds}, {paramTCPKeepalive, v.TCPKeepaliveSeconds}, {paramMaxclients, v.Maxclients}} {
		if p.val == nil {
			missing = append(missing, p.name)
		}
	}
	idle := ", and idle clients judged by --idle alone"
	if in.ClientListRefused != "" {
		idle = ""
	}
	switch {
	case in.ConfigRefused != "":
		notices = append(notices, Notice{ID: "config-refused", Reason: fmt.Sprintf(
			"CONFIG GET refused for user %q (%s): timeout and tcp-keepalive not audited%s; %s."+
				" On a managed Redis check these settings in the provider's console; otherwise grant the user +config|get",
			in.User, in.ConfigRefused, idle, maxclients)})
	case len(missing) > 0:
		notices = append(notices, Notice{ID: "config-missing", Reason: fmt.Sprintf(
			"CONFIG GET gave no value for %s: not audited", strings.Join(missing, ", "))})
	}
	if in.ClientListRefused != "" {
		notices = append(notices, Notice{ID: "client-list-refused", Reason: fmt.Sprintf(
			"CLIENT LIST refused for user %q (%s): idle clients and per-process socket counts not audited,"+
				" and --expect counts one process per service; grant the user +client|list",
			in.User, in.ClientListRefused)})
	}
	return notices
}

func timeoutZero(v AuditValues) (Finding, bool) {
	if v.TimeoutSeconds == nil || *v.TimeoutSeconds != 0 {
		return Finding{}, false
	}
	return Finding{
		ID:       "timeout-zero",
		Severity: severityWarning,
		Reason: "timeout is 0: the server never closes an idle client, so a socket a program leaked, or kept after its" +
			" pool lost track of it, holds its connection slot for ever (until the program exits)",
		Fix: fmt.Sprintf("CONFIG SET timeout %d, and set it in redis.conf (or CONFIG REWRITE) so a restart keeps it."+
			" go-redis pools keep idle sockets up to ConnMaxIdleTime (%s by default): with a shorter timeout the server"+
			" closes idle pooled sockets, which go-redis notices when it next takes them and replaces with a new dial"+
			" (one reconnect, no error); set ConnMaxIdleTime below the timeout to avoid even that."+
			" Pub/sub and blocked clients are exempt from timeout.",
			recommendedTimeout, humanDuration(seconds(goRedisConnMaxIdleTime))),
		Values: map[string]int64{"timeout_seconds": 0},
	}, true
}

func keepaliveZero(v AuditValues) (Finding, bool) {
	if v.TCPKeepaliveSeconds == nil || *v.TCPKeepaliveSeconds != 0 {
		return Finding{}, false
	}
	return Finding{
		ID:       "tcp-keepalive-zero",
		Severity: severityWarning,
		Reason: "tcp-keepalive is 0: the server sends no TCP keepalives, so a client whose host died or whose network" +
			" path dropped without a FIN or RST is never detected, and its connection stays counted against maxclients" +
			" (for ever with timeout 0, and always for pub/sub and blocked clients)",
		Fix:    fmt.Sprintf("CONFIG SET tcp-keepalive %d (the default), and set it in redis.conf", recommendedKeepalive),
		Values: map[string]int64{"tcp_keepalive_seconds": 0},
	}, true
}

func nearMaxclients(v AuditValues) (Finding, bool) {
	if v.Maxclients == nil || *v.Maxclients <= 0 {
		return Finding{}, false
	}
	limit := *v.Maxclients
	if v.ConnectedClients*100 < nearMaxclientsPercent*limit {
		return Finding{}, false
	}
	pct := v.ConnectedClients * 100 / limit
	return Finding{
		ID:       "clients-near-maxclients",
		Severity: severityWarning,
		Reason: fmt.Sprintf("connected_clients is %d of maxclients %d (%d%%, at or above %d%%): once it reaches maxclients"+
			" the server refuses new connections", v.ConnectedClients, limit, pct, nearMaxclientsPercent),
		Fix: "find what holds the connections (redisleak clients: by process, host and name); cap each service's sockets" +
			" (pool.WithMaxConnections) or fix its leak, and raise maxclients only for a count that is explained" +
			" (the server's open-file limit bounds it too)",
		Values: map[string]int64{"connected_clients": v.ConnectedClients, "maxclients": limit, "percent": pct},
	}, true
}

// serviceUsage counts the sockets of each --expect item's processes.
// Sockets are matched by the name pool.NewClient gives them,
// "<client>.p<pid>.s<socket>", with <client> the item's name.
func serviceUsage(clients []Client, expect []Expectation) []ServiceUsage {
	procs := map[string]map[ProcessUsage]int{} // by service, then process and host
	for _, c := range clients {
		n, ok := connname.Parse(c.Name)
		if !ok {
			continue
		}
		if procs[n.Client] == nil {
			procs[n.Client] = map[ProcessUsage]int{}
		}
		procs[n.Client][ProcessUsage{Process: n.Process(), Host: c.Host()}]++
	}
	out := []ServiceUsage{}
	for _, e := range expect {
		s := ServiceUsage{Name: e.Name, Cap: e.Cap, Processes: []ProcessUsage{}}
		for p, count := range procs[e.Name] {
			p.Sockets = count
			s.Processes = append(s.Processes, p)
			s.Sockets += count
		}
		sort.Slice(s.Processes, func(i, j int) bool {
			a, b := s.Processes[i], s.Processes[j]
			if a.Sockets != b.Sockets {
				return a.Sockets > b.Sockets
			}
			if a.Process != b.Process {
				return a.Process < b.Process
			}
			return a.Host < b.Host
		})
		// A service with no socket now may still connect: count it once.
		s.ExpectedMax = int64(e.Cap) * int64(max(1, len(s.Processes)))
		out = append(out, s)
	}
	return out
}

func capsOverMaxclients(v AuditValues, services []ServiceUsage) (Finding, bool) {
	if v.Maxclients == nil || len(services) == 0 {
		return Finding{}, false
	}
	var total int64
	terms := make([]string, len(services))
	for i, s := range services {
		total += s.ExpectedMax
		terms[i] = fmt.Sprintf("%s %d × %s", s.Name, s.Cap, plural(max(1, len(s.Processes)), "process", "processes"))
	}
	if total <= *v.Maxclients {
		return Finding{}, false
	}
	return Finding{
		ID:       "caps-over-maxclients",
		Severity: severityCritical,
		Reason: fmt.Sprintf("at their caps the services hold %d sockets (%s), more than maxclients %d: the server"+
			" refuses connections before the services' own caps do", total, strings.Join(terms, " + "), *v.Maxclients),
		Fix: fmt.Sprintf("lower the caps (pool.WithMaxConnections) or raise maxclients above %d, with room for replicas,"+
			" monitoring and operators; a process count above the planned one (a deploy's old and new processes"+
			" overlapping) counts here too", total),
		Values: map[string]int64{"expected_sockets": total, "maxclients": *v.Maxclients},
	}, true
}

func processOverCap(s ServiceUsage) (Finding, bool) {
	var over []ProcessUsage
	for _, p := range s.Processes {
		if p.Sockets > s.Cap {
			over = append(over, p)
		}
	}
	if len(over) == 0 {
		return Finding{}, false
	}
	p := over[0]
	return Finding{
		ID:       "process-over-cap",
		Severity: severityWarning,
		Reason: fmt.Sprintf("%s: %d of %s hold more sockets than the cap of %d (the most: %s from %s with %d)",
			s.Name, len(over), plural(len(s.Processes), "process", "processes"), s.Cap, p.Process, p.Host, p.Sockets),
		Fix: "a capped client keeps the server's count of its sockets under its cap, so the extra sockets come from" +
			" elsewhere: another client of the process with the same name (each pool.NewClient has its own cap: give" +
			" them different ClientNames, or --expect their sum), a cap raised without updating --expect, processes" +
			" sharing a pid and an address (containers behind one NAT), or, briefly, sockets the server had not yet" +
			" seen close after a stall (pool.WithDrainTimeout); compare with the process's client.Stats()",
		Values:    map[string]int64{"cap": int64(s.Cap), "processes_over_cap": int64(len(over))},
		Processes: over,
	}, true
}

func rejectedConnections(v AuditValues) (Finding, bool) {
	if v.RejectedConnections <= 0 {
		return Finding{}, false
	}
	values := map[string]int64{"rejected_connections": v.RejectedConnections}
	at := "maxclients"
	if v.Maxclients != nil {
		values["maxclients"] = *v.Maxclients
		at = fmt.Sprintf("maxclients (now %d)", *v.Maxclients)
	}
	return Finding{
		ID:       "rejected-connections",
		Severity: severityCritical,
		Reason: fmt.Sprintf("rejected_connections is %d: since the server started (or CONFIG RESETSTAT) it refused %s"+
			" because it was at %s, and the clients got \"ERR max number of clients reached\"",
			v.RejectedConnections, plural(int(v.RejectedConnections), "connection", "connections"), at),
		Fix: "find what holds the connections (redisleak clients, redisleak watch to see when); cap each service's" +
			" sockets (pool.WithMaxConnections) so their sum fits under maxclients (see --expect), or raise it." +
			" Once fixed, CONFIG RESETSTAT zeroes the counter (and the other INFO stats) so a new rejection shows",
		Values: values,
	}, true
}

// idleClients finds the normal clients idle too long: with timeout > 0,
// those idle past it, which the server should have closed; with timeout 0
// or unknown, those idle at least idle, which nothing will close. Blocked
// and pub/sub clients (and replicas) are left out, as the server exempts
// them from timeout: waiting is their job.
func idleClients(clients []Client, v AuditValues, idle time.Duration) (Finding, bool) {
	if v.TimeoutSeconds != nil && *v.TimeoutSeconds > 0 {
		timeout := time.Duration(*v.TimeoutSeconds) * time.Second
		// Client ids start at 1, so 0 leaves none out; this inspector's own
		// connection is busy, never idle.
		found := idleCandidates(clients, 0, timeout+timeoutSlack)
		if len(found) == 0 {
			return Finding{}, false
		}
		return Finding{
			ID:       "idle-beyond-timeout",
			Severity: severityWarning,
			Reason: fmt.Sprintf("%s idle longer than timeout (%s), which the server closes within a second: something"+
				" keeps them open (a Redis-compatible server or a proxy that does not enforce timeout?)",
				plural(len(found), "normal client has been", "normal clients have been"), humanDuration(*v.TimeoutSeconds)),
			Fix: "check that the timeout applies where the clients connect (CONFIG GET timeout on that server, the proxy's" +
				" own idle timeout); the groups say who holds the clients; redisleak kill-idle closes them",
			Values: map[string]int64{"timeout_seconds": *v.TimeoutSeconds, "clients": int64(len(found))},
			Groups: idleGroups(found),
		}, true
	}
	found := idleCandidates(clients, 0, idle)
	if len(found) == 0 {
		return Finding{}, false
	}
	why := "timeout is 0, so nothing will close them"
	if v.TimeoutSeconds == nil {
		why = "timeout could not be read, so nothing may close them"
	}
	return Finding{
		ID:       "idle-suspects",
		Severity: severityWarning,
		Reason: fmt.Sprintf("%s idle for %s or more (blocked and pub/sub clients not counted) and %s: leak suspects",
			plural(len(found), "normal client", "normal clients"), humanDuration(seconds(idle)), why),
		Fix: fmt.Sprintf("for the groups named <client>.p<pid>, redisleak clients lists the socket names, which lead to"+
			" the call site in the service's leak report; set timeout (CONFIG SET timeout %d) so the server closes"+
			" what is left; redisleak kill-idle --idle %s closes them now", recommendedTimeout, humanDuration(seconds(idle))),
		Values: map[string]int64{"idle_threshold_seconds": seconds(idle), "clients": int64(len(found))},
		Groups: idleGroups(found),
	}, true
}

// idleGroups groups clients by name and host, largest groups first.
// Sockets named by redisleak group by process: their names are unique.
func idleGroups(clients []Client) []IdleGroup {
	type key struct{ name, host string }
	byKey := map[key]*IdleGroup{}
	cmds := map[key]map[string]bool{}
	for _, c := range clients {
		k := key{name: c.Name, host: c.Host()}
		if n, ok := connname.Parse(c.Name); ok {
			k.name = n.Process()
		}
		g := byKey[k]
		if g == nil {
			g = &IdleGroup{Name: k.name, Host: k.host}
			byKey[k] = g
			cmds[k] = map[string]bool{}
		}
		g.Count++
		g.MaxIdleSeconds = max(g.MaxIdleSeconds, seconds(c.Idle))
		if c.Cmd != "" && c.Cmd != "NULL" {
			cmds[k][c.Cmd] = true
		}
	}
	groups := make([]IdleGroup, 0, len(byKey))
	for k, g := range byKey {
		g.Cmds = []string{}
		for cmd := range cmds[k] {
			g.Cmds = append(g.Cmds, cmd)
		}
		sort.Strings(g.Cmds)
		groups = append(groups, *g)
	}
	sort.Slice(groups, func(i, j int) bool {
		a, b := groups[i], groups[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Host < b.Host
	})
	return groups
}

// plural formats n with the singular or plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// writeAudit prints r as text: the values read, the notices, then each
// finding with its reason and fix.
func writeAudit(w io.Writer, r AuditReport) {
	v := r.Values
	fmt.Fprintf(w, "audit of %s at %s\n", r.Addr, r.Time.Format("2006-01-02 15:04:05 MST"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var config []string
	for _, p := range []struct {
		name string
		val  *int64
	}{{paramTimeout, v.TimeoutSeconds}, {paramTCPKeepalive, v.TCPKeepaliveSeconds}} {
		if p.val != nil {
			config = append(config, fmt.Sprintf("%s %d", p.name, *p.val))
		}
	}
	clients := fmt.Sprintf("connected_clients %d (this inspector included), blocked_clients %d",
		v.ConnectedClients, v.BlockedClients)
	switch v.MaxclientsFrom {
	case fromConfig:
		config = append(config, fmt.Sprintf("maxclients %d", *v.Maxclients))
	case fromInfo:
		clients = fmt.Sprintf("maxclients %d, %s", *v.Maxclients, clients)
	}
	if len(config) == 0 {
		config = append(config, "nothing read (see the notes)")
	}
	fmt.Fprintf(tw, "  CONFIG GET\t%s\n", strings.Join(config, ", "))
	fmt.Fprintf(tw, "  INFO clients\t%s\n", clients)
	fmt.Fprintf(tw, "  INFO stats\trejected_connections %d, total_connections_received %d\n",
		v.RejectedConnections, v.TotalConnectionsReceived)
	if v.ClientListCount != nil {
		fmt.Fprintf(tw, "  CLIENT LIST\t%s (this inspector included)\n", plural(*v.ClientListCount, "connection", "connections"))
	} else {
		fmt.Fprintf(tw, "  CLIENT LIST\trefused (see the notes)\n")
	}
	// --expect: one line per service, then the sum.
	var total int64
	for i, s := range r.Services {
		label := ""
		if i == 0 {
			label = "--expect"
		}
		procs := plural(len(s.Processes), "process", "processes") + " seen"
		if len(s.Processes) == 0 {
			procs = "1 (no process seen)"
		}
		fmt.Fprintf(tw, "  %s\t%s: cap %d × %s = %d (%s now)\n", label, s.Name, s.Cap, procs, s.ExpectedMax,
			plural(s.Sockets, "socket", "sockets"))
		total += s.ExpectedMax
	}
	if len(r.Services) > 0 {
		of := ""
		if v.Maxclients != nil {
			of = fmt.Sprintf(" of maxclients %d", *v.Maxclients)
		}
		fmt.Fprintf(tw, "  \tin all: %d%s\n", total, of)
	}
	tw.Flush()

	for _, n := range r.Notices {
		fmt.Fprintln(w)
		writeWrapped(w, "note: ", strings.Fields(n.Reason))
	}
	fmt.Fprintln(w)
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "no findings: nothing to do")
		return
	}
	critical := 0
	for _, f := range r.Findings {
		if f.Severity == severityCritical {
			critical++
		}
	}
	fmt.Fprintf(w, "%s (%d critical, %s):\n", plural(len(r.Findings), "finding", "findings"),
		critical, plural(len(r.Findings)-critical, "warning", "warnings"))
	for i, f := range r.Findings {
		fmt.Fprintf(w, "\n%d. %s [%s]\n", i+1, f.ID, f.Severity)
		writeWrapped(w, "   reason: ", strings.Fields(f.Reason))
		writeWrapped(w, "   fix:    ", strings.Fields(f.Fix))
		writeProcesses(w, f.Processes)
		writeIdleGroups(w, f.Groups)
	}
}

// writeProcesses prints the processes of a process-over-cap finding.
func writeProcesses(w io.Writer, procs []ProcessUsage) {
	if len(procs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   SOCKETS\tHOST\tPROCESS")
	for i, p := range procs {
		if i == auditTop {
			fmt.Fprintf(tw, "   ...\t\tand %d more processes (--json lists all)\n", len(procs)-auditTop)
			break
		}
		fmt.Fprintf(tw, "   %d\t%s\t%s\n", p.Sockets, p.Host, p.Process)
	}
	tw.Flush()
}

// writeIdleGroups prints the groups of an idle finding.
func writeIdleGroups(w io.Writer, groups []IdleGroup) {
	if len(groups) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "   COUNT\tMAX IDLE\tHOST\tNAME\tLAST CMDS")
	for i, g := range groups {
		if i == auditTop {
			fmt.Fprintf(tw, "   ...\t\t\tand %d more groups (--json lists all)\n", len(groups)-auditTop)
			break
		}
		name := g.Name
		if name == "" {
			name = "(no name)"
		}
		cmds := strings.Join(g.Cmds, ",")
		if cmds == "" {
			cmds = "-"
		}
		fmt.Fprintf(tw, "   %d\t%s\t%s\t%s\t%s\n", g.Count, humanDuration(g.MaxIdleSeconds), g.Host, name, cmds)
	}
	tw.Flush()
}
