//go:build race

package nexmarkjob

// raceEnabled reports whether the test binary has the race detector.
const raceEnabled = true
