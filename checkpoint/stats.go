package checkpoint

import (
	"time"

	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// Stats reports one checkpoint, completed or aborted: what a metrics
// exporter reads. Options.OnReport receives every checkpoint's;
// Coordinator.LastCompleted returns the newest completed one's.
type Stats struct {
	// ID is the checkpoint's id.
	ID int64
	// Triggered is when Trigger handed out the id.
	Triggered time.Time
	// Duration is the time from Trigger to the end: the commit,
	// notifications and retention done, or the abort's cleanup.
	Duration time.Duration
	// Completed reports whether the checkpoint was committed.
	Completed bool
	// Err is nil for a checkpoint completed in full. For an aborted one it
	// wraps ErrAborted and the cause. For a completed one it says what
	// went wrong after the commit (a notification or retention failed):
	// the checkpoint exists all the same.
	Err error
	// Subtasks are the subtasks that reported, in the order of
	// Options.Operators.
	Subtasks []SubtaskStats
	// CheckpointedSize and StateSize are the sums over Subtasks.
	CheckpointedSize, StateSize int64
	// Retention is what retention did after the commit, or nil.
	Retention *retention.Report
}

// SubtaskStats reports one subtask's part of a checkpoint.
type SubtaskStats struct {
	Subtask Subtask
	// SyncDuration is the synchronous part's duration, as the caller
	// reported it in SubtaskState.
	SyncDuration time.Duration
	// AsyncDuration is how long the asynchronous part ran (Run), zero if
	// it did not run to the end.
	AsyncDuration time.Duration
	// CheckpointedSize is the bytes written for this checkpoint
	// (snapshot.Handle.CheckpointedSize): for an incremental snapshot, the
	// new uploads only; plus the operator state file, if any.
	CheckpointedSize int64
	// StateSize is the full size of the state the handle refers to
	// (snapshot.Handle.StateSize), plus the operator state file, if any.
	StateSize int64
}
