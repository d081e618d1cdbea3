package testserver

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// clientListSample is CLIENT LIST as printed by redis-server 7.0.15: a
// blocked BLPOP client, a client subscribed to two channels, and the admin
// connection that ran the command. The last line is 6.2-style (no ssub) with
// a field from a newer server (lib-name) to show both are tolerated.
const clientListSample = "" +
	"id=3 addr=127.0.0.1:60438 laddr=127.0.0.1:16399 fd=8 name= age=1 idle=0 flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=20474 argv-mem=7 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22303 events=r cmd=blpop user=default redir=-1 resp=2\n" +
	"id=4 addr=127.0.0.1:60446 laddr=127.0.0.1:16399 fd=9 name= age=125 idle=3 flags=P db=0 sub=2 psub=1 ssub=0 multi=-1 qbuf=0 qbuf-free=20474 argv-mem=0 multi-mem=0 rbs=1024 rbp=60 obl=0 oll=0 omem=0 tot-mem=22352 events=r cmd=subscribe user=default redir=-1 resp=3\n" +
	"id=6 addr=127.0.0.1:60464 laddr=127.0.0.1:16399 fd=11 name=redisleak-admin age=0 idle=0 flags=N db=2 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=16384 rbp=16384 obl=0 oll=0 omem=0 tot-mem=37658 events=r cmd=client|list user=default redir=-1 resp=2\r\n" +
	"\n" +
	"id=7 addr=[::1]:50000 fd=12 name=old age=7 idle=7 flags=N db=0 sub=0 psub=0 multi=-1 cmd=get lib-name=go-redis\n"

