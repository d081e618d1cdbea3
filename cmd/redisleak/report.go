package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
)

// runClients is the clients subcommand.
func runClients(args []string, co *connOptions, stdout io.Writer) error {
	fs := newFlagSet("clients")
	addConnFlags(fs, co)
	asJSON := fs.Bool("json", false, "print JSON")
	idle := fs.Duration("idle", time.Hour, "idle threshold")
	top := fs.Int("top", 10, "number of groups to show (0 = all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *idle < 0 {
		return usagef("clients: --idle must not be negative, got %s", *idle)
	}
	if *top < 0 {
		return usagef("clients: --top must not be negative, got %d", *top)
	}
	if err := co.validate(); err != nil {
		return err
	}

	var text string
	var selfID int64
	err := inspect(context.Background(), co, func(cn *redis.Conn, id int64) error {
		var err error
		selfID = id
		text, err = cn.ClientList(context.Background()).Result()
		if err != nil {
			return describeErr(err, co, "CLIENT LIST")
		}
		return nil
	})
	if err != nil {
		return err
	}
	r, err := analyzeClientList(text, time.Now(), AnalyzeOptions{SelfID: selfID, IdleThreshold: *idle, Top: *top})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	return writeReport(stdout, co.addr, r)
}

// writeReport prints r as text: counts first, then the largest holders,
// then the individual idle, blocked and pub/sub clients.
func writeReport(w io.Writer, addr string, r Report) error {
	idle := humanDuration(r.IdleThresholdSeconds)
	fmt.Fprintf(w, "%s at %s: %d connections (not counting this inspector, id %d)\n",
		addr, r.Time.Format("2006-01-02 15:04:05 MST"), r.Total, r.SelfID)
	fmt.Fprintf(w, "idle>=%s: %d   blocked: %d   pub/sub: %d\n", idle, r.Idle.Count, r.Blocked.Count, r.PubSub.Count)

	fmt.Fprintf(w, "\nBy age\n")
	for _, b := range r.AgeBuckets {
		fmt.Fprintf(w, "  %-6s %6d\n", b.Label, b.Count)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	for _, g := range []struct {
		title, column string
		g             Grouping
	}{
		{"By client host", "HOST", r.ByHost},
		{"By client name", "NAME", r.ByName},
	} {
		fmt.Fprintf(w, "\n%s (%s)\n", g.title, shown(len(g.g.Groups), g.g.TotalGroups))
		if len(g.g.Groups) == 0 {
			continue
		}
		p("  COUNT\tIDLE>=%s\tBLOCKED\tPUBSUB\tOLDEST\tMAX IDLE\t  %s\n", idle, g.column)
		for _, x := range g.g.Groups {
			key := x.Key
			if key == "" {
				key = "(no name)"
			}
			p("  %d\t%d\t%d\t%d\t%s\t%s\t  %s\n", x.Count, x.Idle, x.Blocked, x.PubSub,
				humanDuration(x.OldestAgeSeconds), humanDuration(x.MaxIdleSeconds), key)
		}
		if g.g.OtherConnections > 0 {
			p("  %d\t\t\t\t\t\t  (other %d groups)\n", g.g.OtherConnections, g.g.TotalGroups-len(g.g.Groups))
		}
		tw.Flush()
	}

	fmt.Fprintln(w)
	for _, s := range []struct {
		title string
		set   ClientSet
	}{
		{"Idle >= " + idle + " (blocked and pub/sub clients not included)", r.Idle},
		{"Blocked", r.Blocked},
		{"Pub/sub", r.PubSub},
	} {
		if s.set.Count == 0 {
			fmt.Fprintf(w, "%s: none\n", s.title)
			continue
		}
		fmt.Fprintf(w, "%s: %d", s.title, s.set.Count)
		if len(s.set.Clients) < s.set.Count {
			fmt.Fprintf(w, " (%d longest idle shown)", len(s.set.Clients))
		}
		fmt.Fprintln(w)
		writeClientTable(w, s.set.Clients)
		fmt.Fprintln(w)
	}
	return nil
}

// writeClientTable prints one row per client.
func writeClientTable(w io.Writer, clients []ClientSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tADDR\tNAME\tAGE\tIDLE\tFLAGS\tDB\tLAST CMD")
	for _, c := range clients {
		name := c.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Addr, name,
			humanDuration(c.AgeSeconds), humanDuration(c.IdleSeconds), c.Flags, c.DB, c.Cmd)
	}
	tw.Flush()
}

func shown(n, total int) string {
	if n == total {
		if total == 1 {
			return "1 group"
		}
		return fmt.Sprintf("%d groups", total)
	}
	return fmt.Sprintf("top %d of %d groups", n, total)
}

// humanDuration formats whole seconds compactly, leaving out a zero
// second unit: 42s, 4m10s, 5m, 3h05m, 1h, 2d03h, 2d.
func humanDuration(s int64) string {
	unit := func(big, small int64, bigName, smallName string) string {
		if s%big/small == 0 {
			return fmt.Sprintf("%d%s", s/big, bigName)
		}
		return fmt.Sprintf("%d%s%02d%s", s/big, bigName, s%big/small, smallName)
	}
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return unit(60, 1, "m", "s")
	case s < 86400:
		return unit(3600, 60, "h", "m")
	}
	return unit(86400, 3600, "d", "h")
}
