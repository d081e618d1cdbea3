package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// series builds one sample per second from parallel slices of
// connected_clients and total_connections_received.
func series(connected, total []int64) []Sample {
	t0 := time.Date(2025, 3, 4, 3, 0, 0, 0, time.UTC)
	out := make([]Sample, len(connected))
	for i := range connected {
		out[i] = Sample{Time: t0.Add(time.Duration(i) * time.Second), ConnectedClients: connected[i], TotalConnectionsReceived: total[i]}
	}
	return out
}

func TestDetectChurnFlat(t *testing.T) {
	// 5 new connections a second (300/min), count flat around 50.
	s := series([]int64{50, 51, 50, 52, 50}, []int64{1000, 1005, 1010, 1015, 1020})
	w := detect(s)
	if len(w) != 1 || !strings.Contains(w[0], "churn") || !strings.Contains(w[0], "300 new connections/min") {
		t.Fatalf("warnings %q, want one churn warning at 300/min", w)
	}
	// Fewer than 5 samples: too early to tell.
	if w := detect(s[:4]); len(w) != 0 {
		t.Errorf("4 samples: warnings %q, want none", w)
	}
}

func TestDetectChurnNotFlat(t *testing.T) {
	// Same churn, but the count grows by more than 10%: not the
	// missing-pool pattern.
	s := series([]int64{50, 56, 50, 60, 58}, []int64{1000, 1005, 1010, 1015, 1020})
	if w, ok := detectChurn(s); ok {
		t.Errorf("churn warning %q for a count moving 20%%", w)
	}
}

func TestDetectClimb(t *testing.T) {
	s := series([]int64{40, 40, 41, 42, 43, 44}, []int64{100, 100, 101, 102, 103, 104})
	w := detect(s)
	if len(w) != 1 || !strings.Contains(w[0], "climbing: 40 -> 44") || !strings.Contains(w[0], "last 5 samples") {
		t.Fatalf("warnings %q, want one climb warning 40 -> 44 over 5 samples", w)
	}
	// A single flat step breaks the run.
	s = series([]int64{40, 41, 42, 42, 43, 44}, []int64{100, 101, 102, 102, 103, 104})
	if w := detect(s); len(w) != 0 {
		t.Errorf("interrupted climb: warnings %q, want none", w)
	}
}

func TestDetectNormal(t *testing.T) {
	// A pooled application: steady count, a new connection now and then.
	s := series([]int64{20, 20, 21, 20, 20, 20, 19, 20}, []int64{500, 500, 501, 501, 501, 501, 501, 502})
	for i := 1; i <= len(s); i++ {
		if w := detect(s[:i]); len(w) != 0 {
			t.Errorf("after %d samples: warnings %q, want none", i, w)
		}
	}
	// A server restart resets the counter: no bogus rate.
	s = series([]int64{20, 20, 20, 20, 20}, []int64{5000, 5001, 3, 4, 5})
	if w := detect(s); len(w) != 0 {
		t.Errorf("counter reset: warnings %q, want none", w)
	}
}

func TestDetectRejected(t *testing.T) {
	s := series([]int64{100, 100}, []int64{1, 1})
	s[1].RejectedConnections = 3
	w := detect(s)
	if len(w) != 1 || !strings.Contains(w[0], "3 connections rejected") {
		t.Fatalf("warnings %q, want one rejected warning", w)
	}
}

func TestSampleFromInfo(t *testing.T) {
	info := "# Clients\r\nconnected_clients:7\r\ncluster_connections:0\r\nblocked_clients:2\r\n\n" +
		"# Stats\r\ntotal_connections_received:1234\r\nrejected_connections:5\r\n"
	now := time.Now()
	got, err := sampleFromInfo(now, info)
	if err != nil {
		t.Fatal(err)
	}
	want := Sample{Time: now, ConnectedClients: 7, BlockedClients: 2, TotalConnectionsReceived: 1234, RejectedConnections: 5}
	if got != want {
		t.Errorf("sample %+v, want %+v", got, want)
	}
	if _, err := sampleFromInfo(now, "# Clients\r\nconnected_clients:7\r\n"); err == nil {
		t.Error("no error for an INFO reply without the stats fields")
	}
}

func TestFormatSample(t *testing.T) {
	s := series([]int64{10, 12}, []int64{100, 103})
	line := formatSample(s)
	if !strings.Contains(line, "03:00:01") || !strings.Contains(line, "180.0") {
		t.Errorf("line %q: want time 03:00:01 and 180.0 new/min", line)
	}
	if line := formatSample(s[:1]); !strings.Contains(line, " - ") {
		t.Errorf("first line %q: want '-' for the unknown rate", line)
	}
}

// A pattern is warned about when it starts and said cleared when it ends,
// not on every sample while it lasts.
func TestWatchWarnsOnChange(t *testing.T) {
	s := series([]int64{40, 40, 41, 42, 43, 44, 45, 46, 46, 46}, []int64{100, 100, 101, 102, 103, 104, 105, 106, 106, 106})
	active := make(map[string]bool)
	var got []string
	for i := 1; i <= len(s); i++ {
		for _, line := range changes(s[:i], active) {
			got = append(got, strconv.Itoa(i)+": "+line)
		}
	}
	if len(got) != 2 || !strings.Contains(got[0], "WARNING") || !strings.Contains(got[0], "climbing") || !strings.HasSuffix(got[1], "cleared: climb") {
		t.Fatalf("lines %q; want one WARNING when the climb starts and one when it clears", got)
	}
}
