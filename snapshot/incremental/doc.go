// Package incremental owns incremental checkpoints of a backend instance.
//
// # Basics
//
// Run turns a native Pebble checkpoint (a directory of hard-linked SSTs and
// copied private files) into an incremental snapshot: it uploads to
// shared/ only the SSTs the last completed checkpoint did not already
// upload, re-uploads the small private files (MANIFEST, OPTIONS, WAL,
// markers) into the checkpoint's directory, and lists reused SSTs as
// references to the earlier uploads. Uploads run in parallel and are
// checksummed with CRC-32C.
//
// History is an instance's record of its uploads: which checkpoint's files
// the next one reuses (the last completed one's, as in Flink, and only in
// the root they were uploaded to), promotion when a checkpoint completes
// (or is found committed in storage, when the notification was missed),
// and forgetting when one is aborted.
//
// The shared-file registry: each upload in shared/ is named by writer,
// creating checkpoint and local name (snapshot.SharedName, part of the
// checkpoint format, which Commit also reads back with
// snapshot.SharedCreator). The only record of who references a shared file is the
// metadata of the completed checkpoints: SharedRefs counts the references
// from it, CollectShared deletes the files nothing retained references
// (package snapshot/retention calls it), and Present drops from the
// reusable uploads those another writer's retention deleted.
//
// # Caveats
//
// SSTs are immutable and a file number is never reused within one database
// lineage, so a local SST name identifies its content for as long as the
// instance lives; across instances, forks and reopenings the shared name
// carries the writer id (see snapshot.SharedName).
//
// Garbage collection never deletes a file a checkpoint newer than the
// newest completed one uploaded (it may be in flight), nor a file
// snapshot.SharedName did not name. Retention, which discards checkpoints and then
// collects their shared files, is package snapshot/retention: it imports
// this package and snapshot, which imports neither.
package incremental
