// Package compaction is the design's TTL-aware compaction filter: the TTL
// filter running beside Pebble's flushes and compactions, which removes
// expired state from disk in the background.
//
// Pebble has no compaction filter, and its merge-operator delete hook is
// unsafe in v2.1 (it can panic or resurrect values), so the filter runs
// beside compaction instead of inside it, reaching the database only
// through internal/store:
//
//  1. Pebble's event listener reports the key spans each flush and
//     compaction just wrote. They are queued, merged where they overlap.
//  2. A background worker scans the queued spans while their blocks are
//     still in the cache, and a periodic sweep scans every TTL state, so
//     cold data that no compaction touches leaves the disk too.
//  3. Entries the TTL judge (package ttl) condemns are confirmed and
//     removed by store.Store.Confirm under the lock that serialises state
//     writes, so a key rewritten after the scan saw it is never deleted.
//     The store notes every write's generation in a small table under
//     that lock; an entry whose slot has not moved since the scan's
//     iterator opened is deleted as judged, any other is read and judged
//     again.
//  4. Spans where much was removed are compacted, so the space is returned.
//  5. A complete pass over a state learns when its next entry can expire
//     (the earliest expiry it kept, capped at the pass's start plus the
//     TTL, which covers later writes); the worker skips the state until
//     then, so a flush of freshly written keys does not rescan a state in
//     which nothing can have expired. CleanupExpired never skips.
//
// The worker re-reads the clock every QueryTimeAfterNumEntries entries, as
// Flink's filter does, and is paced so the task's own reads and writes keep
// their speed: to a configurable amount of work per second (entries
// checked, each removal counting as 100: its delete and the flush and
// compaction of its tombstone), and to a share of one core's time (25% by
// default), which holds where entries are dearer than the first assumes.
// CleanupExpired runs unpaced.
//
// EntryFilter, the per-entry decision, is shared with full snapshots, which
// leave expired entries out.
package compaction
