package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redisleak/redisleak/internal/testserver"
)

// auditReport runs audit with args (--json added), checks its exit status
// and returns the decoded report and the raw output.
func auditReport(t *testing.T, wantCode int, args ...string) (AuditReport, string) {
	t.Helper()
	code, out, errOut := runCLI(t, append(args, "--json")...)
	if code != wantCode {
		t.Fatalf("%v: exit status %d, want %d (stderr %q)\n%s", args, code, wantCode, errOut, out)
	}
	if errOut != "" {
		t.Errorf("%v: stderr %q, want nothing", args, errOut)
	}
	var r AuditReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	return r, out
}

// findingIDs returns the ids of r's findings, in order, joined by commas.
func findingIDs(r AuditReport) string {
	ids := make([]string, len(r.Findings))
	for i, f := range r.Findings {
		ids[i] = f.ID
	}
	return strings.Join(ids, ",")
}

// finding returns r's finding id, failing the test if there is none.
func finding(t *testing.T, r AuditReport, id string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no %s finding; findings: %s", id, findingIDs(r))
	return Finding{}
}

// wantText checks that out, with its line wrapping undone, contains each of
// wants.
func wantText(t *testing.T, out string, wants ...string) {
	t.Helper()
	flat := oneLine(out)
	for _, w := range wants {
		if !strings.Contains(flat, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestAuditTimeoutZero(t *testing.T) {
	srv := testserver.Redis(t, "--timeout", "0")
	r, raw := auditReport(t, exitFindings, "-addr", srv.Addr(), "audit")
	if got := findingIDs(r); got != "timeout-zero" {
		t.Fatalf("findings %s, want timeout-zero\n%s", got, raw)
	}
	f := r.Findings[0]
	if f.Severity != severityWarning || !reflect.DeepEqual(f.Values, map[string]int64{"timeout_seconds": 0}) {
		t.Errorf("finding %+v", f)
	}
	for _, want := range []string{"leaked", "for ever"} {
		if !strings.Contains(f.Reason, want) {
			t.Errorf("reason %q lacks %q", f.Reason, want)
		}
	}
	for _, want := range []string{"CONFIG SET timeout 300", "ConnMaxIdleTime (30m", "new dial"} {
		if !strings.Contains(f.Fix, want) {
			t.Errorf("fix %q lacks %q", f.Fix, want)
		}
	}
	v := r.Values
	if v.TimeoutSeconds == nil || *v.TimeoutSeconds != 0 || v.TCPKeepaliveSeconds == nil || *v.TCPKeepaliveSeconds != 300 ||
		v.Maxclients == nil || v.MaxclientsFrom != fromConfig || v.ClientListCount == nil || *v.ClientListCount != 1 ||
		v.ConnectedClients != 1 {
		t.Errorf("values %s", raw)
	}

	// The JSON shape, as a script sees it: every key present, unknown
	// values null rather than missing.
	var doc map[string]any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "addr", "idle_threshold_seconds", "values", "services", "notices", "findings"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON lacks %q:\n%s", k, raw)
		}
	}
	for _, k := range []string{"timeout_seconds", "tcp_keepalive_seconds", "maxclients", "maxclients_from",
		"connected_clients", "blocked_clients", "rejected_connections", "total_connections_received", "client_list_count"} {
		if _, ok := doc["values"].(map[string]any)[k]; !ok {
			t.Errorf("JSON values lack %q:\n%s", k, raw)
		}
	}
	for _, k := range []string{"id", "severity", "reason", "fix", "values"} {
		if _, ok := doc["findings"].([]any)[0].(map[string]any)[k]; !ok {
			t.Errorf("JSON finding lacks %q:\n%s", k, raw)
		}
	}

	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "audit")
	if code != exitFindings || errOut != "" {
		t.Fatalf("text: exit %d, stderr %q", code, errOut)
	}
	wantText(t, out, "audit of "+srv.Addr(), "CONFIG GET timeout 0, tcp-keepalive 300, maxclients",
		"CLIENT LIST 1 connection (this inspector included)",
		"1 finding (0 critical, 1 warning):", "INFO stats rejected_connections 0, total_connections_received", "1. timeout-zero [warning]", "reason: timeout is 0:",
		"fix: CONFIG SET timeout 300")
	t.Logf("audit output:\n%s", out)
}

