package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleClientList is a CLIENT LIST reply (redis 7.0 format, plus one
// 6.2-style line without ssub and with an unknown field) with:
//   - id 10: the inspector itself (excluded),
//   - ids 11-13: "app-a" from 10.0.0.5, idle 2h, ages 30s / 2h / 3d,
//   - id 14: unnamed from 10.0.0.6, blocked in BLPOP, idle 5000s,
//   - id 15: "listener" from 10.0.0.6, pub/sub (flag P), idle 2h,
//   - id 16: "sharded" from [::1], RESP3 shard subscriber without P, idle 0,
//   - id 17: "app-a" from 10.0.0.6, busy (idle 0), age 59s.
const sampleClientList = "" +
	"id=10 addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=client|list user=default resp=2\n" +
	"id=11 addr=10.0.0.5:40001 laddr=127.0.0.1:6379 fd=9 name=app-a age=30 idle=7200 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get user=default resp=2\n" +
	"id=12 addr=10.0.0.5:40002 laddr=127.0.0.1:6379 fd=10 name=app-a age=7200 idle=7200 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get user=default resp=2\n" +
	"id=13 addr=10.0.0.5:40003 laddr=127.0.0.1:6379 fd=11 name=app-a age=259200 idle=7200 flags=N db=1 sub=0 psub=0 ssub=0 multi=-1 cmd=set user=default resp=2\r\n" +
	"\n" +
	"id=14 addr=10.0.0.6:40004 laddr=127.0.0.1:6379 fd=12 name= age=5000 idle=5000 flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=blpop user=default resp=2\n" +
	"id=15 addr=10.0.0.6:40005 laddr=127.0.0.1:6379 fd=13 name=listener age=7200 idle=7200 flags=P db=0 sub=2 psub=0 ssub=0 multi=-1 cmd=subscribe user=default resp=2\n" +
	"id=16 addr=[::1]:40006 fd=14 name=sharded age=86400 idle=0 flags=N db=0 sub=0 psub=0 ssub=1 multi=-1 cmd=ssubscribe user=default resp=3\n" +
	"id=17 addr=10.0.0.6:40007 fd=15 name=app-a age=59 idle=0 flags=N db=0 sub=0 psub=0 multi=-1 cmd=ping lib-name=go-redis\n"

var sampleNow = time.Date(2025, 3, 4, 3, 0, 0, 0, time.UTC)

func analyzeSample(t *testing.T, top int) Report {
	t.Helper()
	r, err := analyzeClientList(sampleClientList, sampleNow, AnalyzeOptions{SelfID: 10, IdleThreshold: time.Hour, Top: top})
	if err != nil {
		t.Fatalf("analyzeClientList: %v", err)
	}
	return r
}

func TestParseClientList(t *testing.T) {
	clients, err := parseClientList(sampleClientList)
	if err != nil {
		t.Fatal(err)
	}
	if len(clients) != 8 {
		t.Fatalf("parsed %d clients, want 8", len(clients))
	}
	want := Client{ID: 13, Addr: "10.0.0.5:40003", Name: "app-a", Age: 72 * time.Hour, Idle: 2 * time.Hour, Flags: "N", DB: 1, Cmd: "set"}
	if clients[3] != want {
		t.Errorf("client 13 = %+v, want %+v", clients[3], want)
	}
	if got := clients[6]; got.SSub != 1 || got.Host() != "::1" {
		t.Errorf("client 16: ssub %d host %q, want 1 and ::1", got.SSub, got.Host())
	}
}

func TestParseClientListErrors(t *testing.T) {
	for _, text := range []string{
		"addr=1.2.3.4:5 age=1\n",        // no id
		"id=1 addr=1.2.3.4:5 garbage\n", // pair without '='
		"id=1 age=soon\n",               // bad number
	} {
		if _, err := parseClientList(text); err == nil {
			t.Errorf("parseClientList(%q): no error", text)
		}
	}
}

func TestAnalyzeTotalsAndBuckets(t *testing.T) {
	r := analyzeSample(t, 10)
	if r.Total != 7 || r.SelfID != 10 {
		t.Errorf("total %d self %d, want 7 and 10 (the inspector excluded)", r.Total, r.SelfID)
	}
	got := map[string]int{}
	for _, b := range r.AgeBuckets {
		got[b.Label] = b.Count
	}
	// ages: 30, 59 | none | 5000, 7200, 7200 | 259200, 86400 (one day is >1d)
	want := map[string]int{"<1m": 2, "1m-1h": 0, "1h-1d": 3, ">1d": 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("age buckets %v, want %v", got, want)
	}
	var labels []string
	for _, b := range r.AgeBuckets {
		labels = append(labels, b.Label)
	}
	if strings.Join(labels, ",") != "<1m,1m-1h,1h-1d,>1d" {
		t.Errorf("bucket order %v", labels)
	}
}

func TestAnalyzeGrouping(t *testing.T) {
	r := analyzeSample(t, 10)
	hosts := groupCounts(r.ByHost)
	if want := "10.0.0.5=3,10.0.0.6=3,::1=1"; hosts != want {
		t.Errorf("by host %s, want %s", hosts, want)
	}
	names := groupCounts(r.ByName)
	if want := "app-a=4,=1,listener=1,sharded=1"; names != want {
		t.Errorf("by name %s, want %s", names, want)
	}
	a := r.ByName.Groups[0]
	if a.Idle != 3 || a.OldestAgeSeconds != 259200 || a.MaxIdleSeconds != 7200 {
		t.Errorf("app-a group %+v: want idle 3, oldest 259200, max idle 7200", a)
	}
	h6 := r.ByHost.Groups[1]
	if h6.Blocked != 1 || h6.PubSub != 1 || h6.Idle != 0 {
		t.Errorf("10.0.0.6 group %+v: want 1 blocked, 1 pubsub, 0 idle", h6)
	}

	top := analyzeSample(t, 1)
	if len(top.ByHost.Groups) != 1 || top.ByHost.TotalGroups != 3 || top.ByHost.OtherConnections != 4 {
		t.Errorf("top 1 by host: %+v, want 1 group of 3, 4 other connections", top.ByHost)
	}
	if top.Idle.Count != 3 || len(top.Idle.Clients) != 1 {
		t.Errorf("top 1 idle: count %d, %d listed; want 3 and 1", top.Idle.Count, len(top.Idle.Clients))
	}
}

func groupCounts(g Grouping) string {
	var parts []string
	for _, x := range g.Groups {
		parts = append(parts, x.Key+"="+strconv.Itoa(x.Count))
	}
	return strings.Join(parts, ",")
}

func TestAnalyzeIdleBlockedPubSub(t *testing.T) {
	r := analyzeSample(t, 10)
	if got := ids(r.Idle); !reflect.DeepEqual(got, []int64{11, 12, 13}) {
		t.Errorf("idle ids %v, want [11 12 13] (blocked and pub/sub left out)", got)
	}
	if got := ids(r.Blocked); !reflect.DeepEqual(got, []int64{14}) {
		t.Errorf("blocked ids %v, want [14]", got)
	}
	if got := ids(r.PubSub); !reflect.DeepEqual(got, []int64{15, 16}) {
		t.Errorf("pubsub ids %v, want [15 16]", got)
	}

	// The threshold is inclusive: idle == threshold counts.
	r, _ = analyzeClientList(sampleClientList, sampleNow, AnalyzeOptions{SelfID: 10, IdleThreshold: 7200 * time.Second})
	if r.Idle.Count != 3 {
		t.Errorf("idle at threshold 7200s: %d, want 3", r.Idle.Count)
	}
	r, _ = analyzeClientList(sampleClientList, sampleNow, AnalyzeOptions{SelfID: 10, IdleThreshold: 7201 * time.Second})
	if r.Idle.Count != 0 {
		t.Errorf("idle at threshold 7201s: %d, want 0", r.Idle.Count)
	}
}

func ids(s ClientSet) []int64 {
	var out []int64
	for _, c := range s.Clients {
		out = append(out, c.ID)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestReportJSONShape pins the --json document's field names: scripts
// depend on them.
func TestReportJSONShape(t *testing.T) {
	b, err := json.Marshal(analyzeSample(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(doc), "age_buckets,blocked,by_host,by_name,by_process,idle,idle_threshold_seconds,not_named_by_redisleak,pubsub,self_id,time,top,total"; got != want {
		t.Errorf("top-level keys %s, want %s", got, want)
	}
	if doc["time"] != "2025-03-04T03:00:00Z" || doc["idle_threshold_seconds"] != 3600.0 {
		t.Errorf("time %v, idle_threshold_seconds %v", doc["time"], doc["idle_threshold_seconds"])
	}
	// No name in the sample is redisleak's: an empty grouping, all 7 not named.
	if bp, _ := json.Marshal(doc["by_process"]); string(bp) != `{"groups":[],"other_connections":0,"total_groups":0}` || doc["not_named_by_redisleak"] != 7.0 {
		t.Errorf("by_process %s, not_named_by_redisleak %v; want empty and 7", bp, doc["not_named_by_redisleak"])
	}
	byHost := doc["by_host"].(map[string]any)
	if got, want := keys(byHost), "groups,other_connections,total_groups"; got != want {
		t.Errorf("by_host keys %s, want %s", got, want)
	}
	g := byHost["groups"].([]any)[0].(map[string]any)
	if got, want := keys(g), "blocked,count,idle,key,max_idle_seconds,oldest_age_seconds,pubsub"; got != want {
		t.Errorf("group keys %s, want %s", got, want)
	}
	c := doc["blocked"].(map[string]any)["clients"].([]any)[0].(map[string]any)
	if got, want := keys(c), "addr,age_seconds,cmd,db,flags,id,idle_seconds,name"; got != want {
		t.Errorf("client keys %s, want %s", got, want)
	}
	b0 := doc["age_buckets"].([]any)[0].(map[string]any)
	if got, want := keys(b0), "count,label,max_seconds,min_seconds"; got != want {
		t.Errorf("bucket keys %s, want %s", got, want)
	}

	// Empty lists are [] rather than null.
	empty, _ := json.Marshal(analyzeClients(nil, sampleNow, AnalyzeOptions{}))
	if bytes.Contains(empty, []byte("null")) {
		t.Errorf("empty report has null: %s", empty)
	}
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func TestWriteReport(t *testing.T) {
	var buf bytes.Buffer
	if err := writeReport(&buf, "redis:6379", analyzeSample(t, 10)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"7 connections (not counting this inspector, id 10)",
		"idle>=1h: 3   blocked: 1   pub/sub: 2",
		"(no name)",
		"Blocked: 1",
		"10.0.0.6:40004",
		"\nBy process: none (no connection is named <client>.p<pid>.s<socket>, as pool.NewClient names its sockets)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Without redisleak's names, the one-line hint comes after the other
	// groupings, and there is no by-process table.
	if strings.Index(out, "By process: none") < strings.Index(out, "By client name") {
		t.Errorf("the by-process hint comes before the groupings:\n%s", out)
	}
	for _, unwanted := range []string{"By process (", "PROCESS", "Socket names"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("report has %q with no redisleak names:\n%s", unwanted, out)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for s, want := range map[int64]string{0: "0s", 59: "59s", 60: "1m", 250: "4m10s", 3600: "1h", 11100: "3h05m", 86400: "1d", 183600: "2d03h"} {
		if got := humanDuration(s); got != want {
			t.Errorf("humanDuration(%d) = %q, want %q", s, got, want)
		}
	}
}

func TestIdleCandidates(t *testing.T) {
	clients, err := parseClientList(sampleClientList)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, c := range idleCandidates(clients, 10, time.Hour) {
		got = append(got, c.ID)
	}
	// 13 is oldest of the equally idle 11-13; blocked 14, pub/sub 15 and 16
	// and busy 17 are never candidates.
	if want := []int64{13, 12, 11}; !reflect.DeepEqual(got, want) {
		t.Errorf("candidates %v, want %v", got, want)
	}
	for _, c := range idleCandidates(clients, 10, 0) {
		if c.ID == 10 || c.ID == 14 || c.ID == 15 || c.ID == 16 {
			t.Errorf("threshold 0: candidate %d must never be killed", c.ID)
		}
	}
}

// namedClientList is a CLIENT LIST reply with sockets named by redisleak
// ("<client>.p<pid>.s<socket>") and others:
//   - id 30: the inspector itself (excluded),
//   - ids 31-34: svc.p100.s3 (idle 7200), s1 (busy, idle 0), s2 (idle
//     4000) and s10 (idle 3600, exactly the 1h threshold), from 10.0.0.5,
//   - id 35: svc.p200.s1, blocked in BLPOP, idle 5000,
//   - id 36: other.p100.s1, pub/sub: the same pid as svc but another client,
//   - id 37: a.p1.s2.p3.s4, a client name that itself looks like a socket
//     name ("a.p1.s2", pid 3, socket 4), idle 7200,
//   - ids 38-41: not named by redisleak: app-a, svc.p100 and svc.p100.s
//     (incomplete), and unnamed; all but 41 idle 7200.
const namedClientList = "" +
	"id=30 addr=127.0.0.1:50000 fd=8 name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=client|list\n" +
	"id=31 addr=10.0.0.5:40001 fd=9 name=svc.p100.s3 age=7300 idle=7200 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get\n" +
	"id=32 addr=10.0.0.5:40002 fd=10 name=svc.p100.s1 age=100 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get\n" +
	"id=33 addr=10.0.0.5:40003 fd=11 name=svc.p100.s2 age=4000 idle=4000 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get\n" +
	"id=34 addr=10.0.0.5:40004 fd=12 name=svc.p100.s10 age=3600 idle=3600 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=set\n" +
	"id=35 addr=10.0.0.6:40005 fd=13 name=svc.p200.s1 age=5000 idle=5000 flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=blpop\n" +
	"id=36 addr=10.0.0.6:40006 fd=14 name=other.p100.s1 age=60 idle=60 flags=P db=0 sub=1 psub=0 ssub=0 multi=-1 cmd=subscribe\n" +
	"id=37 addr=10.0.0.7:40007 fd=15 name=a.p1.s2.p3.s4 age=90000 idle=7200 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get\n" +
	"id=38 addr=10.0.0.7:40008 fd=16 name=app-a age=7200 idle=7200 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get\n" +
	"id=39 addr=10.0.0.7:40009 fd=17 name=svc.p100 age=7200 idle=7200 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get\n" +
	"id=40 addr=10.0.0.7:40010 fd=18 name=svc.p100.s age=7200 idle=7200 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get\n" +
	"id=41 addr=10.0.0.7:40011 fd=19 name= age=10 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=ping\n"

func analyzeNamed(t *testing.T, top int) Report {
	t.Helper()
	r, err := analyzeClientList(namedClientList, sampleNow, AnalyzeOptions{SelfID: 30, IdleThreshold: time.Hour, Top: top})
	if err != nil {
		t.Fatalf("analyzeClientList: %v", err)
	}
	return r
}

func TestAnalyzeByProcess(t *testing.T) {
	r := analyzeNamed(t, 0)
	if r.Total != 11 || r.NotNamedByRedisleak != 4 {
		t.Errorf("total %d, not named by redisleak %d; want 11 and 4 (app-a, svc.p100, svc.p100.s, unnamed)", r.Total, r.NotNamedByRedisleak)
	}
	want := Grouping{TotalGroups: 4, Groups: []Group{
		// s10 sorts after s2 (by number, not text); the busy s1 comes last.
		{Key: "svc.p100", Count: 4, Idle: 3, OldestAgeSeconds: 7300, MaxIdleSeconds: 7200,
			Sockets: []string{"svc.p100.s2", "svc.p100.s3", "svc.p100.s10", "svc.p100.s1"}},
		{Key: "a.p1.s2.p3", Count: 1, Idle: 1, OldestAgeSeconds: 90000, MaxIdleSeconds: 7200,
			Sockets: []string{"a.p1.s2.p3.s4"}},
		{Key: "other.p100", Count: 1, PubSub: 1, OldestAgeSeconds: 60, MaxIdleSeconds: 60,
			Sockets: []string{"other.p100.s1"}},
		{Key: "svc.p200", Count: 1, Blocked: 1, OldestAgeSeconds: 5000, MaxIdleSeconds: 5000,
			Sockets: []string{"svc.p200.s1"}},
	}}
	if !reflect.DeepEqual(r.ByProcess, want) {
		t.Errorf("by process\n got %+v\nwant %+v", r.ByProcess, want)
	}
	// The named connections stay in the other groupings, without sockets.
	if got, want := groupCounts(r.ByHost), "10.0.0.7=5,10.0.0.5=4,10.0.0.6=2"; got != want {
		t.Errorf("by host %s, want %s", got, want)
	}
	// Sockets named by redisleak count under their client's name; other
	// names, and the unnamed, are a group each.
	if got, want := groupCounts(r.ByName), "svc=5,=1,a.p1.s2=1,app-a=1,other=1,svc.p100=1,svc.p100.s=1"; got != want {
		t.Errorf("by name %s, want %s", got, want)
	}
	for _, g := range append(r.ByHost.Groups, r.ByName.Groups...) {
		if g.Sockets != nil {
			t.Errorf("group %q outside by process lists sockets %v", g.Key, g.Sockets)
		}
	}
	if r.Idle.Count != 7 || r.Blocked.Count != 1 || r.PubSub.Count != 1 {
		t.Errorf("idle %d blocked %d pubsub %d, want 7, 1, 1", r.Idle.Count, r.Blocked.Count, r.PubSub.Count)
	}
}

func TestAnalyzeByProcessTop(t *testing.T) {
	r := analyzeNamed(t, 2)
	bp := r.ByProcess
	if got := groupCounts(bp); got != "svc.p100=4,a.p1.s2.p3=1" || bp.TotalGroups != 4 || bp.OtherConnections != 2 {
		t.Errorf("top 2 by process: %s, %d groups, %d other connections; want svc.p100=4,a.p1.s2.p3=1, 4 and 2",
			got, bp.TotalGroups, bp.OtherConnections)
	}
	// At most Top sockets, the idle ones first; Count keeps the total.
	if got := bp.Groups[0].Sockets; !reflect.DeepEqual(got, []string{"svc.p100.s2", "svc.p100.s3"}) || bp.Groups[0].Count != 4 {
		t.Errorf("top 2 svc.p100 sockets %v of %d, want [svc.p100.s2 svc.p100.s3] of 4", got, bp.Groups[0].Count)
	}
	if r.NotNamedByRedisleak != 4 {
		t.Errorf("not named by redisleak %d with top 2, want 4 (Top only trims lists)", r.NotNamedByRedisleak)
	}
}

func TestByProcessJSON(t *testing.T) {
	b, err := json.Marshal(analyzeNamed(t, 10))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ByProcess struct {
			Groups []map[string]any `json:"groups"`
		} `json:"by_process"`
		ByHost struct {
			Groups []map[string]any `json:"groups"`
		} `json:"by_host"`
		NotNamed *int `json:"not_named_by_redisleak"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.NotNamed == nil || *doc.NotNamed != 4 {
		t.Errorf("not_named_by_redisleak missing or not 4: %s", b)
	}
	if len(doc.ByProcess.Groups) != 4 {
		t.Fatalf("by_process has %d groups, want 4: %s", len(doc.ByProcess.Groups), b)
	}
	g := doc.ByProcess.Groups[0]
	if got, want := keys(g), "blocked,count,idle,key,max_idle_seconds,oldest_age_seconds,pubsub,sockets"; got != want {
		t.Errorf("by_process group keys %s, want %s", got, want)
	}
	if got, _ := json.Marshal(g["sockets"]); string(got) != `["svc.p100.s2","svc.p100.s3","svc.p100.s10","svc.p100.s1"]` {
		t.Errorf("sockets %s", got)
	}
	if _, ok := doc.ByHost.Groups[0]["sockets"]; ok {
		t.Errorf("by_host group has sockets: %v", doc.ByHost.Groups[0])
	}
}

// fieldsOf returns the fields of the first line of out ending in "  "+key,
// "" if there is none.
func fieldsOf(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, "  "+key) {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	return ""
}

func TestWriteReportByProcess(t *testing.T) {
	var buf bytes.Buffer
	if err := writeReport(&buf, "redis:6379", analyzeNamed(t, 10)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"\nBy process (names set by redisleak: <client>.p<pid>.s<socket>; 4 groups)\n",
		"  4 of 11 connections not named by redisleak: only in the groupings by host and by name\n",
		"  Socket names, to look up in the service's leak report (idle first):\n" +
			"    svc.p100\n" +
			"      idle>=1h  svc.p100.s2 svc.p100.s3 svc.p100.s10\n" +
			"      not idle  svc.p100.s1\n" +
			"    a.p1.s2.p3\n" +
			"      idle>=1h  a.p1.s2.p3.s4\n" +
			"    other.p100\n" +
			"      not idle  other.p100.s1\n" +
			"    svc.p200\n" +
			"      not idle  svc.p200.s1\n\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// COUNT IDLE BLOCKED PUBSUB OLDEST MAX-IDLE PROCESS
	for key, want := range map[string]string{
		"PROCESS":  "COUNT IDLE>=1h BLOCKED PUBSUB OLDEST MAX IDLE PROCESS",
		"svc.p100": "4 3 0 0 2h01m 2h svc.p100",
		"svc.p200": "1 0 1 0 1h23m 1h23m svc.p200",
	} {
		if got := fieldsOf(out, key); got != want {
			t.Errorf("row %s: %q, want %q\n%s", key, got, want, out)
		}
	}
	// By process is the first section after the totals, and the hint for
	// reports without redisleak names is not printed.
	if i, j := strings.Index(out, "By process ("), strings.Index(out, "By age"); i < 0 || i > j {
		t.Errorf("by process does not come before by age:\n%s", out)
	}
	if strings.Contains(out, "By process: none") {
		t.Errorf("hint printed although names are present:\n%s", out)
	}

	buf.Reset()
	if err := writeReport(&buf, "redis:6379", analyzeNamed(t, 2)); err != nil {
		t.Fatal(err)
	}
	out = buf.String()
	for _, want := range []string{
		"\nBy process (names set by redisleak: <client>.p<pid>.s<socket>; top 2 of 4 groups)\n",
		"    svc.p100\n" +
			"      idle>=1h  svc.p100.s2 svc.p100.s3\n" +
			"      ... and 2 more (1 of them idle>=1h); --top 0 lists all\n" +
			"    a.p1.s2.p3\n" +
			"      idle>=1h  a.p1.s2.p3.s4\n\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("top 2 report lacks %q:\n%s", want, out)
		}
	}
	if got, want := fieldsOf(out, "(other 2 groups)"), "2 (other 2 groups)"; !strings.Contains(out, "PROCESS") || got != want {
		t.Errorf("top 2 other-groups row %q, want %q", got, want)
	}
}

// TestWriteReportWrapsSockets checks that a long socket list wraps at
// lineWidth without splitting or losing a name.
func TestWriteReportWrapsSockets(t *testing.T) {
	var clients []Client
	var want []string
	for i := 1; i <= 30; i++ {
		name := "checkout-service.p4242.s" + strconv.Itoa(i)
		want = append(want, name)
		clients = append(clients, Client{ID: int64(i), Addr: "10.0.0.9:1", Name: name, Idle: 2 * time.Hour, Age: 2 * time.Hour, Flags: "N"})
	}
	var buf bytes.Buffer
	if err := writeReport(&buf, "redis:6379", analyzeClients(clients, sampleNow, AnalyzeOptions{IdleThreshold: time.Hour})); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	_, section, _ := strings.Cut(out, "    checkout-service.p4242\n")
	section, _, _ = strings.Cut(section, "\n\n")
	lines := strings.Split(section, "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "      idle>=1h  checkout-service.p4242.s1 ") {
		t.Fatalf("socket list not wrapped as expected:\n%s", out)
	}
	var got []string
	for i, line := range lines {
		if len(line) > lineWidth {
			t.Errorf("line %d is %d characters, over %d: %q", i, len(line), lineWidth, line)
		}
		if i > 0 && !strings.HasPrefix(line, strings.Repeat(" ", 16)+"checkout-service.p4242.s") {
			t.Errorf("continuation line %d not indented under the first name: %q", i, line)
		}
		got = append(got, strings.Fields(strings.TrimPrefix(line, "      idle>=1h"))...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("wrapped names\n got %v\nwant %v", got, want)
	}
}
