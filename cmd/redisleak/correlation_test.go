package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// TestCorrelationWithTheService follows the path an operator takes: the
// inspector shows a service's idle socket by name, and that name leads, in
// the service's own report, to the line that leaked the Conn holding it.
func TestCorrelationWithTheService(t *testing.T) {
	srv := testserver.Redis(t)
	ctx := context.Background()
	c, err := pool.NewClient(&redis.Options{
		Addr:                     srv.Addr(),
		ClientName:               "orders",
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}, pool.WithTracker(tracker.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leaked, leakLine := c.Conn(), thisLine() // the leak the operator is after
	defer leaked.Close()
	if err := leaked.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil { // a pooled socket, idle in the pool
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, "-addr", srv.Addr(), "clients", "--json", "--idle", "0s")
	if code != 0 {
		t.Fatalf("exit status %d, stderr %q", code, errOut)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	process := fmt.Sprintf("orders.p%d", os.Getpid())
	if len(r.ByProcess.Groups) != 1 || r.ByProcess.Groups[0].Key != process || r.ByProcess.Groups[0].Count != 2 {
		t.Fatalf("by process %+v, want one group %s of 2 sockets", r.ByProcess, process)
	}
	sockets := r.ByProcess.Groups[0].Sockets

	report := c.Report()
	var found []string
	for _, g := range report.Groups {
		for _, name := range g.ConnNames {
			if slices.Contains(sockets, name) {
				found = append(found, fmt.Sprintf("%s at %s", g.Kind, g.Site.ShortPos()))
			}
		}
	}
	want := fmt.Sprintf("conn at %s:%d", filepath.Join("redisleak", "correlation_test.go"), leakLine)
	if !slices.Equal(found, []string{want}) {
		t.Fatalf("the inspector's sockets %v lead to %v in the service's report, want [%s]:\n%s", sockets, found, want, report)
	}
}

// thisLine returns the line it is called from.
func thisLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}
