package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak/examples/internal/exampletest"
	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// runRing runs variant on a ring of two fresh miniredis shards, as run does
// without -addrs; both are closed before it returns, so that goleak sees
// none of their goroutines.
func runRing(t *testing.T, variant string) *outcome {
	t.Helper()
	second := miniredis.RunT(t)
	defer second.Close()
	res, _ := exampletest.RunDemo(t, variant, func(ctx context.Context, addr, variant string, out io.Writer) (*outcome, error) {
		return ringDemo(ctx, addr+","+second.Addr(), variant, out)
	})
	return res
}

func TestBad(t *testing.T) {
	checkBad(t, runRing(t, "bad"), "subscribe")
	// The demo closed the leaked Pub/Subs after Close reported them, which
	// ends go-redis's goroutines behind ps.Channel().
	goleak.VerifyNone(t)
}

func TestFixed(t *testing.T) {
	checkFixed(t, runRing(t, "fixed"))
	goleak.VerifyNone(t)
}

func TestRun(t *testing.T) {
	if out := exampletest.CheckRun(t, run); !strings.Contains(out, "pool.Ring of two embedded miniredis") {
		t.Errorf("run without -addrs does not say it runs on a ring of miniredis:\n%s", out)
	}
	goleak.VerifyNone(t)
}

// TestCluster runs the example where it belongs: on a real Redis Cluster
// (three masters with a replica each, seeded with all six addresses, as
// -addrs), where the Pub/Sub is a shard channel's. It is skipped without
// redis-server and redis-cli (see testserver.Cluster).
func TestCluster(t *testing.T) {
	addrs := strings.Join(testserver.Cluster(t).Addrs(), ",")
	// The servers are stopped only after the test: their goroutines are not
	// the example's.
	servers := goleak.IgnoreCurrent()
	for _, variant := range []string{"bad", "fixed"} {
		t.Run(variant, func(t *testing.T) {
			var out bytes.Buffer
			res, err := clusterDemo(context.Background(), addrs, variant, &out)
			t.Logf("output:\n%s", &out)
			if err != nil {
				t.Fatalf("demo %q: %v", variant, err)
			}
			if variant == "bad" {
				checkBad(t, res, "ssubscribe")
			} else {
				checkFixed(t, res)
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), addrs, "both", &out); err != nil {
		t.Errorf("run -addrs %s: %v\n%s", addrs, err, &out)
	}
	goleak.VerifyNone(t, servers)
}

// checkBad checks, independently of outcome.Check, what the bad variant
// left: a Conn and a Pub/Sub (subscribed with op) per sold-out buyer, at
// buyBad's lines, held by the item's node alone, whose cap they fill.
func checkBad(t *testing.T, res *outcome, op string) {
	t.Helper()
	if res.refused != 0 {
		t.Errorf("%d buyers refused a socket, want none: the leaks fill the node's cap only after the last", res.refused)
	}
	if len(res.report.Groups) != 2 {
		t.Fatalf("report has %d groups, want a Conn's and a Pub/Sub's:\n%s", len(res.report.Groups), res.report)
	}
	for _, kind := range []tracker.Kind{tracker.KindConn, tracker.KindPubSub} {
		i := slices.IndexFunc(res.report.Groups, func(g tracker.Group) bool { return g.Kind == kind })
		if i < 0 {
			t.Errorf("no %s group in the report:\n%s", kind, res.report)
			continue
		}
		g := res.report.Groups[i]
		exampletest.CheckGroup(t, g, kind, soldOut, ".buyBad", "examples/cluster/main.go")
		if !slices.Equal(g.Scopes, []string{res.node}) {
			t.Errorf("%s group held by %v, want the item's node %s alone", kind, g.Scopes, res.node)
		}
		if kind == tracker.KindPubSub && g.Op != op {
			t.Errorf("pubsub group: op %q, want %q", g.Op, op)
		}
	}
	for name, n := range res.stats.Nodes {
		if n.MaxConnections != perNodeCap {
			t.Errorf("node %s: cap %d, want %d", name, n.MaxConnections, perNodeCap)
		}
		want := 0
		if name == res.node {
			want = soldOut
		}
		if n.Open.Conn != want || n.Open.PubSub != want {
			t.Errorf("node %s: %d Conns and %d Pub/Subs open, want %d of each", name, n.Open.Conn, n.Open.PubSub, want)
		}
	}
	if !errors.Is(res.nextErr, pool.ErrMaxConnections) {
		t.Errorf("GET on the item's node after the leaks: %v, want an error matching pool.ErrMaxConnections", res.nextErr)
	}
	exampletest.CheckLeakError(t, res.closeErr, 2*soldOut)
}

// checkFixed checks that the fixed variant left nothing open on any node.
func checkFixed(t *testing.T, res *outcome) {
	t.Helper()
	if res.nextErr != nil {
		t.Errorf("GET after the sales: %v", res.nextErr)
	}
	if _, ok := res.stats.Nodes[res.node]; !ok {
		t.Errorf("Stats has no node %s: %v", res.node, slices.Collect(maps.Keys(res.stats.Nodes)))
	}
	if o := res.stats.Open; o.Conn != 0 || o.PubSub != 0 {
		t.Errorf("Stats: %d Conns and %d Pub/Subs open after the sales, want none", o.Conn, o.PubSub)
	}
	exampletest.CheckClean(t, res.report, res.closeErr)
}