func TestAuditClean(t *testing.T) {
	srv := testserver.Redis(t, "--timeout", "300", "--tcp-keepalive", "300")
	newTestClient(t, srv.Addr(), "app")
	r, raw := auditReport(t, exitOK, "-addr", srv.Addr(), "audit", "--expect", "app=5")
	if len(r.Findings) != 0 || len(r.Notices) != 0 {
		t.Errorf("findings or notices on a clean server:\n%s", raw)
	}
	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "audit")
	if code != exitOK || errOut != "" || !strings.HasSuffix(out, "\nno findings: nothing to do\n") {
		t.Errorf("text: exit %d, stderr %q:\n%s", code, errOut, out)
	}
}

func TestAuditKeepaliveZero(t *testing.T) {
	srv := testserver.Redis(t, "--timeout", "300", "--tcp-keepalive", "0")
	r, raw := auditReport(t, exitFindings, "-addr", srv.Addr(), "audit")
	if got := findingIDs(r); got != "tcp-keepalive-zero" {
		t.Fatalf("findings %s, want tcp-keepalive-zero\n%s", got, raw)
	}
	if f := r.Findings[0]; !strings.Contains(f.Reason, "never detected") || !strings.Contains(f.Fix, "CONFIG SET tcp-keepalive 300") {
		t.Errorf("finding %+v", f)
	}
}

func TestAuditNearMaxclients(t *testing.T) {
	srv := testserver.Redis(t, "--timeout", "300", "--maxclients", "10")
	for range 8 {
		newTestClient(t, srv.Addr(), "crowd")
	}
	// 8 clients and the inspector: 9 of 10.
	r, raw := auditReport(t, exitFindings, "-addr", srv.Addr(), "audit")
	if got := findingIDs(r); got != "clients-near-maxclients" {
		t.Fatalf("findings %s, want clients-near-maxclients\n%s", got, raw)
	}
	f := r.Findings[0]
	if want := map[string]int64{"connected_clients": 9, "maxclients": 10, "percent": 90}; !reflect.DeepEqual(f.Values, want) {
		t.Errorf("values %v, want %v", f.Values, want)
	}
	if !strings.Contains(f.Reason, "connected_clients is 9 of maxclients 10 (90%") {
		t.Errorf("reason %q does not say the numbers", f.Reason)
	}
}

func TestAuditRejected(t *testing.T) {
	srv := testserver.Redis(t, "--timeout", "300", "--maxclients", "4")
	ctx := context.Background()
	admin := srv.Admin()
	if err := admin.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// The admin connection and 3 more fill the server; the next 2 are
	// rejected.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 5 {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i < 3 {
			// Wait for the server to take it, so that the next ones
			// are counted against a full server.
			if _, err := c.Write([]byte("PING\r\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "+PONG\r\n" {
				t.Fatalf("connection %d: %q, %v", i, line, err)
			}
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); !strings.Contains(line, "max number of clients") {
			t.Fatalf("connection %d not rejected: %q, %v", i, line, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	// Make room for the inspector: wait until the server has seen the
	// closes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := admin.Info(ctx, "clients").Result()
		if err == nil && strings.Contains(info, "connected_clients:1\r") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections not closed after 5s: %v\n%s", err, info)
		}
		time.Sleep(10 * time.Millisecond)
	}

	r, raw := auditReport(t, exitFindings, "-addr", srv.Addr(), "audit")
	if got := findingIDs(r); got != "rejected-connections" {
		t.Fatalf("findings %s, want rejected-connections\n%s", got, raw)
	}
	f := r.Findings[0]
	if f.Severity != severityCritical || !reflect.DeepEqual(f.Values, map[string]int64{"rejected_connections": 2, "maxclients": 4}) {
		t.Errorf("finding %+v", f)
	}
	if !strings.Contains(f.Reason, "rejected_connections is 2") || !strings.Contains(f.Reason, "maxclients (now 4)") {
		t.Errorf("reason %q does not say the numbers", f.Reason)
	}
}

