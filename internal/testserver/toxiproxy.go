package testserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// ToxiproxyBin is the Toxiproxy server the tests start from PATH. .ci/run
// installs it (go install github.com/Shopify/toxiproxy/v2/cmd/server, renamed).
const ToxiproxyBin = "toxiproxy-server"

// Proxy is a Toxiproxy proxy in front of an upstream address, served by a
// toxiproxy-server the test started; clients connect to Addr.
type Proxy struct {
	Addr  string
	proxy *toxiproxy.Proxy
}

// Toxiproxy starts toxiproxy-server on a free loopback port with one proxy
// to upstream, and stops the server (by its PID) when the test ends. If the
// binary is not on PATH the test is skipped, or fails when
// REDISLEAK_REQUIRE_SERVER=1.
func Toxiproxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	bin, err := exec.LookPath(ToxiproxyBin)
	if err != nil {
		if os.Getenv(RequireServerEnv) == "1" {
			t.Fatalf("%s not on PATH and %s=1: %v", ToxiproxyBin, RequireServerEnv, err)
		}
		t.Skipf("%s not on PATH; install it (see .ci/run) to run this test", ToxiproxyBin)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("testserver: picking a port for Toxiproxy: %v", err)
	}
	logPath := filepath.Join(t.TempDir(), "toxiproxy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Start()
	logf.Close()
	if err != nil {
		t.Fatalf("testserver: starting %s: %v", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("testserver: stopping %s: %v", bin, err)
		}
	})
	api := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitHTTP("http://"+api+"/version", p.done, startTimeout); err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("testserver: %s: %v\noutput:\n%s", bin, err, out)
	}
	proxy, err := toxiproxy.NewClient(api).CreateProxy("redis", "127.0.0.1:0", upstream)
	if err != nil {
		t.Fatalf("testserver: creating a Toxiproxy proxy to %s: %v", upstream, err)
	}
	return &Proxy{Addr: proxy.Listen, proxy: proxy}
}

// Latency adds d to every reply from upstream until the returned function
// removes it.
func (p *Proxy) Latency(t testing.TB, d time.Duration) (remove func()) {
	t.Helper()
	return p.AddToxic(t, "latency", "downstream", map[string]any{"latency": d.Milliseconds()})
}

// AddToxic adds a toxic of type typ ("latency", "reset_peer", "timeout",
// "slicer", ...; see https://github.com/Shopify/toxiproxy#toxics) with attrs
// to stream ("upstream" or "downstream") until the returned function removes
// it. The toxic acts on every connection, open or new.
func (p *Proxy) AddToxic(t testing.TB, typ, stream string, attrs map[string]any) (remove func()) {
	t.Helper()
	// Unique, so that a toxic added twice is two toxics, each removed once.
	name := typ + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := p.proxy.AddToxic(name, typ, stream, 1, attrs); err != nil {
		t.Fatalf("testserver: adding the %s toxic %v: %v", typ, attrs, err)
	}
	return func() {
		if err := p.proxy.RemoveToxic(name); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("testserver: removing the %s toxic: %v", typ, err)
		}
	}
}

// Disable takes the proxy down: it closes every connection through it and
// refuses new ones until the returned function brings it up again on the
// same address. Call both from the test goroutine.
func (p *Proxy) Disable(t testing.TB) (enable func()) {
	t.Helper()
	if err := p.proxy.Disable(); err != nil {
		t.Fatalf("testserver: disabling the proxy: %v", err)
	}
	return func() {
		if err := p.proxy.Enable(); err != nil {
			t.Errorf("testserver: enabling the proxy: %v", err)
		}
	}
}

// waitHTTP polls url until it answers 200, the process exits (done is
// closed) or timeout passes.
func waitHTTP(url string, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		select {
		case <-done:
			return errors.New("exited before it answered")
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
