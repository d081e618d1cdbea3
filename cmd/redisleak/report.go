package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
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
	top := fs.Int("top", 10, "number of groups, and of socket names per process, to show (0 = all)")
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

// nameFormat is the format of the socket names ByProcess groups by, as the
// report shows it.
const nameFormat = "<client>.p<pid>.s<socket>"

// writeReport prints r as text: counts first, then the largest holders (by
// process first, when the sockets carry redisleak's names), then the
// individual idle, blocked and pub/sub clients.
func writeReport(w io.Writer, addr string, r Report) error {
	idle := humanDuration(r.IdleThresholdSeconds)
	fmt.Fprintf(w, "%s at %s: %d connections (not counting this inspector, id %d)\n",
		addr, r.Time.Format("2006-01-02 15:04:05 MST"), r.Total, r.SelfID)
	fmt.Fprintf(w, "idle>=%s: %d   blocked: %d   pub/sub: %d\n", idle, r.Idle.Count, r.Blocked.Count, r.PubSub.Count)

	named := len(r.ByProcess.Groups) > 0
	if named {
		writeByProcess(w, idle, r)
	}

	fmt.Fprintf(w, "\nBy age\n")
	for _, b := range r.AgeBuckets {
		fmt.Fprintf(w, "  %-6s %6d\n", b.Label, b.Count)
	}

	writeGrouping(w, "By client host", "", "HOST", idle, r.ByHost)
	writeGrouping(w, "By client name", "", "NAME", idle, r.ByName)
	if !named {
		fmt.Fprintf(w, "\nBy process: none (no connection is named %s, as pool.NewClient names its sockets)\n", nameFormat)
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

// writeGrouping prints a grouping's heading (title, then note and how many
// groups are shown in parentheses) and, unless it is empty, a table of its
// groups with their keys in column.
func writeGrouping(w io.Writer, title, note, column, idle string, g Grouping) {
	fmt.Fprintf(w, "\n%s (%s%s)\n", title, note, shown(len(g.Groups), g.TotalGroups))
	if len(g.Groups) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("  COUNT\tIDLE>=%s\tBLOCKED\tPUBSUB\tOLDEST\tMAX IDLE\t  %s\n", idle, column)
	for _, x := range g.Groups {
		key := x.Key
		if key == "" {
			key = "(no name)"
		}
		p("  %d\t%d\t%d\t%d\t%s\t%s\t  %s\n", x.Count, x.Idle, x.Blocked, x.PubSub,
			humanDuration(x.OldestAgeSeconds), humanDuration(x.MaxIdleSeconds), key)
	}
	if g.OtherConnections > 0 {
		p("  %d\t\t\t\t\t\t  (other %d groups)\n", g.OtherConnections, g.TotalGroups-len(g.Groups))
	}
	tw.Flush()
}

// writeByProcess prints r.ByProcess like the other groupings, then each
// shown group's socket names, idle ones first, wrapped to lineWidth.
func writeByProcess(w io.Writer, idle string, r Report) {
	writeGrouping(w, "By process", "names set by redisleak: "+nameFormat+"; ", "PROCESS", idle, r.ByProcess)
	if r.NotNamedByRedisleak > 0 {
		fmt.Fprintf(w, "  %d of %d connections not named by redisleak: only in the groupings by host and by name\n",
			r.NotNamedByRedisleak, r.Total)
	}
	idleLabel, otherLabel := "idle>="+idle, "not idle"
	labelWidth := max(len(idleLabel), len(otherLabel))
	fmt.Fprintf(w, "  Socket names, to look up in the service's leak report (idle first):\n")
	for _, g := range r.ByProcess.Groups {
		fmt.Fprintf(w, "    %s\n", g.Key)
		shownIdle := min(g.Idle, len(g.Sockets))
		for _, part := range []struct {
			label string
			names []string
		}{
			{idleLabel, g.Sockets[:shownIdle]},
			{otherLabel, g.Sockets[shownIdle:]},
		} {
			if len(part.names) > 0 {
				writeWrapped(w, fmt.Sprintf("      %-*s  ", labelWidth, part.label), part.names)
			}
		}
		if hidden := g.Count - len(g.Sockets); hidden > 0 {
			fmt.Fprintf(w, "      ... and %d more (%d of them %s); --top 0 lists all\n",
				hidden, g.Idle-shownIdle, idleLabel)
		}
	}
}

// lineWidth is the width writeWrapped wraps at.
const lineWidth = 100

// writeWrapped prints words separated by spaces after prefix, wrapping at
// lineWidth and indenting continuation lines by prefix's width; a word is
// never split.
func writeWrapped(w io.Writer, prefix string, words []string) {
	indent := strings.Repeat(" ", len(prefix))
	line := prefix
	for i, word := range words {
		if i > 0 && len(line)+1+len(word) > lineWidth {
			fmt.Fprintln(w, line)
			line = indent + word
			continue
		}
		if i > 0 {
			line += " "
		}
		line += word
	}
	fmt.Fprintln(w, line)
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