func TestAuditExpect(t *testing.T) {
	srv := testserver.Redis(t, "--timeout", "300", "--maxclients", "20")
	// Sockets as pool.NewClient names them: process 123 of svc has 4,
	// process 456 one; other has one; "svc-2" and "app" are other
	// services, whose names svc must not match.
	for _, name := range []string{"svc.p123.s1", "svc.p123.s2", "svc.p123.s3", "svc.p123.s4", "svc.p456.s9",
		"other.p9.s1", "svc-2.p1.s1", "app"} {
		newTestClient(t, srv.Addr(), name)
	}

	// svc: 2 processes × 3 + other: 1 × 2 + absent: at least 1 × 4 = 12 of
	// 20; but svc.p123 holds 4 sockets, above its cap of 3.
	r, raw := auditReport(t, exitFindings, "-addr", srv.Addr(), "audit", "--expect", "svc=3,other=2", "--expect", "absent=4")
	if got := findingIDs(r); got != "process-over-cap" {
		t.Fatalf("findings %s, want process-over-cap\n%s", got, raw)
	}
	wantServices := []ServiceUsage{
		{Name: "svc", Cap: 3, Sockets: 5, ExpectedMax: 6, Processes: []ProcessUsage{
			{Process: "svc.p123", Host: "127.0.0.1", Sockets: 4},
			{Process: "svc.p456", Host: "127.0.0.1", Sockets: 1},
		}},
		{Name: "other", Cap: 2, Sockets: 1, ExpectedMax: 2, Processes: []ProcessUsage{{Process: "other.p9", Host: "127.0.0.1", Sockets: 1}}},
		{Name: "absent", Cap: 4, ExpectedMax: 4, Processes: []ProcessUsage{}},
	}
	if !reflect.DeepEqual(r.Services, wantServices) {
		t.Errorf("services\n got %+v\nwant %+v", r.Services, wantServices)
	}
	f := r.Findings[0]
	if want := []ProcessUsage{{Process: "svc.p123", Host: "127.0.0.1", Sockets: 4}}; !reflect.DeepEqual(f.Processes, want) {
		t.Errorf("processes over the cap %+v, want %+v", f.Processes, want)
	}
	if !strings.Contains(f.Reason, "svc: 1 of 2 processes hold more sockets than the cap of 3 (the most: svc.p123 from 127.0.0.1 with 4)") {
		t.Errorf("reason %q", f.Reason)
	}

	// With svc capped at 8 no process is above its cap, but the caps add
	// up to 2×8 + 2 + 4 = 22, above maxclients 20.
	r, raw = auditReport(t, exitFindings, "-addr", srv.Addr(), "audit", "--expect", "svc=8,other=2,absent=4")
	if got := findingIDs(r); got != "caps-over-maxclients" {
		t.Fatalf("findings %s, want caps-over-maxclients\n%s", got, raw)
	}
	f = r.Findings[0]
	if f.Severity != severityCritical || !reflect.DeepEqual(f.Values, map[string]int64{"expected_sockets": 22, "maxclients": 20}) {
		t.Errorf("finding %+v", f)
	}
	if !strings.Contains(f.Reason, "22 sockets (svc 8 × 2 processes + other 2 × 1 process + absent 4 × 1 process), more than maxclients 20") {
		t.Errorf("reason %q", f.Reason)
	}

	code, out, _ := runCLI(t, "-addr", srv.Addr(), "audit", "--expect", "svc=3,other=2,absent=4")
	if code != exitFindings {
		t.Fatalf("text: exit %d", code)
	}
	wantText(t, out, "--expect svc: cap 3 × 2 processes seen = 6 (5 sockets now) other: cap 2 × 1 process seen = 2"+
		" (1 socket now) absent: cap 4 × 1 (no process seen) = 4 (0 sockets now) in all: 12 of maxclients 20",
		"1. process-over-cap [warning]", "SOCKETS HOST PROCESS 4 127.0.0.1 svc.p123")
	t.Logf("audit output:\n%s", out)
}

