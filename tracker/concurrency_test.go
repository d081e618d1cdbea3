package tracker

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redisleak/redisleak/internal/track"
)

const (
	workers = 64
	// maxHeld bounds the long-lived checkouts one worker holds at a time.
	maxHeld = 4
)

func iterations() int {
	if testing.Short() {
		return 200
	}
	return 2000
}

var allKinds = []Kind{KindCommand, KindBlocking, KindPipeline, KindConn, KindPubSub, KindClient, KindSocket}

// checkStats asserts what holds for any Stats of a tracker that only sees
// valid releases, and that counters never go back from prev. Stats sums the
// shards one after another, so under concurrent checkouts it is not one
// moment's state and Outstanding has no tighter bound than this.
func checkStats(t *testing.T, st, prev Stats) bool {
	t.Helper()
	ok := true
	if st.Outstanding != st.Checkouts-st.Releases {
		t.Errorf("Outstanding %d != Checkouts %d - Releases %d", st.Outstanding, st.Checkouts, st.Releases)
		ok = false
	}
	if st.Releases > st.Checkouts {
		t.Errorf("Releases %d > Checkouts %d", st.Releases, st.Checkouts)
		ok = false
	}
	if st.Checkouts < prev.Checkouts || st.Releases < prev.Releases {
		t.Errorf("counters went back: %+v after %+v", st, prev)
		ok = false
	}
	if st.InvalidReleases != 0 || st.Dropped != 0 {
		t.Errorf("InvalidReleases %d, Dropped %d; want 0", st.InvalidReleases, st.Dropped)
		ok = false
	}
	return ok
}

// observe calls Report, Stats and Scope.Outstanding until stop is closed,
// checking each result. It calls ready once it has made one observation.
func observe(t *testing.T, tr *Tracker, scopes []*track.Scope, ready func(), stop <-chan struct{}) {
	var prev Stats
	for n := 0; ; n++ {
		if n == 1 {
			ready()
		}
		select {
		case <-stop:
			return
		default:
		}
		st := tr.Stats()
		if !checkStats(t, st, prev) {
			return
		}
		prev = st
		r := tr.Report()
		for _, g := range r.Groups {
			if g.Count <= 0 || g.Kind < KindCommand || g.Kind >= kindCount || g.Oldest < 0 {
				t.Errorf("bad group %+v", g)
				return
			}
			if !track.Kind(g.Kind).ShortLived() && g.Site.Line == 0 {
				t.Errorf("long-lived group without a site: %+v", g)
				return
			}
		}
		s := scopes[n%len(scopes)]
		if o := s.Outstanding(); o < 0 {
			t.Errorf("scope %s has %d outstanding", s.Name(), o)
			return
		}
		if r := scopeReport(s); len(r.Groups) > 0 && (len(r.Groups[0].Scopes) != 1 || r.Groups[0].Scopes[0] != s.Name()) {
			t.Errorf("scope report has scopes %q", r.Groups[0].Scopes)
			return
		}
	}
}

// heldToken is a token a worker holds, with the kind of its checkout.
type heldToken struct {
	track.Token
	kind Kind
}

// work makes iters checkouts: short-lived kinds are released at once,
// long-lived ones are held for a while (at most maxHeld at a time). It
// returns the tokens it still holds after releasing all but keep of them.
func work(t *testing.T, tr *Tracker, s *track.Scope, seed uint64, iters, keep int) []heldToken {
	rng := rand.New(rand.NewPCG(seed, 42))
	ctx := WithLabel(context.Background(), s.Name())
	var held []heldToken
	for i := 0; i < iters; i++ {
		k := allKinds[rng.IntN(len(allKinds))]
		tok := s.Checkout(ctx, track.Kind(k), "op", 0)
		if track.Kind(k).ShortLived() {
			if !tok.Release() {
				t.Errorf("Release of a %v = false", k)
				return held
			}
		} else {
			held = append(held, heldToken{tok, k})
			if len(held) > maxHeld || rng.IntN(3) == 0 {
				j := rng.IntN(len(held))
				if !held[j].Release() {
					t.Error("Release of a held checkout = false")
					return held
				}
				held = append(held[:j], held[j+1:]...)
			}
		}
		if rng.IntN(97) == 0 {
			st := tr.Stats()
			if !checkStats(t, st, Stats{}) {
				return held
			}
			if st.Outstanding < uint64(len(held)) {
				t.Errorf("Stats().Outstanding = %d while this worker alone holds %d", st.Outstanding, len(held))
				return held
			}
		}
	}
	for len(held) > keep {
		if !held[0].Release() {
			t.Error("final Release = false")
		}
		held = held[1:]
	}
	return held
}

