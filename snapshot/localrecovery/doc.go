// Package localrecovery keeps, on the machine that took them, local
// copies of a backend's incremental checkpoints, so that a restore on the
// same machine reads its files from the local disk instead of downloading
// them from remote checkpoint storage, as Flink's local recovery does.
//
// # Layout
//
// A local-recovery directory holds one directory per backend instance,
// named by its instance id, and in it one directory per checkpoint, named
// as in checkpoint storage:
//
//	<root>/<instance id>/chk-<id>/000012.sst
//	                             /MANIFEST-000007
//	                             /OPTIONS-000009
//	                             ...
//
// A checkpoint's directory holds hard links to the files of the native
// Pebble checkpoint its snapshot uploaded, under their names in that
// checkpoint (a shared file's snapshot.SharedFile.LocalName, a private
// file's base name): the database's own files, so a copy costs no data
// written, and disk space only once the database's compactions delete
// them. Several backends may share one root: instance ids are random, and
// a copy is built under a temporary name (chk-<id>.tmp-<random>) and
// renamed into place, so it appears whole or not at all.
//
// # Who writes and who reads
//
// The backend keeps a copy at the end of each incremental snapshot it
// uploads (Keep), removes it if the checkpoint is aborted (Remove), and
// when a checkpoint completes drops the copies of older checkpoints of
// its own instance and of the instances it was restored from (Drop): what
// stays is the last completed checkpoint's copy, and those of checkpoints
// still in flight. A restore looks up each file of an incremental handle
// (Path) and uses the copy only if its size and CRC-32C match the handle;
// anything missing or damaged is downloaded. Nothing here is trusted:
// a copy is a cache of checkpoint storage, never a source of truth, so
// it needs no fsync, and a crash that loses part of it costs downloads,
// never state.
package localrecovery