// TestAuditIdle leaves clients idle on a server with timeout 0, expects
// them as leak suspects with --idle 1s, and none once timeout is set.
func TestAuditIdle(t *testing.T) {
	srv := testserver.Redis(t, "--timeout", "0")
	for _, name := range []string{"app-a", "app-a", "svc.p77.s1", "svc.p77.s2", ""} {
		newTestClient(t, srv.Addr(), name)
	}
	// Idle too, but pub/sub: not a suspect.
	newSubscriber(t, srv.Addr(), "listener", "redisleak:test:audit")
	time.Sleep(2200 * time.Millisecond) // CLIENT LIST counts idle in whole seconds

	r, raw := auditReport(t, exitFindings, "-addr", srv.Addr(), "audit", "--idle", "1s")
	if got := findingIDs(r); got != "timeout-zero,idle-suspects" {
		t.Fatalf("findings %s, want timeout-zero,idle-suspects\n%s", got, raw)
	}
	f := r.Findings[1]
	if want := map[string]int64{"idle_threshold_seconds": 1, "clients": 5}; !reflect.DeepEqual(f.Values, want) {
		t.Errorf("values %v, want %v", f.Values, want)
	}
	for i := range f.Groups {
		if f.Groups[i].MaxIdleSeconds < 1 {
			t.Errorf("group %+v: max idle under 1s", f.Groups[i])
		}
		f.Groups[i].MaxIdleSeconds = 0 // depends on the clock
	}
	wantGroups := []IdleGroup{
		{Name: "app-a", Host: "127.0.0.1", Count: 2, Cmds: []string{"ping"}},
		{Name: "svc.p77", Host: "127.0.0.1", Count: 2, Cmds: []string{"ping"}},
		{Name: "", Host: "127.0.0.1", Count: 1, Cmds: []string{"ping"}},
	}
	if !reflect.DeepEqual(f.Groups, wantGroups) {
		t.Errorf("groups\n got %+v\nwant %+v", f.Groups, wantGroups)
	}
	if !strings.Contains(f.Reason, "5 normal clients idle for 1s or more") || !strings.Contains(f.Reason, "timeout is 0") {
		t.Errorf("reason %q", f.Reason)
	}

	code, out, _ := runCLI(t, "-addr", srv.Addr(), "audit", "--idle", "1s")
	if code != exitFindings {
		t.Fatalf("text: exit %d", code)
	}
	wantText(t, out, "2. idle-suspects [warning]", "COUNT MAX IDLE HOST NAME LAST CMDS", "127.0.0.1 app-a ping",
		"127.0.0.1 svc.p77 ping", "127.0.0.1 (no name) ping")
	t.Logf("audit output:\n%s", out)

	// With a timeout the server closes idle clients itself: --idle no
	// longer makes suspects, and none of these is idle past 300s.
	if err := srv.Admin().ConfigSet(context.Background(), "timeout", "300").Err(); err != nil {
		t.Fatal(err)
	}
	r, raw = auditReport(t, exitOK, "-addr", srv.Addr(), "audit", "--idle", "1s")
	if len(r.Findings) != 0 {
		t.Errorf("findings with timeout 300:\n%s", raw)
	}
}

