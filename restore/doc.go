// Package restore rebuilds a backend's database from checkpoint handles,
// at the same or another key-group range (rescaling).
//
// Incremental handles hold a native Pebble checkpoint. The one sharing the
// most key groups with the new instance (Base) is brought into the new
// instance's directory (FetchUnverified: hard links where possible) and
// opened directly; when the ranges differ, the key groups the instance
// does not own are excised (Clip). Only the files that remain are
// checksummed (Kept), before anything reads them.
//
// Every other handle is read for the owned key groups only: the blocks of a
// full snapshot's data file, or a read-only copy of an incremental handle's
// database. Of the latter, every bottom-level table Pebble can ingest as it
// is (sequence numbers zero in the file, nothing newer above it) is
// ingested whole, wherever its boundaries fall; the parts of it the new
// instance does not own are excised after ingestion. The entries of the
// owned key groups outside those tables are rewritten into new SSTs,
// several spans at once. Full snapshots' entries go into SSTs too (one
// sorted run per state, since each state's keys come out of the handles in
// ascending key-group order). Everything is ingested at the end (Handles):
// nothing is visible in the database until everything has been read and
// verified.
//
// Pebble refuses to ingest a table whose keys carry sequence numbers, as
// the tables compaction moved down unchanged do, and it has no way to
// import one with them. Such a table, when no other table meets the span
// being copied, is read straight from its file (no merging of levels, no
// block cache) and rewritten with sequence numbers zero; spans that other
// tables meet are read through the database. Either way these entries are
// decoded and encoded again and written out: they are the part of a
// rescaling restore whose cost depends on the shape of the handles' LSMs
// (Stats.Rewritten counts them, Stats.ReadFromTables those read from
// their files).
//
// The database restored into is a DB: the backend's store provides one,
// and Pebble adapts a plain Pebble database. Clip and Kept, which work on
// the base database before the backend opens it, take the *pebble.DB the
// store opens for them.
package restore
