// Package ttl holds what state time-to-live needs from the ground up: the
// clock that all processing-time decisions read. Nothing in this module
// reads the wall clock except SystemClock, so tests drive time with a
// ManualClock.
package ttl
