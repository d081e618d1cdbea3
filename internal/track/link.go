package track

// Package tracker wraps an [Engine] in its public Tracker, and makes reports
// of the engine's raw [Checkout]s; package pool, which feeds trackers,
// needs both ways across that wrapping without either package exporting
// them. This file is the one place where that is done, in the way of grpc's
// internal package: package tracker registers a [Link] in its init, and
// package pool takes it with [LinkOf], typed by the two types of tracker's
// that it cannot name here. Keep it small: everything else pool needs is a
// method of the engine, its scopes and its tokens.

// Link is what package tracker lends package pool. T is tracker.Tracker, R
// tracker.Report.
type Link[T, R any] struct {
	// Engine returns the engine of a tracker.
	Engine func(*T) *Engine
	// Tracker returns the tracker that wraps an engine: its [Config.Owner].
	Tracker func(*Engine) *T
	// Report groups checkouts of e by call site into a report taken now by
	// e's clock, symbolizing each distinct stack once, as the tracker's own
	// reports do.
	Report func(e *Engine, cs []Checkout) R
}

// link is the registered Link[T, R], as an any: this package cannot name
// tracker's types.
var link any

// SetLink registers l. Package tracker calls it in its init, once.
func SetLink[T, R any](l Link[T, R]) { link = l }

// LinkOf returns the registered link. It panics, at the init of the package
// that calls it, when package tracker has not registered a Link[T, R]:
// package tracker is initialized before any package that imports it.
func LinkOf[T, R any]() Link[T, R] {
	l, ok := link.(Link[T, R])
	if !ok {
		panic("track: package tracker registered no link of these types")
	}
	return l
}
