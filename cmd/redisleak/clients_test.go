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
	if got, want := keys(doc), "age_buckets,blocked,by_host,by_name,idle,idle_threshold_seconds,pubsub,self_id,time,top,total"; got != want {
		t.Errorf("top-level keys %s, want %s", got, want)
	}
	if doc["time"] != "2025-03-04T03:00:00Z" || doc["idle_threshold_seconds"] != 3600.0 {
		t.Errorf("time %v, idle_threshold_seconds %v", doc["time"], doc["idle_threshold_seconds"])
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
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
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
