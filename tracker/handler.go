package tracker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Handler returns an http.Handler that shows the outstanding checkouts of the
// given trackers (of every tracker, [All], when none is given), like the
// pages of net/http/pprof: text by default, JSON with ?format=json or an
// Accept header asking for application/json. Mount it yourself, behind
// whatever guards your debug endpoints:
//
//	mux.Handle("/debug/redisleak", tracker.Handler())
//
// Pages hold call sites, command names, counts, ages and labels only.
func Handler(ts ...*Tracker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trackers := ts
		if len(trackers) == 0 {
			trackers = All()
		}
		type page struct {
			Stats  Stats  `json:"stats"`
			Report Report `json:"report"`
		}
		pages := make([]page, 0, len(trackers))
		for _, t := range trackers {
			pages = append(pages, page{Stats: t.Stats(), Report: t.Report()})
		}
		if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(struct {
				Trackers []page `json:"trackers"`
			}{pages})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for i, p := range pages {
			fmt.Fprintf(w, "tracker %d: %d outstanding, %d checkouts, %d releases, %d invalid releases, %d dropped\n\n%s\n\n",
				i+1, p.Stats.Outstanding, p.Stats.Checkouts, p.Stats.Releases, p.Stats.InvalidReleases, p.Stats.Dropped, p.Report)
		}
	})
}
