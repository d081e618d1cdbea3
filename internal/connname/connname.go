// Package connname is the one format of the names pool.NewClient gives its
// sockets with CLIENT SETNAME, shared by the pool that sets them and the
// inspector that groups the server's clients by them.
//
// A name is "<client>.p<pid>.s<socket>": the client's name (go-redis's
// ClientName, or the program's name), the process id, and the socket's id
// within that process, as the service's own reports show it. For example
// "orders-api.p4242.s17".
package connname

import (
	"regexp"
	"strconv"
	"strings"
)

// Name is a parsed socket name.
type Name struct {
	Client string // the client's name
	PID    int    // the process that opened the socket
	Socket uint64 // the socket's id within the process
}

// String formats n as the server sees it.
func (n Name) String() string {
	return n.Process() + ".s" + strconv.FormatUint(n.Socket, 10)
}

// Process is the name without the socket id: every socket one client of one
// process opened shares it.
func (n Name) Process() string {
	return Sanitize(n.Client) + ".p" + strconv.Itoa(n.PID)
}

var pattern = regexp.MustCompile(`^(.+)\.p([0-9]+)\.s([0-9]+)$`)

// Parse parses a name made by Name.String; ok is false for any other name.
func Parse(s string) (n Name, ok bool) {
	m := pattern.FindStringSubmatch(s)
	if m == nil {
		return Name{}, false
	}
	pid, err := strconv.Atoi(m[2])
	if err != nil {
		return Name{}, false
	}
	sock, err := strconv.ParseUint(m[3], 10, 64)
	if err != nil {
		return Name{}, false
	}
	return Name{Client: m[1], PID: pid, Socket: sock}, true
}

// Sanitize makes s usable as part of a client name: Redis refuses names with
// spaces, newlines or other characters outside '!'..'~', so each becomes '_'.
// An empty s becomes "redis".
func Sanitize(s string) string {
	if s == "" {
		return "redis"
	}
	return strings.Map(func(r rune) rune {
		if r < '!' || r > '~' {
			return '_'
		}
		return r
	}, s)
}
