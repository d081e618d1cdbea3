package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Detector thresholds. They are deliberately simple; the warnings say
// which numbers triggered them so the reader can judge.
const (
	// detectWindow is how many samples the detectors look at.
	detectWindow = 5
	// churnPerMinute: more new connections per minute than this, while
	// connected_clients stays flat, is the missing-pool pattern.
	churnPerMinute = 60.0
	// flatFraction: connected_clients moving less than this fraction of
	// its value over the window counts as flat.
	flatFraction = 0.10
	// maxHistory bounds the samples kept in memory.
	maxHistory = 120
)

// Sample is one reading of INFO clients and INFO stats.
type Sample struct {
	Time                     time.Time
	ConnectedClients         int64
	BlockedClients           int64
	TotalConnectionsReceived int64
	RejectedConnections      int64
}

// parseInfo reads the "key:value" lines of an INFO reply.
func parseInfo(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// sampleFromInfo builds a sample taken at t from the INFO clients and INFO
// stats replies.
func sampleFromInfo(t time.Time, info string) (Sample, error) {
	m := parseInfo(info)
	s := Sample{Time: t}
	for _, f := range []struct {
		key string
		dst *int64
	}{
		{"connected_clients", &s.ConnectedClients},
		{"blocked_clients", &s.BlockedClients},
		{"total_connections_received", &s.TotalConnectionsReceived},
		{"rejected_connections", &s.RejectedConnections},
	} {
		v, ok := m[f.key]
		if !ok {
			return Sample{}, fmt.Errorf("INFO reply has no %s field", f.key)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Sample{}, fmt.Errorf("INFO field %s: invalid value %q", f.key, v)
		}
		*f.dst = n
	}
	return s, nil
}

// newPerMinute is the rate of new connections between a and b, and false
// when it cannot be computed (no time elapsed, or the counter went back
// because the server restarted).
func newPerMinute(a, b Sample) (float64, bool) {
	dt := b.Time.Sub(a.Time)
	d := b.TotalConnectionsReceived - a.TotalConnectionsReceived
	if dt <= 0 || d < 0 {
		return 0, false
	}
	return float64(d) / dt.Minutes(), true
}

// detectors are the patterns watch looks for, by name.
var detectors = []struct {
	name   string
	detect func([]Sample) (string, bool)
}{
	{"churn", detectChurn},
	{"climb", detectClimb},
	{"rejected", detectRejected},
}

// detect runs all detectors on samples (oldest first) and returns the
// warnings for the latest sample.
func detect(samples []Sample) []string {
	var warnings []string
	for _, d := range detectors {
		if w, ok := d.detect(samples); ok {
			warnings = append(warnings, w)
		}
	}
	return warnings
}

// changes runs all detectors on samples and returns the lines to print: a
// warning when a pattern starts, a line when it ends, nothing while it lasts
// (a warning repeated every sample buries the samples). active holds the
// patterns in force; changes updates it.
func changes(samples []Sample, active map[string]bool) []string {
	var lines []string
	for _, d := range detectors {
		w, on := d.detect(samples)
		switch {
		case on && !active[d.name]:
			lines = append(lines, "WARNING "+w)
		case !on && active[d.name]:
			lines = append(lines, "cleared: "+d.name)
		}
		active[d.name] = on
	}
	return lines
}

// detectChurn reports the missing-pool pattern: over the last detectWindow
// samples, many new connections per minute while connected_clients stays
// flat, i.e. connections are opened and closed per request.
func detectChurn(samples []Sample) (string, bool) {
	if len(samples) < detectWindow {
		return "", false
	}
	win := samples[len(samples)-detectWindow:]
	first, last := win[0], win[len(win)-1]
	rate, ok := newPerMinute(first, last)
	if !ok || rate <= churnPerMinute {
		return "", false
	}
	lo, hi := first.ConnectedClients, first.ConnectedClients
	for _, s := range win {
		lo, hi = min(lo, s.ConnectedClients), max(hi, s.ConnectedClients)
	}
	if float64(hi-lo) >= flatFraction*float64(max(first.ConnectedClients, 1)) {
		return "", false
	}
	return fmt.Sprintf("connection churn: %.0f new connections/min while connected_clients stays at %d-%d over the last %d samples"+
		" (a client opened per request instead of a shared pool?)", rate, lo, hi, len(win)), true
}

// detectClimb reports the leak pattern: connected_clients strictly
// increasing over at least the last detectWindow samples.
func detectClimb(samples []Sample) (string, bool) {
	run := 1
	for i := len(samples) - 1; i > 0 && samples[i].ConnectedClients > samples[i-1].ConnectedClients; i-- {
		run++
	}
	if run < detectWindow {
		return "", false
	}
	first, last := samples[len(samples)-run], samples[len(samples)-1]
	return fmt.Sprintf("connected_clients climbing: %d -> %d, up in each of the last %d samples over %s"+
		" (connections opened and never closed?)", first.ConnectedClients, last.ConnectedClients, run,
		last.Time.Sub(first.Time).Round(time.Second)), true
}

// detectRejected reports connections refused since the previous sample,
// which means the server hit maxclients.
func detectRejected(samples []Sample) (string, bool) {
	if len(samples) < 2 {
		return "", false
	}
	prev, last := samples[len(samples)-2], samples[len(samples)-1]
	d := last.RejectedConnections - prev.RejectedConnections
	if d <= 0 {
		return "", false
	}
	return fmt.Sprintf("%d connections rejected since the last sample (server at maxclients)", d), true
}

// runWatch is the watch subcommand.
func runWatch(args []string, co *connOptions, stdout io.Writer) error {
	fs := newFlagSet("watch")
	addConnFlags(fs, co)
	interval := fs.Duration("interval", time.Second, "time between samples")
	duration := fs.Duration("duration", 0, "stop after this long (0 = until interrupted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *interval <= 0 {
		return usagef("watch: --interval must be positive, got %s", *interval)
	}
	if *duration < 0 {
		return usagef("watch: --duration must not be negative, got %s", *duration)
	}
	if err := co.validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	return watch(ctx, co, *interval, stdout)
}

// watch samples the server every interval until ctx is done. A failing
// first sample is an error; later failures are printed and sampling goes
// on, so a server restart shows up in the output instead of ending it.
func watch(ctx context.Context, co *connOptions, interval time.Duration, w io.Writer) error {
	rdb := newClient(co)
	defer rdb.Close()

	fmt.Fprintf(w, "watching %s every %s (connected includes this inspector; Ctrl-C to stop)\n", co.addr, interval)
	fmt.Fprintf(w, "%-8s %10s %8s %8s %9s\n", "TIME", "CONNECTED", "BLOCKED", "NEW/MIN", "REJECTED")
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var samples []Sample
	active := make(map[string]bool)
	taken := 0
	for {
		s, err := takeSample(ctx, rdb)
		switch {
		case err == nil:
			taken++
			samples = append(samples, s)
			if len(samples) > maxHistory {
				samples = samples[len(samples)-maxHistory:]
			}
			fmt.Fprintln(w, formatSample(samples))
			for _, line := range changes(samples, active) {
				fmt.Fprintf(w, "%s  %s\n", s.Time.Format("15:04:05"), line)
			}
		case ctx.Err() != nil:
			// Interrupted or --duration reached while sampling.
		case taken == 0:
			return describeErr(err, co, "INFO")
		default:
			fmt.Fprintf(w, "%s  error: %s\n", time.Now().Format("15:04:05"), oneLine(describeErr(err, co, "INFO").Error()))
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(w, "stopped after %d samples\n", taken)
			return nil
		case <-ticker.C:
		}
	}
}

// takeSample reads INFO clients and INFO stats (separately: servers before
// 7.0 take one section per INFO).
func takeSample(ctx context.Context, rdb *redis.Client) (Sample, error) {
	var info strings.Builder
	for _, section := range []string{"clients", "stats"} {
		text, err := rdb.Info(ctx, section).Result()
		if err != nil {
			return Sample{}, err
		}
		info.WriteString(text)
		info.WriteString("\n")
	}
	return sampleFromInfo(time.Now(), info.String())
}

// formatSample formats the latest sample as one line of the watch table.
func formatSample(samples []Sample) string {
	s := samples[len(samples)-1]
	rate := "-"
	if len(samples) > 1 {
		if r, ok := newPerMinute(samples[len(samples)-2], s); ok {
			rate = fmt.Sprintf("%.1f", r)
		}
	}
	return fmt.Sprintf("%-8s %10d %8d %8s %9d", s.Time.Format("15:04:05"),
		s.ConnectedClients, s.BlockedClients, rate, s.RejectedConnections)
}
