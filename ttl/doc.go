// Package ttl holds state time-to-live at the ground level: the
// configuration a state descriptor carries, the clock processing time is
// read from, the stored form of TTL values, and the one TTL judge.
//
// Judge decides, for a stored value of either layout, whether it is live,
// expired or (a list) partly expired, which bytes to keep, and whether to
// restamp them (reads under OnReadAndWrite). Reads, access cleanup,
// background cleanup and full snapshots (through EntryFilter) all call it,
// so they always agree; no code outside this package compares stamps with
// the clock, which a test in internal/lint enforces.
//
// # Semantics
//
// They follow Flink's StateTtlConfig. Every write stamps the value with the
// current processing time (milliseconds since the epoch); with
// OnReadAndWrite, reads refresh the stamp too. An entry stamped at ts
// expires at ts+TTL, inclusive: at now == ts+TTL it is already expired.
// List elements and map entries carry stamps of their own.
//
// # Stored form
//
// A TTL value is its 8-byte big-endian stamp followed by the user's bytes.
// In a list each element is stamped inside its framing.
//
// Nothing in this module reads the wall clock except SystemClock, so tests
// drive time with a ManualClock.
package ttl
