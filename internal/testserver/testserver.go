// Package testserver starts Redis servers for tests: a real redis-server
// process when one is installed, or an in-process miniredis otherwise.
//
// Leak tests need a real server, because only redis-server reports its
// connections through CLIENT LIST; functional tests can run against either.
// Setting REDISLEAK_REQUIRE_SERVER=1 (as CI does) turns a missing
// redis-server into a test failure instead of a skip, so CI cannot go green
// by silently skipping every leak test.
package testserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// AdminClientName is the CLIENT SETNAME name of the admin connection (see
// Server.Admin). Clients leaves connections with this name out, so counts
// only show the connections made by the code under test.
const AdminClientName = "redisleak-admin"

// RequireServerEnv is the environment variable that, when set to "1", makes
// a missing redis-server fatal instead of skipping the test.
const RequireServerEnv = "REDISLEAK_REQUIRE_SERVER"

const (
	// startTimeout bounds the first start; generous because a loaded CI
	// machine can be slow to exec a new process.
	startTimeout = 10 * time.Second
	// restartTimeout bounds Restart, which reuses a known-good binary and
	// port.
	restartTimeout = 5 * time.Second
	// stopGrace is how long a SIGTERMed server may take before SIGKILL.
	stopGrace = 5 * time.Second
	// killWait is how long to wait for the process after SIGKILL; it only
	// expires if the kernel cannot reap the process, so it is a backstop
	// against hanging the test forever.
	killWait = 5 * time.Second
	// bindAttempts is how many free ports are tried: the port is picked by
	// binding and releasing it, so another process can grab it before
	// redis-server binds.
	bindAttempts = 5
	// maxOutput caps the server output quoted in a failure message.
	maxOutput = 8 << 10
)

// Server is a Redis server started for one test: either a redis-server
// process (Real reports true) or a miniredis (Real reports false). It is
// stopped when the test and its subtests finish. Its methods are safe for
// concurrent use, though Stop and Restart are meant to be called from the
// test goroutine.
type Server struct {
	addr string
	// mini is the in-process server; nil for a real redis-server.
	mini *miniredis.Miniredis

	// The fields below are for a real redis-server only.
	bin     string
	args    []string
	dir     string
	logPath string

	mu   sync.Mutex
	proc *process // nil while stopped

	adminMu sync.Mutex
	admin   *redis.Client
	closed  bool // the test has finished; no new admin client
}

// process is one run of redis-server.
type process struct {
	cmd *exec.Cmd
	// done is closed once cmd.Wait has returned, so the waiting goroutine
	// is gone (as goleak requires) by the time stop returns.
	done chan struct{}
}

// errBind marks a start that failed because the port was taken, the one
// failure worth retrying on another port.
var errBind = errors.New("port already in use")

// Redis starts a redis-server on a free loopback port and stops it when the
// test finishes. args are appended to the defaults, so they can override
// them: persistence is off, the data directory is a fresh t.TempDir, and the
// log level is warning.
//
// If redis-server is not on PATH the test is skipped, or fails when
// REDISLEAK_REQUIRE_SERVER=1.
func Redis(t testing.TB, args ...string) *Server {
	t.Helper()
	return launch(t, requireBin(t, "redis-server"), func(port int, dir string) ([]string, error) {
		return append(serverArgs(port, dir), args...), nil
	})
}

// requireBin returns the path of the program name on PATH. If it is not
// there the test is skipped, or fails when REDISLEAK_REQUIRE_SERVER=1.
// (redis-cli comes with redis-server in the distributions' packages.)
func requireBin(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireServerEnv) == "1" {
			t.Fatalf("%s not on PATH and %s=1: %v", name, RequireServerEnv, err)
		}
		t.Skipf("%s not on PATH; install it (apt-get install redis-server) to run this test", name)
	}
	return bin
}

// serverArgs are the options every redis-server (and sentinel) gets: port,
// loopback only, no persistence, data in dir, log level warning.
func serverArgs(port int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--dir", dir,
		"--loglevel", "warning",
	}
}

