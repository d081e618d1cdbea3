package pool_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// A dedicated connection left open is reported, with its origin, when the
// client closes.
func ExampleNewClient() {
	srv, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	client, err := pool.NewClient(&redis.Options{Addr: srv.Addr()},
		pool.WithMaxConnections(4),
		pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	client.Set(ctx, "greeting", "hello", 0)

	cn := client.Conn()
	cn.Ping(ctx) // and no cn.Close(): a leak

	err = client.Close()
	var leak *pool.LeakError
	if errors.As(err, &leak) {
		for _, g := range leak.Report.Groups {
			fmt.Printf("%d × %s at %s\n", g.Count, g.Kind, g.Site.Function)
		}
	}
	// Output:
	// 1 × conn at github.com/redisleak/redisleak/pool_test.ExampleNewClient
}

// A caller that cannot get a socket under the cap gets an error that names the
// call sites holding the sockets.
func ExampleWithMaxConnections() {
	srv, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	client, err := pool.NewClient(&redis.Options{Addr: srv.Addr(), PoolTimeout: 100 * time.Millisecond},
		pool.WithMaxConnections(1),
		pool.WithTracker(tracker.New()),
		pool.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	ctx := context.Background()

	cn := client.Conn()
	cn.Ping(ctx) // holds the only socket
	defer cn.Close()

	sub := client.Subscribe(ctx, "news")
	defer sub.Close()
	_, err = sub.Receive(ctx)
	var limit *pool.LimitError
	if errors.As(err, &limit) {
		fmt.Println(errors.Is(err, pool.ErrMaxConnections), limit.Max, limit.Open, limit.Holders.Groups[0].Kind)
	}
	// Output:
	// true 1 1 conn
}

// Each socket carries a name on the server, and the report lists it on the
// checkout that holds the socket: a connection seen in CLIENT LIST leads to
// the call site.
func ExampleWithConnNames() {
	srv, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	client, err := pool.NewClient(&redis.Options{Addr: srv.Addr(), ClientName: "orders"},
		pool.WithTracker(tracker.New()))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	ctx := context.Background()

	cn := client.Conn()
	defer cn.Close()
	serverName, _ := cn.ClientGetName(ctx).Result() // what CLIENT LIST shows as name=
	reported := client.Report().Groups[0].ConnNames[0]
	fmt.Println(strings.HasPrefix(serverName, "orders.p"), serverName == reported)
	// Output:
	// true true
}

// A Conn whose goroutine returned without Close is logged at WARN as a
// definite leak within about two minutes, without a held-too-long threshold.
func ExampleWithHolderGoneCheck() {
	client, err := pool.NewClient(&redis.Options{Addr: "localhost:6379"},
		pool.WithHolderGoneCheck(time.Minute))
	if err != nil {
		panic(err)
	}
	defer client.Close()
}
