package tracker

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redisleak/redisleak/internal/stack"
	"github.com/redisleak/redisleak/internal/track"
)

// Report is the set of outstanding checkouts, grouped by call site. It is
// taken one shard at a time, so while checkouts come and go it may hold a few
// that were released, or miss a few that were made, during the taking. It holds call sites, command names, counts, ages and labels only:
// never command arguments, keys or passwords. encoding/json renders it.
type Report struct {
	Taken  time.Time `json:"taken"`
	Groups []Group   `json:"groups"` // most checkouts first, then oldest first
}

// Group is the outstanding checkouts of one kind made at one call site.
type Group struct {
	Kind Kind   `json:"kind"`
	Op   string `json:"op,omitempty"` // command name, for commands
	// Site is the first frame outside go-redis and redisleak: the caller's own
	// function and file:line. It is zero when no stack was captured.
	Site Frame `json:"site"`
	// Stack is the trimmed stack of the oldest checkout in the group, Site first.
	Stack   []Frame `json:"stack,omitempty"`
	Count   int     `json:"count"`
	Dropped int     `json:"dropped,omitempty"` // of Count, how many holders were garbage-collected unreleased
	// Notes counts the checkouts of the group by the note their holder set
	// on them, such as "connection closed by the server".
	Notes  map[string]int `json:"notes,omitempty"`
	Oldest time.Duration  `json:"oldest_ns"`        // age of the oldest checkout
	Scopes []string       `json:"scopes,omitempty"` // names of the scopes (clients) holding them
	Labels []string       `json:"labels,omitempty"` // distinct labels, at most maxLabels
	// ConnNames are the connections the group's checkouts hold, as the
	// server names them, sorted; every one of them, since an operator looks
	// a server-side name up here.
	ConnNames []string `json:"conn_names,omitempty"`
}

// Frame is one line of a stack.
type Frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

// String renders "function (dir/file.go:line)".
func (f Frame) String() string { return stack.FrameString(f.Function, f.File, f.Line) }

// ShortPos renders the position as "dir/file.go:line": enough to find the
// line, short enough to read in a log.
func (f Frame) ShortPos() string { return stack.ShortPos(f.File, f.Line) }

const maxLabels = 5

// maxConnNamesText bounds the connection names a group lists in text; the
// JSON form and Group.ConnNames hold them all.
const maxConnNamesText = 10

// Len returns the number of outstanding checkouts in the report.
func (r Report) Len() int {
	n := 0
	for _, g := range r.Groups {
		n += g.Count
	}
	return n
}

// Filter returns the report with only the groups keep accepts.
func (r Report) Filter(keep func(Group) bool) Report {
	out := Report{Taken: r.Taken}
	for _, g := range r.Groups {
		if keep(g) {
			out.Groups = append(out.Groups, g)
		}
	}
	return out
}

// String renders the report as text, one block per call site:
//
//	redisleak: 4 outstanding checkouts at 2 call sites
//
//	3 × conn, oldest 1.2s, client 127.0.0.1:6379
//	    main.handle (app/handler.go:42)
//	        /src/app/handler.go:42
//	    main.main
//	        /src/app/main.go:17
func (r Report) String() string {
	if len(r.Groups) == 0 {
		return "redisleak: no outstanding checkouts"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "redisleak: %d outstanding checkouts at %d call sites\n", r.Len(), len(r.Groups))
	for _, g := range r.Groups {
		b.WriteByte('\n')
		g.writeTo(&b)
	}
	return b.String()
}

func (g Group) writeTo(b *strings.Builder) {
	fmt.Fprintf(b, "%d × %s", g.Count, g.Kind)
	if g.Op != "" && g.Op != g.Kind.String() { // not "pipeline pipeline"
		fmt.Fprintf(b, " %s", g.Op)
	}
	fmt.Fprintf(b, ", oldest %s", g.Oldest.Round(time.Millisecond))
	if g.Dropped > 0 {
		fmt.Fprintf(b, ", %d garbage-collected without Close (definite leak)", g.Dropped)
	}
	for _, note := range slices.Sorted(maps.Keys(g.Notes)) {
		fmt.Fprintf(b, ", %d %s", g.Notes[note], note)
	}
	if len(g.Scopes) > 0 {
		fmt.Fprintf(b, ", client %s", strings.Join(g.Scopes, ", "))
	}
	if len(g.Labels) > 0 {
		fmt.Fprintf(b, ", labels %s", strings.Join(g.Labels, ", "))
	}
	b.WriteByte('\n')
	if len(g.ConnNames) > 0 {
		names := g.ConnNames
		more := ""
		if len(names) > maxConnNamesText {
			more = fmt.Sprintf(" and %d more", len(names)-maxConnNamesText)
			names = names[:maxConnNamesText]
		}
		fmt.Fprintf(b, "    on connections %s%s\n", strings.Join(names, " "), more)
	}
	if len(g.Stack) == 0 {
		b.WriteString("    origin not captured: commands record a stack only with tracker.WithCapture(tracker.CaptureAll) or REDISLEAK=debug\n")
		return
	}
	fmt.Fprintf(b, "    %s\n", g.Site)
	for _, f := range g.Stack {
		fmt.Fprintf(b, "    %s\n        %s:%d\n", f.Function, f.File, f.Line)
	}
}

