// Package ttl holds state time-to-live at the ground level: the
// configuration a state descriptor carries, the clock processing time is
// read from, the one expiry predicate, and the stored form of TTL values.
// Reads, background cleanup and full snapshots all decide expiry with
// Expired and Filter, so they always agree.
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
