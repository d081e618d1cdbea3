//go:build !race

package track

// raceEnabled is true under -race, where sync.Pool drops a random quarter of
// what is Put, so allocation counts are meaningless.
const raceEnabled = false
