// Package snapshot is checkpoint storage: where checkpoints live, what a
// checkpoint's metadata says, and how completed checkpoints are found,
// retained and discarded.
//
// # Layout
//
// A checkpoint root follows Flink's layout:
//
//	<root>/chk-<id>/_metadata   the checkpoint's metadata, written last: the commit point
//	<root>/chk-<id>/...         files owned by this checkpoint alone
//	<root>/shared/              files several incremental checkpoints reference
//
// A checkpoint exists if and only if its _metadata exists and verifies. The
// metadata lists one Handle per backend instance that took part: its
// operator, key groups, states (State: name, id, kind, codec names, TTL
// flag), files (with sizes and CRC-32C checksums) and, for full snapshots,
// where each key group's data starts.
//
// # Storage
//
// Storage is deliberately small so that an object store can implement it:
// files are written as streams and appear only when committed, whole;
// listing is by prefix; there are no directories to create or rename.
// Local is the implementation for a directory on a local filesystem.
package snapshot
