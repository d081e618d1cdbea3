package redisleak_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/redisleak/redisleak"
	"github.com/redisleak/redisleak/internal/testserver"
	"github.com/redisleak/redisleak/pool"
	"github.com/redisleak/redisleak/tracker"
)

// The tests named TestScenario* are run only in a child process started by
// runScenario: some of them fail on purpose.
const scenarioEnv = "REDISLEAK_SCENARIO"

func scenarioOnly(t *testing.T) {
	if os.Getenv(scenarioEnv) == "" {
		t.Skip("a scenario for TestVerifyNone; runs in a child process")
	}
}

// runScenario runs the tests matching pattern in a child process and returns
// its output and whether it passed.
func runScenario(t *testing.T, pattern string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", pattern, "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), scenarioEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %s: %v", pattern, err)
	}
	return string(out), err == nil
}

func scenarioClient(t *testing.T) *pool.Client {
	srv := testserver.Mini(t)
	c, err := pool.NewClient(&redis.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forgetConn is the leak the scenarios look for.
func forgetConn(t *testing.T, c *pool.Client) {
	if err := c.Conn().Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestScenarioLeaky(t *testing.T) {
	scenarioOnly(t)
	defer redisleak.VerifyNone(t)
	c := scenarioClient(t)
	forgetConn(t, c)
	t.Cleanup(func() { _ = c.Close() })
}

func TestScenarioClean(t *testing.T) {
	scenarioOnly(t)
	defer redisleak.VerifyNone(t)
	c := scenarioClient(t)
	cn := c.Conn()
	if err := cn.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	_ = cn.Close()
	t.Cleanup(func() { _ = c.Close() })
}

// leakerLeaked is closed once the parallel leaker has leaked, so that the
// bystander checks while another test's leak is outstanding.
var leakerLeaked = make(chan struct{})

func TestScenarioParallelLeaker(t *testing.T) {
	scenarioOnly(t)
	t.Parallel()
	defer redisleak.VerifyNone(t)
	c := scenarioClient(t)
	forgetConn(t, c)
	close(leakerLeaked)
	t.Cleanup(func() { _ = c.Close() })
}

func TestScenarioParallelBystander(t *testing.T) {
	scenarioOnly(t)
	t.Parallel()
	defer redisleak.VerifyNone(t)
	defer func() { <-leakerLeaked }() // runs before VerifyNone
	c := scenarioClient(t)
	for range 50 {
		cn := c.Conn()
		if err := cn.Ping(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		_ = cn.Close()
	}
	t.Cleanup(func() { _ = c.Close() })
}

// TestScenarioSubtests: a leak in one subtest fails that subtest only.
func TestScenarioSubtests(t *testing.T) {
	scenarioOnly(t)
	c := scenarioClient(t)
	t.Cleanup(func() { _ = c.Close() })
	t.Run("leaks", func(t *testing.T) {
		defer redisleak.VerifyNone(t)
		forgetConn(t, c)
	})
	t.Run("clean", func(t *testing.T) {
		defer redisleak.VerifyNone(t)
		cn := c.Conn()
		if err := cn.Ping(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		_ = cn.Close()
	})
}

// TestScenarioUnattributed leaks a Conn on a goroutine no test function
// started (as an httptest server's handler would): the first check reports
// it; TestScenarioLater's does not fail for it again.
func TestScenarioUnattributed(t *testing.T) {
	scenarioOnly(t)
	defer redisleak.VerifyNone(t)
	c := scenarioClient(t)
	t.Cleanup(func() { _ = c.Close() })
	done := make(chan struct{})
	go leakOffTest(c, done)
	<-done
}

// leakOffTest is a function of no test: a checkout made by it names none.
func leakOffTest(c *pool.Client, done chan<- struct{}) {
	defer close(done)
	_ = c.Conn().Ping(context.Background()).Err()
}

func TestScenarioLater(t *testing.T) {
	scenarioOnly(t)
	defer redisleak.VerifyNone(t)
}

func TestVerifyNone(t *testing.T) {
	out, ok := runScenario(t, "^TestScenarioLeaky$")
	if ok || !strings.Contains(out, "--- FAIL: TestScenarioLeaky") {
		t.Fatalf("a leaking test passed under VerifyNone:\n%s", out)
	}
	for _, want := range []string{"1 × conn", "redisleak_test.forgetConn", "verify_test.go:"} {
		if !strings.Contains(out, want) {
			t.Errorf("failure text lacks %q:\n%s", want, out)
		}
	}

	if out, ok := runScenario(t, "^TestScenarioClean$"); !ok {
		t.Fatalf("a clean test failed under VerifyNone:\n%s", out)
	}

	out, ok = runScenario(t, "^TestScenarioParallel")
	if ok || !strings.Contains(out, "--- FAIL: TestScenarioParallelLeaker") || strings.Contains(out, "--- FAIL: TestScenarioParallelBystander") {
		t.Fatalf("parallel tests: want only the leaker to fail:\n%s", out)
	}

	out, _ = runScenario(t, "^TestScenarioSubtests$")
	if !strings.Contains(out, "--- FAIL: TestScenarioSubtests/leaks") || strings.Contains(out, "--- FAIL: TestScenarioSubtests/clean") {
		t.Fatalf("subtests: want only the leaking one to fail:\n%s", out)
	}

	out, _ = runScenario(t, "^TestScenario(Unattributed|Later)$")
	if !strings.Contains(out, "--- FAIL: TestScenarioUnattributed") || strings.Contains(out, "--- FAIL: TestScenarioLater") {
		t.Fatalf("a leak no test is blamed for: want it reported once, by the first check:\n%s", out)
	}
}

func TestFind(t *testing.T) {
	srv := testserver.Mini(t)
	ignore := goleak.IgnoreCurrent()
	tr := tracker.New()
	c, err := pool.NewClient(&redis.Options{Addr: srv.Addr()}, pool.WithTracker(tr))
	if err != nil {
		t.Fatal(err)
	}
	if err := redisleak.Find(redisleak.WithTrackers(tr), redisleak.WithSettle(0)); err != nil {
		t.Fatalf("Find on a fresh client = %v", err)
	}
	cn := c.Conn()
	err = redisleak.Find(redisleak.WithTrackers(tr), redisleak.WithSettle(0))
	if !errors.Is(err, redisleak.ErrLeaked) || !strings.Contains(err.Error(), "TestFind") {
		t.Fatalf("Find with a Conn open = %v", err)
	}
	for name, opt := range map[string]redisleak.Option{
		"kind":    redisleak.IgnoreKinds(tracker.KindConn),
		"top":     redisleak.IgnoreTopFunction("github.com/redisleak/redisleak_test.TestFind"),
		"any":     redisleak.IgnoreAnyFunction("testing.tRunner"),
		"current": redisleak.IgnoreCurrent(),
	} {
		if err := redisleak.Find(redisleak.WithTrackers(tr), redisleak.WithSettle(0), opt); err != nil {
			t.Errorf("Find ignoring by %s = %v", name, err)
		}
	}
	_ = cn.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := redisleak.Find(redisleak.WithTrackers(tr), redisleak.WithGoroutines(ignore)); err != nil {
		t.Fatalf("Find after Close = %v", err)
	}
}

func TestVerifyTestMain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs another test binary")
	}
	run := func(leak string) (string, error) {
		cmd := exec.Command("go", "test", "-count=1", "./internal/testmaincheck")
		cmd.Env = append(os.Environ(), "REDISLEAK_TESTMAIN_LEAK="+leak)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("0"); err != nil {
		t.Fatalf("clean run failed: %v\n%s", err, out)
	}
	if out, err := run("cleanup"); err != nil {
		t.Fatalf("a Conn closed by the Cleanup option was reported: %v\n%s", err, out)
	}
	out, err := run("1")
	if err == nil || !strings.Contains(out, "leaks found after the tests passed") || !strings.Contains(out, "testmaincheck.TestMaybeLeak") {
		t.Fatalf("leaking run: err %v\n%s", err, out)
	}
}

// One sentinel for every leak error of the library.
func TestOneErrLeaked(t *testing.T) {
	if redisleak.ErrLeaked != pool.ErrLeaked || redisleak.ErrLeaked != tracker.ErrLeaked {
		t.Fatal("redisleak.ErrLeaked, pool.ErrLeaked and tracker.ErrLeaked differ")
	}
}

// tableLeaked is closed once the leaky table case has leaked, and
// cleanChecked once the clean case has run its check: so the clean case
// checks while the leak is outstanding and the leaky case still runs.
var tableLeaked, cleanChecked = make(chan struct{}), make(chan struct{})

// TestScenarioTable: parallel table-driven subtests share one closure. The
// clean case, checking while the leaky one runs, is not blamed; the leak is
// reported once, by the leaky case or the parent.
func TestScenarioTable(t *testing.T) {
	scenarioOnly(t)
	defer redisleak.VerifyNone(t)
	c := scenarioClient(t)
	t.Cleanup(func() { _ = c.Close() })
	for _, tc := range []struct {
		name string
		leak bool
	}{{"leaky", true}, {"clean", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !tc.leak {
				defer close(cleanChecked) // after the check below
			}
			defer redisleak.VerifyNone(t)
			if tc.leak {
				forgetConn(t, c)
				close(tableLeaked)
				<-cleanChecked
			} else {
				<-tableLeaked
			}
		})
	}
}

func TestVerifyNoneTableDriven(t *testing.T) {
	out, _ := runScenario(t, "^TestScenarioTable$")
	if strings.Contains(out, "--- FAIL: TestScenarioTable/clean") {
		t.Fatalf("the clean case of a parallel table was blamed for its sibling's leak:\n%s", out)
	}
	if !strings.Contains(out, "--- FAIL: TestScenarioTable") || strings.Count(out, "1 × conn, oldest") != 1 {
		t.Fatalf("want the leak reported once, by the leaky case or the parent:\n%s", out)
	}
	if !strings.Contains(out, "a closure other parallel subtests run too") {
		t.Errorf("the clean case's check does not say why it left the leak:\n%s", out)
	}
}