func runWorkers(t *testing.T, keep int) (*Tracker, [][]heldToken) {
	tr := newTestTracker(CaptureLongLived)
	scopes := make([]*track.Scope, workers)
	for i := range scopes {
		scopes[i] = newScope(tr, "worker")
	}
	iters := iterations()
	held := make([][]heldToken, workers)
	// Two observers run all along: the workers start once both have made
	// an observation, and stop them once all are done.
	stop := make(chan struct{})
	var observers, ready sync.WaitGroup
	for range 2 {
		ready.Add(1)
		observers.Go(func() {
			observe(t, tr, scopes, sync.OnceFunc(ready.Done), stop)
		})
	}
	ready.Wait()
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { held[i] = work(t, tr, scopes[i], uint64(i), iters, keep) })
	}
	wg.Wait()
	close(stop)
	observers.Wait()
	if t.Failed() {
		t.FailNow()
	}

	total := uint64(workers * iters)
	kept := uint64(workers * keep)
	wantStats(t, tr, Stats{Checkouts: total, Releases: total - kept, Outstanding: kept})
	for i, s := range scopes {
		if n := s.Outstanding(); n != keep {
			t.Fatalf("scope %d has %d outstanding, want %d", i, n, keep)
		}
	}
	return tr, held
}

func TestConcurrentCheckoutRelease(t *testing.T) {
	tr, _ := runWorkers(t, 0)
	if r := tr.Report(); r.Len() != 0 || len(r.Groups) != 0 {
		t.Fatalf("report after all releases:\n%s", r)
	}
}

func TestConcurrentCheckoutKeep(t *testing.T) {
	const keep = 3
	tr, held := runWorkers(t, keep)
	r := tr.Report()
	if r.Len() != workers*keep {
		t.Fatalf("Report().Len() = %d, want %d", r.Len(), workers*keep)
	}
	want := map[Kind]int{}
	for _, toks := range held {
		if len(toks) != keep {
			t.Fatalf("a worker kept %d tokens, want %d", len(toks), keep)
		}
		for _, tok := range toks {
			want[tok.kind]++
		}
	}
	got := map[Kind]int{}
	for _, g := range r.Groups {
		if track.Kind(g.Kind).ShortLived() {
			t.Fatalf("a short-lived %v is outstanding", g.Kind)
		}
		got[g.Kind] += g.Count
		if len(g.Scopes) != 1 || g.Scopes[0] != "worker" {
			t.Fatalf("group scopes = %q", g.Scopes)
		}
		if len(g.Labels) != 1 || g.Labels[0] != "worker" {
			t.Fatalf("group labels = %q", g.Labels)
		}
	}
	for _, k := range allKinds {
		if got[k] != want[k] {
			t.Fatalf("report has %d × %v, the workers kept %d", got[k], k, want[k])
		}
	}

	// Release what was kept, concurrently, twice: exactly one release of
	// each token wins.
	var wins, losses atomic.Int64
	var wg sync.WaitGroup
	for _, toks := range held {
		for range 2 {
			wg.Go(func() {
				for _, tok := range toks {
					if tok.Release() {
						wins.Add(1)
					} else {
						losses.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if wins.Load() != workers*keep || losses.Load() != workers*keep {
		t.Fatalf("releases: %d won, %d lost; want %d each", wins.Load(), losses.Load(), workers*keep)
	}
	total := uint64(workers * iterations())
	wantStats(t, tr, Stats{Checkouts: total, Releases: total, InvalidReleases: workers * keep})
	if r := tr.Report(); r.Len() != 0 {
		t.Fatalf("report after releasing everything:\n%s", r)
	}
}