// TestAuditIdleBeyondTimeout checks, on fixed input, the finding a healthy
// redis-server never shows: normal clients idle past the timeout.
func TestAuditIdleBeyondTimeout(t *testing.T) {
	clients, err := parseClientList("" +
		"id=3 addr=10.0.0.5:40001 name=app-a age=900 idle=400 flags=N db=0 sub=0 psub=0 cmd=get\n" +
		"id=4 addr=10.0.0.5:40002 name=app-a age=900 idle=700 flags=N db=0 sub=0 psub=0 cmd=set\n" +
		"id=5 addr=10.0.0.6:40003 name=orders.p42.s7 age=900 idle=350 flags=N db=0 sub=0 psub=0 cmd=NULL\n" +
		// Within a second or two of the timeout: the server has not
		// been round yet.
		"id=6 addr=10.0.0.6:40004 name=late age=900 idle=301 flags=N db=0 sub=0 psub=0 cmd=get\n" +
		// Exempt from timeout: blocked, pub/sub, replica.
		"id=7 addr=10.0.0.6:40005 name=worker age=900 idle=800 flags=b db=0 sub=0 psub=0 cmd=blpop\n" +
		"id=8 addr=10.0.0.6:40006 name=listener age=900 idle=800 flags=P db=0 sub=1 psub=0 cmd=subscribe\n" +
		"id=9 addr=10.0.0.7:40007 name= age=900 idle=800 flags=S db=0 sub=0 psub=0 cmd=replconf\n")
	if err != nil {
		t.Fatal(err)
	}
	timeout := int64(300)
	in := auditInput{Clients: clients, Values: AuditValues{TimeoutSeconds: &timeout}}
	r := analyzeAudit(in, AuditOptions{Idle: time.Hour})
	if got := findingIDs(r); got != "idle-beyond-timeout" {
		t.Fatalf("findings %s, want idle-beyond-timeout", got)
	}
	f := r.Findings[0]
	want := []IdleGroup{
		{Name: "app-a", Host: "10.0.0.5", Count: 2, MaxIdleSeconds: 700, Cmds: []string{"get", "set"}},
		{Name: "orders.p42", Host: "10.0.0.6", Count: 1, MaxIdleSeconds: 350, Cmds: []string{}},
	}
	if !reflect.DeepEqual(f.Groups, want) {
		t.Errorf("groups\n got %+v\nwant %+v", f.Groups, want)
	}
	if !strings.Contains(f.Reason, "3 normal clients have been idle longer than timeout (5m)") {
		t.Errorf("reason %q", f.Reason)
	}

	// Unknown timeout (CONFIG refused): --idle judges, and the reason
	// says why.
	in.Values.TimeoutSeconds = nil
	in.ConfigRefused = "NOPERM no"
	r = analyzeAudit(in, AuditOptions{Idle: 10 * time.Minute})
	f = finding(t, r, "idle-suspects")
	if f.Values["clients"] != 1 || !strings.Contains(f.Reason, "timeout could not be read") {
		t.Errorf("finding %+v, want app-a's client idle 700s", f)
	}
}

// TestAuditOrder checks that critical findings come first.
func TestAuditOrder(t *testing.T) {
	zero, maxclients := int64(0), int64(10)
	in := auditInput{Values: AuditValues{TimeoutSeconds: &zero, TCPKeepaliveSeconds: &zero, Maxclients: &maxclients,
		ConnectedClients: 9, RejectedConnections: 3}}
	r := analyzeAudit(in, AuditOptions{Idle: time.Hour, Expect: []Expectation{{Name: "svc", Cap: 20}}})
	if got, want := findingIDs(r), "caps-over-maxclients,rejected-connections,timeout-zero,tcp-keepalive-zero,clients-near-maxclients"; got != want {
		t.Errorf("findings %s, want %s", got, want)
	}
}