// launch runs bin on a free loopback port and stops it (by its PID) when the
// test finishes. args returns the command line for a port and the server's
// fresh data directory; when the port turns out to be taken, launch calls it
// again with another port, so everything port-dependent (a cluster bus port,
// a config file naming the port) is chosen anew.
func launch(t testing.TB, bin string, args func(port int, dir string) ([]string, error)) *Server {
	t.Helper()
	// TempDir registers its removal before our cleanup is registered, so it
	// runs after the server has stopped writing to the directory.
	dir := t.TempDir()
	s := &Server{
		bin:     bin,
		dir:     dir,
		logPath: filepath.Join(dir, "redis-server.log"),
	}
	t.Cleanup(func() { s.cleanup(t) })

	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testserver: picking a port: %v", err)
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if s.args, err = args(port, dir); err != nil {
			t.Fatalf("testserver: preparing %s on port %d: %v", bin, port, err)
		}
		err = s.start(startTimeout)
		if err == nil {
			return s
		}
		if errors.Is(err, errBind) && attempt < bindAttempts {
			t.Logf("testserver: port %d was taken, retrying: %v", port, err)
			continue
		}
		t.Fatalf("testserver: starting %s: %v", bin, err)
	}
}

// Mini starts a miniredis and closes it when the test finishes. Real
// reports false for it, and Clients skips the test, since miniredis does
// not implement CLIENT LIST.
func Mini(t testing.TB) *Server {
	t.Helper()
	// RunT registers m.Close first, so our cleanup (closing the admin
	// client) runs before the server goes away.
	m := miniredis.RunT(t)
	s := &Server{addr: m.Addr(), mini: m}
	t.Cleanup(s.closeAdmin)
	return s
}

// Any starts a real redis-server when one is on PATH and a miniredis
// otherwise, for tests that do not need CLIENT LIST. With
// REDISLEAK_REQUIRE_SERVER=1 a missing redis-server is fatal, so CI always
// exercises the real server.
func Any(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err == nil {
		return Redis(t)
	} else if os.Getenv(RequireServerEnv) == "1" {
		t.Fatalf("redis-server not on PATH and %s=1: %v", RequireServerEnv, err)
	}
	return Mini(t)
}

// Addr returns the server's host:port. It stays the same across Restart.
func (s *Server) Addr() string { return s.addr }

// Real reports whether s is a redis-server process (true) or a miniredis
// (false).
func (s *Server) Real() bool { return s.mini == nil }

// Admin returns a client for inspecting the server, created on first use
// and closed when the test finishes. It has a single connection, named
// AdminClientName, so Clients can leave it out of the counts. Do not close
// it, and do not call Admin after the test has finished.
func (s *Server) Admin() *redis.Client {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.closed {
		panic("testserver: Admin called after the test finished")
	}
	if s.admin == nil {
		s.admin = redis.NewClient(&redis.Options{
			Addr:       s.addr,
			ClientName: AdminClientName,
			PoolSize:   1,
			// CLIENT SETINFO is not understood by redis 7.0 or
			// miniredis; skipping it keeps the connection setup to the
			// commands that matter.
			DisableIdentity: true,
		})
	}
	return s.admin
}

// Stop stops the server. A redis-server gets SIGTERM and, if it has not
// exited within 5s, SIGKILL. Stopping a stopped server does nothing.
// Clients connected to it see their connections fail.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.mini != nil {
		s.mini.Close()
		return
	}
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.stop(); err != nil {
		t.Fatalf("testserver: stopping redis-server on %s: %v", s.addr, err)
	}
}

// Restart stops the server if it is running and starts it again on the same
// address, returning once it accepts commands (within 5s for redis-server).
// A redis-server comes back empty, since persistence is off; a miniredis
// keeps its data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.mini != nil {
		s.mini.Close()
		if err := s.mini.Restart(); err != nil {
			t.Fatalf("testserver: restarting miniredis on %s: %v", s.addr, err)
		}
		return
	}
	s.Stop(t)
	if err := s.start(restartTimeout); err != nil {
		t.Fatalf("testserver: restarting redis-server on %s: %v", s.addr, err)
	}
}

