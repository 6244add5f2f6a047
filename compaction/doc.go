// Package compaction removes expired TTL state from disk in the background.
//
// Pebble has no compaction filter, and its merge-operator delete hook is
// unsafe in v2.1 (it can panic or resurrect values), so the filter runs
// beside compaction instead of inside it:
//
//  1. Pebble's event listener reports the key spans each flush and
//     compaction just wrote. They are queued, merged where they overlap.
//  2. A background worker scans the queued spans while their blocks are
//     still in the cache, and a periodic sweep scans every TTL state, so
//     cold data that no compaction touches leaves the disk too.
//  3. Entries the expiry predicate (package ttl) condemns are confirmed and
//     removed under the lock that serialises state writes: each is read
//     again and judged again before it is deleted, so a key rewritten after
//     the scan saw it is never deleted.
//  4. Spans where much was removed are compacted, so the space is returned.
//
// The worker re-reads the clock every QueryTimeAfterNumEntries entries, as
// Flink's filter does, and is paced to a configurable amount of work per
// second (entries checked, each removal counting as 100, its measured
// cost) so the task's own reads and writes keep their speed.
// CleanupExpired runs unpaced.
//
// EntryFilter, the per-entry decision, is shared with full snapshots, which
// leave expired entries out.
package compaction
