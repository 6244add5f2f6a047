package snapshot

import (
	"errors"
	"io/fs"
)

// The errors of this package. Each is returned wrapped, with the storage
// name or the checkpoint it concerns; test for them with errors.Is. Their
// messages carry no package prefix: the wrapping text says where.
var (
	// ErrNotExist is returned for a file that is not in storage. It is
	// fs.ErrNotExist, so that the operating system's errors match it.
	ErrNotExist = fs.ErrNotExist

	// ErrExist is returned when a file, or a checkpoint, already exists:
	// Storage never replaces a committed file, and of two commits of one
	// checkpoint id only the first succeeds. It is fs.ErrExist.
	ErrExist = fs.ErrExist

	// ErrCorrupt is returned for metadata or data that fails to verify:
	// a bad checksum, a truncated file, an unsafe file name, or handles
	// that break the format's invariants (then ErrIncomplete or
	// ErrInconsistent is wrapped too).
	ErrCorrupt = errors.New("corrupt checkpoint")

	// ErrUnknownVersion is returned, together with ErrCorrupt, for
	// metadata of a format version this build does not read (most likely
	// written by a newer build). Retention (package snapshot/retention)
	// never deletes such a checkpoint.
	ErrUnknownVersion = errors.New("unknown metadata version")

	// ErrIncomplete is returned when handles do not cover the key groups
	// they must: at commit, every key group of each operator, exactly
	// once; at restore (CheckCovers), the key groups asked for. A
	// checkpoint with no handle for the operator asked for is incomplete
	// too.
	ErrIncomplete = errors.New("incomplete checkpoint")

	// ErrInconsistent is returned when handles contradict each other or
	// their checkpoint: two handles hold the same key group, handles of
	// one operator disagree on its max parallelism, or a handle belongs
	// to another checkpoint id.
	ErrInconsistent = errors.New("inconsistent checkpoint")

	// ErrSubsumed is returned by Commit for a checkpoint older than the
	// newest completed one.
	ErrSubsumed = errors.New("checkpoint subsumed")

	// ErrNoCheckpoint is returned by Latest when no checkpoint verifies.
	ErrNoCheckpoint = errors.New("no completed checkpoint")

	// ErrNonRestoredState is returned by CheckClaimed when a checkpoint
	// holds state of an operator the job does not run, and dropping it was
	// not allowed.
	ErrNonRestoredState = errors.New("state no operator claims")

	// ErrUnreadable is returned by retention.Retain and retention.Recover
	// when they kept a checkpoint whose metadata exists but does not
	// verify (see retention.Report):
	// the rest of their work is done, and the error lists each one.
	ErrUnreadable = errors.New("unreadable checkpoint kept")
)