// Clients returns the server's connections as reported by CLIENT LIST,
// leaving out the admin connection. Only a real redis-server reports them:
// on miniredis the test is skipped.
func (s *Server) Clients(t testing.TB) []ClientInfo {
	t.Helper()
	if !s.Real() {
		t.Skip("testserver: miniredis does not implement CLIENT LIST; this test needs a real redis-server (install redis-server)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	text, err := s.Admin().ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("testserver: CLIENT LIST on %s: %v", s.addr, err)
	}
	all, err := ParseClientList(text)
	if err != nil {
		t.Fatalf("testserver: %v\nreply:\n%s", err, text)
	}
	clients := all[:0]
	for _, c := range all {
		if c.Name != AdminClientName {
			clients = append(clients, c)
		}
	}
	return clients
}

// ConnectedClients returns how many connections the server has, not
// counting the admin connection. It skips the test on miniredis, like
// Clients.
func (s *Server) ConnectedClients(t testing.TB) int {
	t.Helper()
	return len(s.Clients(t))
}

// start runs redis-server with s.args and waits until it answers PING.
// Output goes to a file rather than a pipe: a pipe would need copying
// goroutines (which goleak would see) and its output would be lost once
// the process exited.
func (s *Server) start(timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}

	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// Remember where this run's output starts, so a failure quotes only it.
	offset, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		logf.Close()
		return err
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	err = cmd.Start()
	// The child has its own copy of the descriptor.
	logf.Close()
	if err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	if err := waitReady(s.addr, p.done, timeout); err != nil {
		exited := errors.Is(err, errExited)
		stopErr := p.stop()
		out := s.output(offset)
		if exited && (strings.Contains(out, "already in use") || strings.Contains(out, "Failed listening on port")) {
			err = fmt.Errorf("%w: %w", errBind, err)
		}
		if stopErr != nil {
			err = fmt.Errorf("%w (and stopping it: %v)", err, stopErr)
		}
		return fmt.Errorf("%w\ncommand: %s %s\noutput:\n%s", err, s.bin, strings.Join(quoteArgs(s.args), " "), out)
	}
	s.proc = p
	return nil
}

// errExited reports that redis-server exited before it answered PING.
var errExited = errors.New("redis-server exited before accepting connections")

// waitReady polls addr with PING until it answers +PONG, the process exits
// (done is closed) or timeout passes. It speaks RESP over a bare socket
// instead of using go-redis so that no client goroutines outlive it.
func waitReady(addr string, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		select {
		case <-done:
			return errExited
		default:
		}
		if lastErr = ping(addr); lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v: last error: %v", timeout, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends one PING to addr. A -LOADING reply counts as not ready.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING replied %q", line)
	}
	return nil
}

// stop ends the process: SIGTERM, then SIGKILL after stopGrace. It returns
// once the Wait goroutine is done, or an error if even SIGKILL did not end
// the process within killWait.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err == nil {
		select {
		case <-p.done:
			return nil
		case <-time.After(stopGrace):
		}
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("pid %d did not exit within %v of SIGKILL", p.cmd.Process.Pid, killWait)
	}
}

// cleanup closes the admin client, then stops the server; the client goes
// first so its connection does not outlive the server as an error.
func (s *Server) cleanup(t testing.TB) {
	s.closeAdmin()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		if err := p.stop(); err != nil {
			t.Errorf("testserver: stopping redis-server on %s: %v", s.addr, err)
		}
	}
}

// closeAdmin closes the admin client, if one was made, and refuses new
// ones, since nothing would close them.
func (s *Server) closeAdmin() {
	s.adminMu.Lock()
	a := s.admin
	s.admin = nil
	s.closed = true
	s.adminMu.Unlock()
	if a != nil {
		_ = a.Close()
	}
}

// output returns what the server wrote to its log since offset, keeping
// only the last maxOutput bytes.
func (s *Server) output(offset int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", s.logPath, err)
	}
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	b = b[offset:]
	if len(b) > maxOutput {
		b = append([]byte("...\n"), b[len(b)-maxOutput:]...)
	}
	if len(b) == 0 {
		return "(none)"
	}
	return string(b)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// quoteArgs quotes empty and space-containing arguments so a failure
// message shows the command line as it was run (for example --save "").
func quoteArgs(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return q
}
