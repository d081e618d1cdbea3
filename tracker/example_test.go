package tracker_test

import (
	"context"
	"fmt"

	"github.com/redisleak/redisleak/tracker"
)

func Example() {
	t := tracker.New()
	client := t.NewScope("127.0.0.1:6379")
	ctx := context.Background()

	// A command is checked out for its round trip and released.
	cmd := client.Checkout(ctx, tracker.KindCommand, "GET", 0)
	cmd.Release()

	// A dedicated connection is held until it is closed...
	conn := client.Checkout(ctx, tracker.KindConn, "", 0)

	// ...and two Pub/Subs, made at one call site, are never closed.
	for range 2 {
		client.Checkout(ctx, tracker.KindPubSub, "", 0)
	}

	r := t.Report()
	fmt.Println("outstanding:", r.Len())
	for _, g := range r.Groups {
		fmt.Println(g.Count, g.Kind, g.Scopes)
	}

	fmt.Println(conn.Release(), conn.Release()) // a second Close is caught
	st := t.Stats()
	fmt.Println(st.Checkouts, st.Releases, st.Outstanding, st.InvalidReleases)
	// Output:
	// outstanding: 3
	// 2 pubsub [127.0.0.1:6379]
	// 1 conn [127.0.0.1:6379]
	// true false
	// 4 2 2 1
}
