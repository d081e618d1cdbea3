package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// runKillIdle is the kill-idle subcommand: it lists the normal clients idle
// for at least --idle and, only with --yes, kills them one by one with
// CLIENT KILL ID.
func runKillIdle(args []string, co *connOptions, stdout io.Writer) error {
	fs := newFlagSet("kill-idle")
	addConnFlags(fs, co)
	idle := fs.Duration("idle", -1, "idle threshold (required)")
	yes := fs.Bool("yes", false, "kill the clients (default: dry run)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *idle < 0 {
		return usagef("kill-idle: --idle is required and must not be negative (for example --idle 1h)")
	}
	if err := co.validate(); err != nil {
		return err
	}

	ctx := context.Background()
	return inspect(ctx, co, func(cn *redis.Conn, selfID int64) error {
		// TYPE normal leaves out replicas and pub/sub clients on the
		// server side; idleCandidates checks the flags again.
		text, err := cn.Do(ctx, "CLIENT", "LIST", "TYPE", "normal").Text()
		if err != nil {
			return describeErr(err, co, "CLIENT LIST")
		}
		clients, err := parseClientList(text)
		if err != nil {
			return err
		}
		victims := idleCandidates(clients, selfID, *idle)
		if len(victims) == 0 {
			fmt.Fprintf(stdout, "no normal client on %s has been idle for %s or more (not counting this inspector, id %d)\n",
				co.addr, humanDuration(seconds(*idle)), selfID)
			return nil
		}
		fmt.Fprintf(stdout, "%d normal clients on %s idle for %s or more (not counting this inspector, id %d):\n",
			len(victims), co.addr, humanDuration(seconds(*idle)), selfID)
		summaries := make([]ClientSummary, len(victims))
		for i, c := range victims {
			summaries[i] = summarize(c)
		}
		writeClientTable(stdout, summaries)
		if !*yes {
			fmt.Fprintf(stdout, "dry run: nothing killed; run again with --yes to kill these %d clients\n", len(victims))
			return nil
		}
		killed := 0
		for _, c := range victims {
			n, err := cn.ClientKillByFilter(ctx, "ID", strconv.FormatInt(c.ID, 10)).Result()
			if err != nil {
				return describeErr(err, co, "CLIENT KILL")
			}
			if n == 0 {
				fmt.Fprintf(stdout, "id %d (%s) was already gone\n", c.ID, c.Addr)
				continue
			}
			killed++
		}
		fmt.Fprintf(stdout, "killed %d of %d clients\n", killed, len(victims))
		return nil
	})
}

// idleCandidates returns the clients kill-idle may kill, longest idle
// first: normal clients (flag N: not blocked, not pub/sub, not a replica
// or master, not in MULTI) idle for at least threshold, other than selfID.
func idleCandidates(clients []Client, selfID int64, threshold time.Duration) []Client {
	var out []Client
	for _, c := range clients {
		if c.ID == selfID || c.Flags != "N" || c.Blocked() || c.PubSub() || c.Idle < threshold {
			continue
		}
		out = append(out, c)
	}
	sortByIdle(out)
	return out
}
