// Command clientperrequest shows a Redis client created per request and never
// closed.
//
// The pattern: an HTTP handler builds a client (redis.NewClient, here
// pool.NewClient) on every request, runs a command and returns. Each client has
// its own pool and sockets, and nothing closes them until the garbage
// collector happens to collect the client.
//
// The symptom in production: connected_clients on the server climbs with
// traffic and falls back in saw teeth after GCs; under load Redis answers
// "ERR max number of clients reached" and the service fails with "dial tcp:
// ... too many open files".
//
// What redisleak reports: a client garbage-collected without Close is listed
// as kind "client", garbage-collected without Close, at the line that created it.
//
// The fix: create one client at start-up, share it among the handlers (it is
// safe for concurrent use and pools its connections), Close it at shutdown.
//
//	go run ./examples/clientperrequest [-variant bad|fixed|both] [-addr host:port]
//
// It exits 0 when the bad variant is reported and the fixed one is clean.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisleak/redisleak/examples/internal/example"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

const requests = 20

func main() { example.Main("clientperrequest", run) }

type app struct {
	addr   string
	tr     *tracker.Tracker
	client *pool.Client // the shared client of the fixed variant
}

// handleBad counts a page view.
//
// BUG: it creates a client per request and never closes it.
func (a *app) handleBad(w http.ResponseWriter, r *http.Request) {
	client, err := pool.NewClient(&redis.Options{Addr: a.addr}, pool.WithTracker(a.tr))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n, err := client.Incr(r.Context(), "clientperrequest:views").Result()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, n)
}

// handleFixed counts a page view on the client every request shares.
func (a *app) handleFixed(w http.ResponseWriter, r *http.Request) {
	n, err := a.client.Incr(r.Context(), "clientperrequest:views").Result()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, n)
}

// outcome is what one variant observed.
type outcome struct {
	report   tracker.Report // the tracker's report after the requests and GC
	closeErr error          // Close of the shared client (fixed only)
}

// dropped counts the clients reported garbage-collected without Close.
func dropped(r tracker.Report) (n int) {
	for _, g := range r.Groups {
		if g.Kind == tracker.KindClient {
			n += g.Dropped
		}
	}
	return n
}

// demo serves requests with one variant's handler against addr.
func demo(ctx context.Context, addr, variant string, out io.Writer) (*outcome, error) {
	a := &app{addr: addr, tr: tracker.New()} // a tracker of its own: only this demo's clients
	handler, want, wait := a.handleBad, requests, 5*time.Second
	if variant == "fixed" {
		c, err := pool.NewClient(&redis.Options{Addr: addr}, pool.WithTracker(a.tr))
		if err != nil {
			return nil, err
		}
		a.client, handler, want, wait = c, a.handleFixed, 1, 200*time.Millisecond
	}
	for range requests {
		rec := httptest.NewRecorder()
		handler(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/views", nil))
		if rec.Code != http.StatusOK {
			return nil, fmt.Errorf("request: %d %s", rec.Code, rec.Body)
		}
	}
	fmt.Fprintf(out, "[%s] %d requests served; server connected_clients: %d\n", variant, requests, connectedClients(ctx, addr))

	// A client is reported once the GC has collected it: collect until every
	// dropped client is reported, or the wait is over.
	res := &outcome{}
	for deadline := time.Now().Add(wait); ; {
		runtime.GC()
		res.report = a.tr.Report()
		if dropped(res.report) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.client != nil {
		res.closeErr = a.client.Close()
	}
	fmt.Fprintf(out, "[%s] after GC: %d clients dropped without Close; server connected_clients: %d\n",
		variant, dropped(res.report), connectedClients(ctx, addr))
	for _, g := range res.report.Groups {
		fmt.Fprintf(out, "  %d × %s, %d garbage-collected without Close, at %s\n", g.Count, g.Kind, g.Dropped, g.Site)
	}
	if a.client != nil {
		fmt.Fprintf(out, "[%s] shared client Close: %v\n", variant, res.closeErr)
	}
	return res, nil
}

// connectedClients returns the server's connected_clients, less the probe's
// own (-1 when INFO does not tell).
func connectedClients(ctx context.Context, addr string) int {
	probe := redis.NewClient(&redis.Options{Addr: addr})
	defer probe.Close()
	return example.ConnectedClients(ctx, probe)
}

// Check returns an error unless res is what variant is expected to show.
func (res *outcome) Check(variant string) error {
	if variant == "bad" {
		if dropped(res.report) == 0 {
			return fmt.Errorf("bad: no client reported dropped:\n%s", res.report)
		}
		return nil
	}
	if res.report.Len() != 0 || res.closeErr != nil {
		return fmt.Errorf("fixed: report %s; Close: %v", res.report, res.closeErr)
	}
	return nil
}

// run runs the variants that variant names against addr (an embedded
// miniredis when empty) and returns an error unless each outcome is the
// expected one.
func run(ctx context.Context, addr, variant string, out io.Writer) error {
	return example.Run(ctx, addr, variant, out, demo)
}
