// Package store is the one path to a backend's Pebble database. It owns
// the database and its block cache, the write lock, write tracking, the
// stored metadata (the backend record and one record per state) and the
// rewriting of a state's values when its TTL is switched on or off. State
// kinds, TTL cleanup (package compaction), snapshots and restore reach
// Pebble only through a Store. It is not generic: keys and values are
// bytes, laid out as internal/keys says.
//
// # Basics
//
// Open opens the database, checks or writes the backend record, loads the
// state records and drops data no record names. Then:
//
//   - Get reads one value (the caller closes its closer); Set, Merge and
//     Delete write one key; NewBatch and Commit write many atomically.
//   - NewIter iterates a key range over a point-in-time view.
//   - NewSnapshot, Checkpoint, Flush and Compact serve snapshots and
//     maintenance; Load hands the database to restore's bulk loading.
//   - Lookup, NextID, Create and MigrateTTL manage the state records.
//   - WriteGen and Confirm are what background cleanup needs to remove an
//     entry without racing the task's writes.
//
// Every write holds the write lock and notes the key (or, for a batch,
// every key) in a small table of write generations, in the same critical
// section. Cleanup reads the generation before opening a scan iterator and
// confirms each expired entry under the same lock: an entry whose slot did
// not move since is deleted as judged, any other is read and judged again,
// so a key rewritten after the scan saw it is never deleted. Uncontended,
// the lock and the note cost tens of nanoseconds.
//
// Byte slices passed in are copied (the caller may reuse them at once),
// except iterator bounds, which the iterator keeps until closed. Bytes
// returned by Get are valid until the closer is closed; an iterator's Key
// and Value until its next step. Errors from Pebble are returned unwrapped
// by the data operations (the state kinds wrap them with the state's
// name); Open and the metadata operations wrap theirs, with ErrCorrupt and
// ErrIncompatible where they apply.
//
// # Faults
//
// Pebble reports its background work through the store's event listener
// and logger (events.go): messages go to Options.Logger, a repeated one
// once per LogInterval; Flush waits for its flush only until an attempt
// begun after the call fails, or its context ends; Close bounds its final
// flush by CloseFlushTimeout; the filesystem wrapper paces Pebble's
// retries of failing table writes (pace.go). Pebble's Fatalf (a failed
// MANIFEST write) logs and panics, as Pebble requires that it not return.
//
// # Caveats
//
// The data operations are safe for concurrent use as Pebble's are, but the
// metadata (Lookup, States, NextID, Create, MigrateTTL) is owned by the
// task goroutine and not synchronised. Writes made through Load, or to
// the database by any path other than this package, are invisible to
// write tracking unless followed by a note of every key (Load does this);
// cleanup could otherwise delete a value written after its scan.
//
// Every read and every write of state data goes through a Store, so a
// write-back cache would sit here: Get and NewIter would consult it before
// Pebble, Set, Merge and Delete would land in it, and eviction, Flush,
// NewSnapshot and Checkpoint would write it back first. Confirm would take
// cached entries into account under the same lock. The state kinds would
// not change; the merge operator's semantics for lists (Merge appends)
// would have to be reproduced for cached entries.
package store