func TestParseClientList(t *testing.T) {
	got, err := ParseClientList(clientListSample)
	if err != nil {
		t.Fatalf("ParseClientList: %v", err)
	}
	want := []ClientInfo{
		{ID: 3, Addr: "127.0.0.1:60438", Age: time.Second, Flags: "b", Cmd: "blpop"},
		{ID: 4, Addr: "127.0.0.1:60446", Age: 125 * time.Second, Idle: 3 * time.Second, Flags: "P", Sub: 2, PSub: 1, Cmd: "subscribe"},
		{ID: 6, Addr: "127.0.0.1:60464", Name: "redisleak-admin", Flags: "N", DB: 2, Cmd: "client|list"},
		{ID: 7, Addr: "[::1]:50000", Name: "old", Age: 7 * time.Second, Idle: 7 * time.Second, Flags: "N", Cmd: "get"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d clients, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("client %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}

	if got, err := ParseClientList(""); err != nil || len(got) != 0 {
		t.Errorf("ParseClientList(\"\") = %v, %v; want no clients, no error", got, err)
	}
}

func TestParseClientListMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // substrings of the error
	}{
		{"bad id", "id=x addr=a:1 age=0", []string{`"id"`, `"x"`}},
		{"bad age", "id=1 age=1.5", []string{`"age"`, `"1.5"`}},
		{"bad idle", "id=1 idle=", []string{`"idle"`, `""`}},
		{"bad db", "id=1 db=zero", []string{`"db"`, `"zero"`}},
		{"bad sub", "id=1 sub=-", []string{`"sub"`, `"-"`}},
		{"bad psub", "id=1 psub=1x", []string{`"psub"`, `"1x"`}},
		{"bad ssub", "id=1 ssub=9999999999999999999999", []string{`"ssub"`}},
		{"second line", "id=1 age=0\nid=2 age=old", []string{"line 2", `"age"`, `"old"`}},
		{"no equals", "id=1 garbage", []string{`"garbage"`}},
		{"no id", "addr=127.0.0.1:1 age=0", []string{"no id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseClientList(tc.text)
			if err == nil {
				t.Fatalf("ParseClientList(%q) = %+v, want an error", tc.text, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

// TestRedis exercises a real redis-server end to end: connection counting,
// Stop and Restart, and that nothing is left running afterwards.
func TestRedis(t *testing.T) {
	// Registered first so it runs last, after Redis's own cleanup has
	// stopped the server and closed the admin client.
	t.Cleanup(func() { goleak.VerifyNone(t) })

	s := Redis(t)
	if !s.Real() {
		t.Fatal("Real() = false for redis-server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Admin().Ping(ctx).Err(); err != nil {
		t.Fatalf("admin PING: %v", err)
	}
	before := s.Clients(t)
	if len(before) != 0 {
		t.Fatalf("fresh server has clients besides admin: %+v", before)
	}

	const n = 3
	c := redis.NewClient(&redis.Options{
		Addr:     s.Addr(),
		PoolSize: n,
		// Fail at once while the server is stopped instead of retrying.
		MaxRetries: -1,
	})
	defer c.Close()

	conns := make([]*redis.Conn, n)
	for i := range conns {
		conns[i] = c.Conn()
		if err := conns[i].Ping(ctx).Err(); err != nil {
			t.Fatalf("conn %d PING: %v", i, err)
		}
	}
	clients := s.Clients(t)
	if len(clients) != len(before)+n {
		t.Fatalf("ConnectedClients went from %d to %d, want +%d: %+v", len(before), len(clients), n, clients)
	}
	ids := map[int64]bool{}
	for _, ci := range clients {
		if ci.Cmd != "ping" || ci.Addr == "" || ci.Name == AdminClientName {
			t.Errorf("unexpected client %+v", ci)
		}
		ids[ci.ID] = true
	}
	if len(ids) != n {
		t.Errorf("client ids not distinct: %+v", clients)
	}
	for _, cn := range conns {
		if err := cn.Close(); err != nil {
			t.Errorf("Conn.Close: %v", err)
		}
	}
	// Back in the pool, not closed: the server still sees them.
	if got := s.ConnectedClients(t); got != n {
		t.Errorf("ConnectedClients after returning conns to the pool = %d, want %d", got, n)
	}

	s.Stop(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded with the server stopped")
	}
	s.Stop(t) // stopping twice is harmless

	s.Restart(t)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	// Only c's fresh connection; the admin's reconnect is still excluded.
	if got := s.ConnectedClients(t); got != 1 {
		t.Errorf("ConnectedClients after Restart = %d, want 1: %+v", got, s.Clients(t))
	}

	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestRedisExtraArgs(t *testing.T) {
	s := Redis(t, "--databases", "3")
	ctx := context.Background()
	v, err := s.Admin().ConfigGet(ctx, "databases").Result()
	if err != nil {
		t.Fatalf("CONFIG GET: %v", err)
	}
	if v["databases"] != "3" {
		t.Errorf("databases = %q, want 3", v["databases"])
	}
	// The defaults are in force too.
	if v, err := s.Admin().ConfigGet(ctx, "save").Result(); err != nil || v["save"] != "" {
		t.Errorf("save = %q, %v; want empty", v["save"], err)
	}
}

// TestStartFailure checks that a failed start reports the server's own
// output, and that a taken port is recognized as worth retrying.
func TestStartFailure(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)

	newServer := func(args ...string) *Server {
		dir := t.TempDir()
		return &Server{
			addr:    net.JoinHostPort("127.0.0.1", port),
			bin:     bin,
			dir:     dir,
			logPath: filepath.Join(dir, "redis-server.log"),
			args:    append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--dir", dir}, args...),
		}
	}

	err = newServer().start(5 * time.Second)
	if !errors.Is(err, errBind) {
		t.Errorf("start on a taken port: err = %v, want errBind", err)
	}

	err = newServer("--no-such-directive", "x").start(5 * time.Second)
	if err == nil || errors.Is(err, errBind) || !strings.Contains(err.Error(), "no-such-directive") {
		t.Errorf("start with a bad directive: err = %v, want the server's complaint quoted", err)
	}
}

func TestMini(t *testing.T) {
	s := Mini(t)
	if s.Real() {
		t.Fatal("Real() = true for miniredis")
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := s.Admin().Ping(ctx).Err(); err != nil {
		t.Fatalf("admin PING: %v", err)
	}

	s.Stop(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded with miniredis stopped")
	}
	s.Restart(t)
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after Restart = %q, %v; want v", v, err)
	}

	t.Run("Clients skips", func(t *testing.T) {
		defer func() {
			if !t.Skipped() {
				t.Error("Clients did not skip on miniredis")
			}
		}()
		s.Clients(t)
	})
}

func TestAny(t *testing.T) {
	s := Any(t)
	_, err := exec.LookPath("redis-server")
	if s.Real() != (err == nil) {
		t.Errorf("Any: Real() = %v with redis-server lookup error %v", s.Real(), err)
	}
	if err := s.Admin().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
}
