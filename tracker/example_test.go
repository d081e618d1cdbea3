package tracker_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// A tracker given to clients reports what they hold, grouped by call site,
// and counts their checkouts.
func Example() {
	srv, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	tr := tracker.New()
	client, err := pool.NewClient(&redis.Options{Addr: srv.Addr()},
		pool.WithTracker(tr), pool.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	ctx := context.Background()

	// A command is checked out for its round trip and released.
	client.Set(ctx, "greeting", "hello", 0)

	// A dedicated connection is held until it is closed...
	cn := client.Conn()

	// ...and two Pub/Subs, made at one call site, are never closed.
	for range 2 {
		client.Subscribe(ctx, "news")
	}

	r := tr.Report()
	fmt.Println("outstanding:", r.Len())
	for _, g := range r.Groups {
		fmt.Println(g.Count, g.Kind, g.Site.Function)
	}

	cn.Close()
	st := tr.Stats()
	fmt.Println(st.Outstanding, st.Checkouts-st.Releases == st.Outstanding)
	// Output:
	// outstanding: 3
	// 2 pubsub github.com/redisleak/redisleak/tracker_test.Example
	// 1 conn github.com/redisleak/redisleak/tracker_test.Example
	// 2 true
}
