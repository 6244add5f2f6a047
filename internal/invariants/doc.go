// Package invariants holds assertions that run only in builds with the
// invariants tag or the race detector (as Pebble's do):
//
//	go test -tags invariants ./...
//	go test -race ./...
//
// An invariant is a property the library's own code guarantees, such as a
// merged list value whose framing still decodes, or a restored database
// that holds only the key groups it owns. A broken invariant is a bug in
// the library, not bad input, so under the tag Check panics with an error
// wrapping ErrViolated; without the tag, Check does nothing and Enabled is
// a false constant, so the compiler drops the code it guards.
//
// # Basics
//
// Guard a check that costs anything (a scan, a decode, an allocation) with
// Enabled, so that it is compiled out of ordinary builds:
//
//	if invariants.Enabled {
//		n, err := Count(out)
//		invariants.Check(err == nil && n == want, "merge produced %d elements (%v), want %d", n, err, want)
//	}
//
// A cheap condition can call Check directly; its arguments are still
// evaluated, so keep them to values at hand.
//
// # Caveats
//
// Code must not fork its behaviour on Enabled: with the tag or without it,
// the library must compute the same results, return the same errors and
// write the same bytes. Enabled decides only whether extra checking runs.
// In particular, never return an error under the tag that ordinary builds
// would not, and never check bad input (a corrupt file, a caller's
// argument) with Check: the library reports bad input as an error in every
// build, and never panics on it.
//
// Tests must pass both with the tag and without it. CI runs the suite
// under the race detector (checks on) and again with the tag and without
// the detector, where the big tests that shrink under -race run at full
// size; only ordinary builds, such as a user's, run with the checks off.
package invariants
