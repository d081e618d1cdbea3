package pool

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redisleak/redisleak/internal/track"
)

// blockingClaims names the socket a blocking command waits on. go-redis does
// not say which pooled socket serves a command, and a blocking command can
// hold one for minutes: the inspector, which sees it in CLIENT LIST with
// cmd=blpop, must lead to its checkout. So while a blocking command is
// pending, the sockets of the client look at the first command of each write
// (its name only, never its arguments) and the first write of that command
// name claims the pending checkout. Two pending commands of one name may
// claim each other's socket; both are blocked on one of the two.
type blockingClaims struct {
	pending atomic.Int32 // len(list), read on every write without the lock
	mu      sync.Mutex
	list    []*blockingClaim
}

// blockingClaim is one blocking command waiting for its socket to be known.
type blockingClaim struct {
	name string // the command's name, lower case
	tok  track.Token
}

// add makes tok, a blocking command's checkout, claim the socket that next
// writes a command named name. The returned func withdraws the claim.
func (b *blockingClaims) add(name string, tok track.Token) (withdraw func()) {
	c := &blockingClaim{name: strings.ToLower(name), tok: tok}
	b.mu.Lock()
	b.list = append(b.list, c)
	b.pending.Store(int32(len(b.list)))
	b.mu.Unlock()
	return func() { b.take(func(x *blockingClaim) bool { return x == c }) }
}

// take removes and returns the first claim match accepts, or nil.
func (b *blockingClaims) take(match func(*blockingClaim) bool) *blockingClaim {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range b.list {
		if match(c) {
			b.list = append(b.list[:i], b.list[i+1:]...)
			b.pending.Store(int32(len(b.list)))
			return c
		}
	}
	return nil
}

// wrote runs on every write of s while a claim is pending: the first
// command of p, if a claim waits for its name, names s on that claim's
// checkout.
func (b *blockingClaims) wrote(s *socket, p []byte) {
	name := firstCommandName(p)
	if name == "" {
		return
	}
	if c := b.take(func(c *blockingClaim) bool { return strings.EqualFold(c.name, name) }); c != nil {
		c.tok.SetConnName(connNameOf(s))
	}
}

// firstCommandName returns the name of the first command of a RESP request,
// "*<n>\r\n$<len>\r\n<name>\r\n...", or "" when p does not start with one.
func firstCommandName(p []byte) string {
	if len(p) < 4 || p[0] != '*' {
		return ""
	}
	i := 1
	for i < len(p) && p[i] != '\r' {
		i++
	}
	i += 2 // \r\n
	if i >= len(p) || p[i] != '$' {
		return ""
	}
	n, j := 0, i+1
	for ; j < len(p) && p[j] >= '0' && p[j] <= '9'; j++ {
		n = n*10 + int(p[j]-'0')
	}
	j += 2 // \r\n
	if n == 0 || n > 32 || j+n > len(p) {
		return ""
	}
	return string(p[j : j+n])
}
