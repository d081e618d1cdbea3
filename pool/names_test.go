package pool_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/internal/connname"
	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// TestConnNamesMatchTheServer is the correlation from the server's side: every
// socket of the client carries a name on the server, and the names the report
// gives a Conn and a Pub/Sub are the server-side names of the very sockets
// they hold.
func TestConnNamesMatchTheServer(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	opt := options(srv)
	// No ClientName: names start with the program's name.
	// The caller's OnConnect still runs, after the socket is named.
	var named []string
	opt.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		name, err := cn.ClientGetName(ctx).Result()
		named = append(named, name)
		return err
	}
	c, err := pool.NewClient(opt, pool.WithTracker(tracker.New()), pool.WithMaxConnections(6))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	conns, _ := leakConns(ctx, t, c, 2)
	defer closeAll(conns)
	ps, _ := leakPubSub(ctx, t, c)
	defer ps.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	clients := srv.Clients(t)
	if len(clients) != c.Stats().OpenConnections {
		t.Fatalf("the server sees %d connections, the client has %d open", len(clients), c.Stats().OpenConnections)
	}
	byName := map[string]testserver.ClientInfo{}
	for _, cl := range clients {
		if !slices.Contains(named, cl.Name) {
			t.Errorf("the caller's OnConnect saw names %v, not the server's %q", named, cl.Name)
		}
		n, ok := connname.Parse(cl.Name)
		if !ok || n.Client != filepath.Base(os.Args[0]) || n.PID != os.Getpid() {
			t.Errorf("server-side name %q is not %s.p%d.s<id>", cl.Name, filepath.Base(os.Args[0]), os.Getpid())
		}
		byName[cl.Name] = cl
	}

	r := c.Report()
	var connNames, pubsubNames []string
	for _, g := range r.Groups {
		switch g.Kind {
		case tracker.KindConn:
			connNames = append(connNames, g.ConnNames...)
		case tracker.KindPubSub:
			pubsubNames = append(pubsubNames, g.ConnNames...)
		}
	}
	if len(connNames) != 2 || len(pubsubNames) != 1 {
		t.Fatalf("report names %v for the Conns and %v for the Pub/Sub; want 2 and 1:\n%s", connNames, pubsubNames, r)
	}
	if cl := byName[pubsubNames[0]]; cl.Sub != 1 {
		t.Errorf("the report's Pub/Sub holds %q, which the server shows with sub=%d, want 1", pubsubNames[0], cl.Sub)
	}
	for _, cn := range conns {
		got, err := cn.ClientGetName(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(connNames, got) {
			t.Errorf("a Conn's socket is %q on the server; the report names %v", got, connNames)
		}
	}
	for _, name := range append(connNames, pubsubNames...) {
		if !strings.Contains(r.String(), name) {
			t.Errorf("the report's text does not show %q:\n%s", name, r)
		}
	}
}

// TestConnNamesOff keeps the caller's ClientName; reports then name sockets by
// their local address, which the server shows as addr=.
func TestConnNamesOff(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	opt := options(srv)
	opt.ClientName = "orders"
	c, err := pool.NewClient(opt, pool.WithTracker(tracker.New()), pool.WithConnNames(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conns, _ := leakConns(ctx, t, c, 1)
	defer conns[0].Close()

	clients := srv.Clients(t)
	if len(clients) != 1 || clients[0].Name != "orders" {
		t.Fatalf("server clients %+v; want one named orders", clients)
	}
	r := c.Report()
	if len(r.Groups) != 1 || !slices.Equal(r.Groups[0].ConnNames, []string{clients[0].Addr}) {
		t.Fatalf("report names %v; want the socket's address %s:\n%s", r.Groups[0].ConnNames, clients[0].Addr, r)
	}
}

// TestConnNamesRefused: a user whose ACL forbids CLIENT SETNAME still gets
// working connections, one WARN, and reports naming sockets by address.
func TestConnNamesRefused(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	if err := srv.Admin().Do(ctx, "ACL", "SETUSER", "nosetname", "on", ">pw", "~*", "&*", "+@all", "-client|setname").Err(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	opt := options(srv)
	opt.Username, opt.Password = "nosetname", "pw"
	c, err := pool.NewClient(opt, pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conns, _ := leakConns(ctx, t, c, 2)
	defer closeAll(conns)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("a command on a client whose sockets cannot be named: %v", err)
	}
	if n := strings.Count(logs.String(), "refused CLIENT SETNAME"); n != 1 {
		t.Errorf("%d WARN lines about CLIENT SETNAME, want 1:\n%s", n, logs.String())
	}
	// After the first refusal the client stops asking.
	stats, err := srv.Admin().Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var setname string
	for _, l := range strings.Split(stats, "\n") {
		if strings.HasPrefix(l, "cmdstat_client|setname:") {
			setname = l
		}
	}
	if !strings.Contains(setname, ",rejected_calls=1,") {
		t.Errorf("the server saw other than one refused CLIENT SETNAME for 3 sockets:\n%s", stats)
	}
	if strings.Contains(logs.String(), "pw") {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
	addrs := map[string]bool{}
	for _, cl := range srv.Clients(t) {
		if cl.Name != "" {
			t.Errorf("socket named %q although the server refused names", cl.Name)
		}
		addrs[cl.Addr] = true
	}
	r := c.Report()
	if len(r.Groups) != 1 || len(r.Groups[0].ConnNames) != 2 {
		t.Fatalf("report: %s", r)
	}
	for _, name := range r.Groups[0].ConnNames {
		if !addrs[name] {
			t.Errorf("report names %q, which is no address the server shows: %v", name, addrs)
		}
	}
}

// TestConnNamesReplacedByTheCaller: a name the caller sets, in OnConnect or
// on a Conn, replaces the library's on the server; it need not be unique to a
// socket, so reports then name the socket by its address, as the server
// shows it too.
func TestConnNamesReplacedByTheCaller(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	opt := options(srv)
	opt.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		return cn.ClientSetName(ctx, "set-by-onconnect").Err()
	}
	c, err := pool.NewClient(opt, pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conns, _ := leakConns(ctx, t, c, 2)
	defer closeAll(conns)
	if err := conns[1].ClientSetName(ctx, "worker-7").Err(); err != nil {
		t.Fatal(err)
	}
	var names, addrs []string
	for _, cl := range srv.Clients(t) {
		names = append(names, cl.Name)
		addrs = append(addrs, cl.Addr)
	}
	slices.Sort(names)
	if want := []string{"set-by-onconnect", "worker-7"}; !slices.Equal(names, want) {
		t.Fatalf("server-side names %v, want %v", names, want)
	}
	r := c.Report()
	got := slices.Sorted(slices.Values(r.Groups[0].ConnNames))
	if slices.Sort(addrs); len(r.Groups) != 1 || !slices.Equal(got, addrs) {
		t.Fatalf("report names %v, want the addresses the server shows, %v:\n%s", got, addrs, r)
	}
}

// closeAll closes the Conns a test held open on purpose.
func closeAll(conns []*pool.Conn) {
	for _, cn := range conns {
		cn.Close()
	}
}