// Checkout is one outstanding checkout, as [Tracker.Checkouts] lists them:
// for callers that filter checkouts one by one before grouping them with
// [GroupCheckouts].
type Checkout struct {
	ID    CheckoutID
	Kind  Kind
	Op    string
	Label string
	Scope string // name of the scope (client) that made it
	// ConnName is the connection the checkout holds, as the server names it
	// (the name the client gave the socket, or its address); empty when not
	// known.
	ConnName string
	Start    time.Time
	Dropped  bool   // its holder was garbage-collected without being released: a definite leak
	Note     string // what its holder said of it, such as "connection closed by the server"
	// Stack is the caller's stack, library and runtime frames trimmed, the
	// caller's own frame first; nil when no stack was captured.
	Stack []Frame
}

// CheckoutID identifies one checkout among all those of a process, including
// a later checkout that reuses the same record. IDs are comparable.
type CheckoutID struct {
	id track.ID
}

// Report returns every outstanding checkout of the tracker.
func (t *Tracker) Report() Report { return report(t.e, t.e.Checkouts(nil)) }

// Checkouts returns every outstanding checkout of the tracker, one by one.
func (t *Tracker) Checkouts() []Checkout { return checkouts(t.e.Checkouts(nil)) }

// report groups cs, checkouts of e, into a report. It takes the time after
// the checkouts, so no age comes out negative.
func report(e *track.Engine, cs []track.Checkout) Report {
	out := checkouts(cs)
	return GroupCheckouts(e.Now(), out)
}

// checkouts symbolizes the stacks of raw checkouts, each distinct stack
// once: a leak in a loop repeats one stack.
func checkouts(raw []track.Checkout) []Checkout {
	out := make([]Checkout, len(raw))
	symbolized := make(map[track.Stack][]Frame)
	for i := range raw {
		c := &raw[i]
		frames, ok := symbolized[c.Stack]
		if !ok {
			frames = framesOf(c.Stack)
			symbolized[c.Stack] = frames
		}
		out[i] = Checkout{
			ID: CheckoutID{c.ID}, Kind: Kind(c.Kind), Op: c.Op, Label: c.Label, Scope: c.Scope,
			ConnName: c.ConnName, Start: c.Start, Dropped: c.Dropped, Note: c.Note, Stack: frames,
		}
	}
	return out
}

func framesOf(st track.Stack) []Frame {
	var out []Frame
	for _, rf := range st.Frames() {
		out = append(out, Frame{Function: rf.Function, File: rf.File, Line: rf.Line})
	}
	return out
}

type groupKey struct {
	kind Kind
	op   string
	site Frame
}

// GroupCheckouts groups checkouts by kind, operation and call site into a
// report taken at now, as [Tracker.Report] does.
func GroupCheckouts(now time.Time, checkouts []Checkout) Report {
	index := make(map[groupKey]int)
	var groups []Group
	for _, c := range checkouts {
		st := c.Stack
		key := groupKey{kind: c.Kind, op: c.Op}
		if len(st) > 0 {
			key.site = st[0]
		}
		age := now.Sub(c.Start)
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, Group{Kind: key.kind, Op: key.op, Site: key.site, Stack: st, Oldest: -1})
		}
		g := &groups[i]
		g.Count++
		if c.Dropped {
			g.Dropped++
		}
		if c.Note != "" {
			if g.Notes == nil {
				g.Notes = make(map[string]int)
			}
			g.Notes[c.Note]++
		}
		if age > g.Oldest {
			g.Oldest, g.Stack = age, st
		}
		if c.Scope != "" && !slices.Contains(g.Scopes, c.Scope) {
			g.Scopes = append(g.Scopes, c.Scope)
		}
		if c.Label != "" && len(g.Labels) < maxLabels && !slices.Contains(g.Labels, c.Label) {
			g.Labels = append(g.Labels, c.Label)
		}
		if c.ConnName != "" {
			g.ConnNames = append(g.ConnNames, c.ConnName)
		}
	}
	for i := range groups {
		slices.SortFunc(groups[i].ConnNames, compareConnNames)
	}
	slices.SortStableFunc(groups, func(a, b Group) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(b.Oldest, a.Oldest)
	})
	return Report{Taken: now, Groups: groups}
}

// compareConnNames orders names with numbers in them numerically where they
// differ only in their trailing number, so that "a.s9" comes before "a.s10".
func compareConnNames(a, b string) int {
	pa, na := splitTrailingNumber(a)
	pb, nb := splitTrailingNumber(b)
	if pa == pb && len(na) != len(nb) {
		return cmp.Compare(len(na), len(nb))
	}
	return strings.Compare(a, b)
}

func splitTrailingNumber(s string) (prefix, digits string) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	return s[:i], s[i:]
}