// TestAuditACL audits as users the server refuses CONFIG, then CLIENT
// LIST: each refusal is a notice, and the rest is audited. The password
// appears nowhere in the output.
func TestAuditACL(t *testing.T) {
	srv := testserver.Redis(t, "--timeout", "0")
	const secret = "s3cret-Audit-pw"
	ctx := context.Background()
	for _, acl := range [][]any{
		{"ACL", "SETUSER", "auditor", "on", ">" + secret, "~*", "+@all", "-config"},
		{"ACL", "SETUSER", "blind", "on", ">" + secret, "~*", "+@all", "-client"},
	} {
		if err := srv.Admin().Do(ctx, acl...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	newTestClient(t, srv.Addr(), "svc.p1.s1")
	var outputs []string

	// Without CONFIG: timeout is unknown, so no timeout finding; the
	// clients are not idle for an hour: nothing to do, with a notice.
	r, raw := auditReport(t, exitOK, "-addr", srv.Addr(), "-user", "auditor", "-password", secret, "audit")
	outputs = append(outputs, raw)
	if len(r.Notices) != 1 || r.Notices[0].ID != "config-refused" {
		t.Fatalf("notices %+v, want config-refused\n%s", r.Notices, raw)
	}
	for _, want := range []string{`user "auditor"`, "NOPERM", "config|get", "timeout and tcp-keepalive not audited",
		"maxclients was read from INFO clients"} {
		if !strings.Contains(r.Notices[0].Reason, want) {
			t.Errorf("notice %q lacks %q", r.Notices[0].Reason, want)
		}
	}
	v := r.Values
	if v.TimeoutSeconds != nil || v.TCPKeepaliveSeconds != nil || v.Maxclients == nil || v.MaxclientsFrom != fromInfo {
		t.Errorf("values %s", raw)
	}
	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "-user", "auditor", "-password", secret, "audit")
	outputs = append(outputs, out, errOut)
	if code != exitOK {
		t.Errorf("text: exit %d", code)
	}
	wantText(t, out, "CONFIG GET nothing read (see the notes)", "INFO clients maxclients ", "note: CONFIG GET refused",
		"no findings: nothing to do")

	// Without CLIENT: CONFIG shows timeout 0; --expect counts one process.
	r, raw = auditReport(t, exitFindings, "-addr", srv.Addr(), "-user", "blind", "-password", secret, "audit", "--expect", "svc=5")
	outputs = append(outputs, raw)
	if len(r.Notices) != 1 || r.Notices[0].ID != "client-list-refused" || !strings.Contains(r.Notices[0].Reason, "client|list") {
		t.Fatalf("notices %+v, want client-list-refused\n%s", r.Notices, raw)
	}
	if got := findingIDs(r); got != "timeout-zero" {
		t.Errorf("findings %s, want timeout-zero", got)
	}
	if r.Values.ClientListCount != nil || len(r.Services) != 1 || r.Services[0].ExpectedMax != 5 {
		t.Errorf("values or services %s", raw)
	}

	// A wrong password is an audit that could not run.
	code, out, errOut = runCLI(t, "-addr", srv.Addr(), "-user", "auditor", "-password", secret+"x", "audit")
	outputs = append(outputs, out, errOut)
	wantOneLineError(t, code, errOut, exitAuditFailed, "authentication failed", srv.Addr())

	for _, o := range outputs {
		if strings.Contains(o, secret) {
			t.Errorf("the password appears in the output:\n%s", o)
		}
	}
}

func TestAuditUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, extra := range [][]string{nil, {"--json"}} {
		code, out, errOut := runCLI(t, append([]string{"-addr", addr, "-timeout", "2s", "audit"}, extra...)...)
		wantOneLineError(t, code, errOut, exitAuditFailed, "cannot connect to "+addr)
		if out != "" {
			t.Errorf("stdout %q, want nothing", out)
		}
	}
}

func TestAuditUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "--idle", "0s"}, "--idle must be positive"},
		{[]string{"audit", "--idle", "soon"}, `invalid value "soon" for flag -idle`},
		{[]string{"audit", "--expect", "svc"}, `"svc": want name=cap`},
		{[]string{"audit", "--expect", "=3"}, `"=3": want name=cap`},
		{[]string{"audit", "--expect", "svc=0"}, "the cap must be a positive whole number"},
		{[]string{"audit", "--expect", "svc=many"}, "the cap must be a positive whole number"},
		{[]string{"audit", "--expect", "svc=3,"}, `"": want name=cap`},
		{[]string{"audit", "--expect", "svc=3", "--expect", "svc=4"}, `"svc" given twice`},
		{[]string{"audit", "extra"}, `unexpected argument "extra"`},
		{[]string{"audit", "-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"audit", "--nosuchflag"}, "flag provided but not defined"},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		wantOneLineError(t, code, errOut, exitUsage, tc.want)
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out)
		}
	}
}

func TestAuditExpectFlag(t *testing.T) {
	var e expectFlag
	for _, s := range []string{"orders-api=20, worker=5", "odd=name=3", "two words=1"} {
		if err := e.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	// Names are matched as pool.NewClient writes them, spaces as '_'.
	want := expectFlag{{"orders-api", 20}, {"worker", 5}, {"odd=name", 3}, {"two_words", 1}}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got %+v, want %+v", e, want)
	}
	if got := e.String(); got != "orders-api=20,worker=5,odd=name=3,two_words=1" {
		t.Errorf("String() = %q", got)
	}
}

func TestAuditHelp(t *testing.T) {
	code, out, errOut := runCLI(t, "audit", "-h")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	wantText(t, out, "audit check timeout", "--expect name=cap", "audit: 0 nothing to do, 1 findings, 2 usage or connection error")
}
