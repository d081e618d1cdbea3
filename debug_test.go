//go:build unix

package redisleak_test

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redisleak/redisleak/tracker"
)

func TestScenarioDebugDump(t *testing.T) {
	scenarioOnly(t)
	if !tracker.Debug() {
		t.Fatal("REDISLEAK=debug did not turn debug mode on")
	}
	c := scenarioClient(t)
	forgetConn(t, c)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the dump is written by the handler goroutine
	_ = c.Close()
}

// TestDebugDump runs a client in debug mode (REDISLEAK=debug) in a child
// process: it must dump every tracker on SIGUSR1 and its own report at Close.
func TestDebugDump(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestScenarioDebugDump$", "-test.count=1")
	cmd.Env = append(os.Environ(), scenarioEnv+"=1", "REDISLEAK=debug")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("debug scenario failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"redisleak: tracker 1 of", "redisleak: client 127.0.0.1:", "1 × conn", "redisleak_test.forgetConn"} {
		if !strings.Contains(text, want) {
			t.Errorf("debug output lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "redisleak_test.forgetConn (") < 2 {
		t.Errorf("want the leak in the signal dump and in the Close report:\n%s", text)
	}
}
