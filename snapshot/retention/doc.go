// Package retention decides what a checkpoint root keeps and deletes the
// rest: completed checkpoints beyond the newest few, the debris of
// checkpoints that never completed (their directories and temporary
// files), and the shared files no retained checkpoint references.
//
// # Basics
//
// Complete commits a checkpoint and applies retention: the one call a
// framework makes once every instance's handle is in. Retain keeps the
// newest keep completed checkpoints and collects the debris of older ones
// that never completed; checkpoints newer than the newest completed one
// may be in flight and are left alone, with their uploads. RetainPinned
// also keeps given checkpoints whatever their age: the one a backend was
// restored from without claiming it (Flink's NO_CLAIM), which it must not
// delete. Recover cleans a root after a crash, when nothing is in flight.
// The ...WithReport forms say what was done (Report).
//
// Checkpoint directories are deleted with snapshot.Discard; shared files
// by the shared-file registry in package snapshot/incremental
// (CollectShared), which counts references from the retained checkpoints'
// metadata, their only record. This package sits above both, so that
// imports flow one way: snapshot/incremental imports snapshot, and
// retention imports them.
//
// # Caveats
//
// Nothing unreadable is deleted: a checkpoint whose metadata exists but
// does not verify (damaged, or of a format version this build does not
// read) is kept with its directory and reported (Report.Unreadable;
// Retain, Recover and Complete return snapshot.ErrUnreadable once the
// rest is done), and while one exists nothing in shared/ is deleted, since
// what it references cannot be known. checkpoint.Coordinator and
// backend's Checkpoint run RetainPinned after each commit they make.
package retention
