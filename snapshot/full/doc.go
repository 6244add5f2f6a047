// Package full is the full-snapshot format: every entry of every state of
// one backend instance, as of one Pebble snapshot, in one data file, one
// independently compressed and checksummed block per key group, so that a
// restore reads only the key groups it owns. FORMAT.md beside this file
// documents the bytes.
//
// The writer reads all states through per-state iterators advanced in step,
// key group by key group, so entries come out in (key group, state, key)
// order, and it streams: memory stays bounded whatever the state size. The
// block locations go into the instance's snapshot.Handle, as Flink keeps its
// key-group offsets in the checkpoint metadata.
package full
