// Package snapshot is checkpoint storage: where checkpoints live, what a
// checkpoint's metadata says, and how completed checkpoints are found and
// discarded, and the names of shared files (SharedName). Retention (which
// checkpoints a root keeps) is package snapshot/retention; the reference
// counting and collection of shared files, snapshot/incremental.
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
// where each key group's data starts; and one OperatorStateRef per operator
// subtask with operator state (package opstate): its file in chk-<id>/ and
// its subtask, every subtask of such an operator exactly once.
//
// # Invariants
//
// Commit, DecodeMetadata and Verify enforce the same rules
// (Checkpoint.Validate): per operator, the handles agree on the max
// parallelism and hold every key group exactly once; every handle belongs
// to its checkpoint's id; and every name that becomes a path is safe: a
// clean relative name (CheckName) under the checkpoint's own chk-<id>/ or
// under shared/, and local names plain file names. A restore checks that
// the handles cover the key groups it restores with Covers. A job that
// starts from a checkpoint checks, once, that it runs every operator with
// state in it, with CheckClaimed (ErrNonRestoredState unless dropping that
// state is allowed, as Flink's allowNonRestoredState).
//
// The commit is an exclusive create: of two commits of one id exactly one
// succeeds, the other gets ErrExist, and a committed file is never
// replaced. Nothing unreadable is deleted: retention keeps a checkpoint
// whose metadata exists but does not verify, and every shared file, and
// reports it (ErrUnreadable); LatestWithReport says which newer
// checkpoints it passed over.
//
// # Storage
//
// Storage is deliberately small so that an object store can implement it:
// files are written as streams and appear only when committed, whole and
// exclusively; listing is by prefix; there are no directories to create
// or rename. Local is the implementation for a directory on a local
// filesystem; it never reads, creates or deletes anything outside it.
package snapshot
