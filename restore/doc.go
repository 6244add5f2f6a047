// Package restore rebuilds a backend's database from checkpoint handles,
// at the same or another key-group range (rescaling).
//
// Incremental handles hold a native Pebble checkpoint. The one sharing the
// most key groups with the new instance (Base) is brought into the new
// instance's directory (Fetch: hard links where possible, checksums always)
// and opened directly; when the ranges differ, the key groups the instance
// does not own are excised (Clip).
//
// Every other handle is read for the owned key groups only: the blocks of a
// full snapshot's data file, or the key spans of a read-only copy of an
// incremental handle's database. The entries go into SST files (one sorted
// run per state, since each state's keys come out of the handles in
// ascending key-group order), which are ingested in one step at the end
// (Handles). Nothing is visible in the database until everything has been
// read and verified.
package restore
