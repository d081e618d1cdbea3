// Package clientlist parses the reply of Redis's CLIENT LIST, for the tests'
// servers and for the inspector command alike.
package clientlist

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client is one connection as reported by CLIENT LIST. Only the fields
// the leak tests look at are kept; the rest of the line is ignored so that
// newer servers, which keep adding fields, still parse.
type Client struct {
	// ID is the server-assigned client id (id=). It is unique for the
	// lifetime of the server process, so it tells a reconnect apart from
	// the same connection.
	ID int64
	// Addr is the client's remote address (addr=), host:port.
	Addr string
	// Name is the name set with CLIENT SETNAME (name=), empty if unset.
	Name string
	// Age is how long the connection has been open (age=, whole seconds).
	Age time.Duration
	// Idle is how long since the connection last ran a command (idle=,
	// whole seconds).
	Idle time.Duration
	// Flags are the single-letter client flags (flags=), for example "N"
	// for a plain client, "P" for pub/sub or "b" for a blocked client.
	Flags string
	// DB is the selected database (db=).
	DB int
	// Sub is the number of channel subscriptions (sub=).
	Sub int
	// PSub is the number of pattern subscriptions (psub=).
	PSub int
	// SSub is the number of shard-channel subscriptions (ssub=). Servers
	// before 7.0 do not report it, in which case it is zero.
	SSub int
	// Cmd is the last command the client ran (cmd=), lower case, with
	// subcommands joined by "|" (for example "client|list").
	Cmd string
}

// Parse parses the reply of CLIENT LIST (redis 7.0 format: one
// line per client, space-separated key=value pairs). Unknown keys are
// ignored and ssub may be absent, so replies from older and newer servers
// parse too. Blank lines are skipped. A line without an id, a pair without
// "=" or a numeric field that does not parse is an error naming the line,
// the field and the value, because a silently wrong count would make a leak
// test pass or fail for the wrong reason.
func Parse(text string) ([]Client, error) {
	var clients []Client
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		c, err := parseClientLine(line)
		if err != nil {
			return nil, fmt.Errorf("CLIENT LIST line %d: %w", n+1, err)
		}
		clients = append(clients, c)
	}
	return clients, nil
}

// parseClientLine parses one CLIENT LIST line.
func parseClientLine(line string) (Client, error) {
	var (
		c     Client
		hasID bool
		err   error
	)
	// Client names cannot contain spaces (CLIENT SETNAME rejects them), so
	// splitting on whitespace is safe.
	for _, pair := range strings.Fields(line) {
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			return Client{}, fmt.Errorf("malformed pair %q: no '='", pair)
		}
		switch key {
		case "id":
			c.ID, err = strconv.ParseInt(value, 10, 64)
			hasID = true
		case "addr":
			c.Addr = value
		case "name":
			c.Name = value
		case "age":
			c.Age, err = parseSeconds(value)
		case "idle":
			c.Idle, err = parseSeconds(value)
		case "flags":
			c.Flags = value
		case "db":
			c.DB, err = strconv.Atoi(value)
		case "sub":
			c.Sub, err = strconv.Atoi(value)
		case "psub":
			c.PSub, err = strconv.Atoi(value)
		case "ssub":
			c.SSub, err = strconv.Atoi(value)
		case "cmd":
			c.Cmd = value
		}
		if err != nil {
			return Client{}, fmt.Errorf("field %q: invalid value %q", key, value)
		}
	}
	if !hasID {
		return Client{}, fmt.Errorf("no id field in %q", line)
	}
	return c, nil
}

// parseSeconds parses a whole number of seconds as CLIENT LIST reports age
// and idle.
func parseSeconds(value string) (time.Duration, error) {
	s, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(s) * time.Second, nil
}

// Blocked reports whether the client waits in a blocking command (flag b).
func (c Client) Blocked() bool { return strings.ContainsRune(c.Flags, 'b') }

// PubSub reports whether the client is in pub/sub mode: flag P, or any
// channel, pattern or shard-channel subscription.
func (c Client) PubSub() bool {
	return strings.ContainsRune(c.Flags, 'P') || c.Sub > 0 || c.PSub > 0 || c.SSub > 0
}

// Host is the client's address without the port; an address that does not
// split is returned whole (a unix socket path, say).
func (c Client) Host() string {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil || host == "" {
		return c.Addr
	}
	return host
}
