//go:build race

package tracker

// raceEnabled is true under -race, where sync.Pool drops a random quarter of
// what is Put, so allocation counts are meaningless.
const raceEnabled = true
