package track

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisleak/redisleak/internal/track/tracktest"
)

func TestMarkDroppedLogsWhileWatched(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("c")
	var logs bytes.Buffer
	stop := s.WatchHeld(WatchConfig{Log: slog.New(slog.NewTextHandler(&logs, nil))}) // no threshold: no goroutine
	tok, line := s.Checkout(context.Background(), KindConn, "", 0), tracktest.Line()
	tok.SetConnName("app.p1.s7")
	if !tok.MarkDropped() || tok.MarkDropped() {
		t.Fatal("MarkDropped: want true once, then false")
	}
	out := logs.String()
	if strings.Count(out, "definite leak") != 1 || !strings.Contains(out, "watch_test.go:"+strconv.Itoa(line)) || !strings.Contains(out, "conn=app.p1.s7") {
		t.Errorf("want one WARN with the origin line %d and the connection:\n%s", line, out)
	}
	stop()
	tok2 := s.Checkout(context.Background(), KindConn, "", 0)
	tok2.MarkDropped()
	if strings.Count(logs.String(), "definite leak") != 1 {
		t.Errorf("a drop after the watch stopped was logged:\n%s", logs.String())
	}
	tok.Release()
	tok2.Release()
}

func TestCollectorSkipsWhenTheRuntimeCollected(t *testing.T) {
	c := newCollector(time.Hour)
	var cycles uint64 = 7
	forced := 0
	c.cycles = cycles
	c.numGC = func() uint64 { return cycles }
	c.gc = func() { forced++; cycles++ }
	if c.due() {
		t.Fatal("due before a period passed")
	}
	c.last = time.Now().Add(-2 * time.Hour)
	if !c.due() || c.due() {
		t.Fatal("want due once a period passed, then not again at once")
	}
	c.run() // nothing collected since the start: it collects
	if forced != 1 || c.cycles != 8 {
		t.Fatalf("after a quiet period: %d forced, cycles %d; want 1 and 8", forced, c.cycles)
	}
	cycles += 2 // the runtime collected on its own
	c.run()
	if forced != 1 || c.cycles != 10 {
		t.Fatalf("after the runtime collected: %d forced, cycles %d; want still 1, and 10", forced, c.cycles)
	}
	c.run()
	if forced != 2 {
		t.Fatalf("after another quiet period: %d forced, want 2", forced)
	}
}

// A threshold shorter than the check's granularity still gets checked.
func TestWatchTinyThreshold(t *testing.T) {
	e := newTestEngine(captureLongLived, nil)
	s := e.NewScope("c")
	var mu sync.Mutex
	var logs bytes.Buffer
	stop := s.WatchHeld(WatchConfig{
		Limits: map[Kind]time.Duration{KindConn: time.Nanosecond},
		Log:    slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, nil)),
	})
	defer stop()
	tok := s.Checkout(context.Background(), KindConn, "", 0)
	defer tok.Release()
	tok.SetConnName("c.p1.s1") // a Conn is held too long only once it holds a connection
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		warned := strings.Contains(logs.String(), "held too long")
		mu.Unlock()
		if warned {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a 1ns threshold was never checked")
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// watchLogs watches s with thresholds of 1ns for Conns and Pub/Subs and
// returns what the watch logs.
func watchLogs(t *testing.T, s *Scope) (logs func() string, stop func()) {
	var mu sync.Mutex
	var buf bytes.Buffer
	stop = s.WatchHeld(WatchConfig{
		Limits: map[Kind]time.Duration{KindConn: time.Nanosecond, KindPubSub: time.Nanosecond},
		Log:    slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, nil)),
	})
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}, stop
}

// A checkout whose holder was reported dropped is not reported held too long
// as well.
func TestWatchNoWarnAfterDropped(t *testing.T) {
	s := newTestEngine(captureLongLived, nil).NewScope("c")
	logs, stop := watchLogs(t, s)
	defer stop()
	tok := s.Checkout(context.Background(), KindConn, "", 0)
	tok.SetConnName("c.p1.s1")
	tok.MarkDropped()
	time.Sleep(100 * time.Millisecond)
	if text := logs(); strings.Contains(text, "held too long") || !strings.Contains(text, "definite leak") {
		t.Errorf("logs = %q; want the definite leak only", text)
	}
}

// A checkout that ends through its done channel (a Pub/Sub closed) after it
// was reported held too long is reported released too.
func TestWatchReleasedThroughDone(t *testing.T) {
	s := newTestEngine(captureLongLived, nil).NewScope("c")
	logs, stop := watchLogs(t, s)
	defer stop()
	done := make(chan struct{})
	tok := s.CheckoutAt(KindPubSub, "subscribe", s.Origin(context.Background(), 0), done)
	tok.SetConnName("c.p1.s2")
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs(), "held too long"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no held-too-long WARN")
		}
	}
	close(done)
	_ = s.Engine().Stats() // sweeps the ended checkout
	if text := logs(); !strings.Contains(text, "held too long was released") {
		t.Errorf("no INFO when the Pub/Sub ended: %q", text)
	}
}
