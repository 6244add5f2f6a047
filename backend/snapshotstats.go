package backend

import (
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
)

// CheckpointStats describe one snapshot of a backend: what a checkpoint
// reports per subtask.
type CheckpointStats struct {
	// CheckpointID is the checkpoint the snapshot was taken for.
	CheckpointID int64
	// Incremental says whether it was an incremental snapshot.
	Incremental bool
	// SyncDuration is the synchronous part's duration (Snapshot), on the
	// task goroutine.
	SyncDuration time.Duration
	// AsyncDuration is how long Run took.
	AsyncDuration time.Duration
	// UploadedFiles and UploadedBytes are the files and bytes this
	// snapshot wrote to checkpoint storage (snapshot.Handle.CheckpointedSize):
	// for an incremental one, only the files the previous checkpoint did
	// not have.
	UploadedFiles int
	UploadedBytes int64
	// FullSizeBytes is the size of every file the handle refers to
	// (snapshot.Handle.StateSize): the checkpoint's full size for this
	// backend.
	FullSizeBytes int64
}

// CheckpointMetrics count a backend's snapshots since it was opened or
// restored.
type CheckpointMetrics struct {
	// SnapshotsTotal counts synchronous parts taken (Snapshot, and
	// Checkpoint's).
	SnapshotsTotal uint64
	// WrittenTotal counts asynchronous parts that succeeded, FailedTotal
	// those that failed or were cancelled.
	WrittenTotal, FailedTotal uint64
	// CompletedTotal counts checkpoints this backend was told completed
	// (NotifyCheckpointComplete with a newer id; Checkpoint tells it
	// itself), AbortedTotal those it was told were aborted.
	CompletedTotal, AbortedTotal uint64
	// SyncTimeTotal and AsyncTimeTotal add up the durations of the
	// synchronous parts and of the asynchronous parts that succeeded.
	SyncTimeTotal, AsyncTimeTotal time.Duration
	// UploadedBytesTotal adds up the UploadedBytes of the asynchronous
	// parts that succeeded.
	UploadedBytesTotal int64
	// Last is the last snapshot whose asynchronous part succeeded, or nil.
	Last *CheckpointStats
	// LastCompletedID is the newest checkpoint id this backend was told
	// completed, or -1.
	LastCompletedID int64
}

// RestoreStats describe the restore that made a backend.
type RestoreStats struct {
	// CheckpointID is the checkpoint restored from, or -1 for a restore
	// from no handles.
	CheckpointID int64
	// Handles is the number of handles the restore read (those meeting
	// the backend's key groups).
	Handles int
	// Files and Bytes are what the restore brought in from checkpoint
	// storage: every file of an incremental handle, and the key-group
	// blocks of a full handle's data file that the backend owns.
	Files int
	Bytes int64
	// LocalFiles and LocalBytes are the part of Files and Bytes taken
	// from local copies (Options.LocalRecovery), checked against the
	// handles, rather than from checkpoint storage; DownloadedBytes is
	// the rest of Bytes, brought from checkpoint storage.
	LocalFiles                  int
	LocalBytes, DownloadedBytes int64
	// IngestedBytes is the bytes of the tables built and ingested (a
	// restore that opens an incremental handle's database directly
	// ingests nothing for it).
	IngestedBytes int64
	// Entries counts the entries read and written into new tables;
	// Rewritten those of them read from incremental handles (see
	// package restore).
	Entries, Rewritten int64
	// Duration is how long the restore took.
	Duration time.Duration
}

// checkpointCounters are CheckpointMetrics in the making, under the
// snapshotOwner's mutex.
type checkpointCounters struct {
	m CheckpointMetrics
}

// metrics returns the checkpoint counters.
func (o *snapshotOwner) metrics() CheckpointMetrics {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.counters.m
	if m.Last != nil {
		last := *m.Last
		m.Last = &last
	}
	return m
}

// tookSnapshot counts a synchronous part.
func (o *snapshotOwner) tookSnapshot(d time.Duration) {
	o.mu.Lock()
	o.counters.m.SnapshotsTotal++
	o.counters.m.SyncTimeTotal += d
	o.mu.Unlock()
}

// ranSnapshot counts an asynchronous part that ended, successfully if s
// is not nil.
func (o *snapshotOwner) ranSnapshot(s *CheckpointStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := &o.counters.m
	if s == nil {
		c.FailedTotal++
		return
	}
	c.WrittenTotal++
	c.AsyncTimeTotal += s.AsyncDuration
	c.UploadedBytesTotal += s.UploadedBytes
	last := *s
	c.Last = &last
}

// notified counts a completion (under o.mu).
func (o *snapshotOwner) notifiedLocked(id int64, completed bool) {
	c := &o.counters.m
	if !completed {
		c.AbortedTotal++
		return
	}
	if id > c.LastCompletedID {
		c.CompletedTotal++
		c.LastCompletedID = id
	}
}

// snapshotStats returns the stats of a handle written by Run.
func snapshotStats(h snapshot.Handle, sync, async time.Duration, files int) *CheckpointStats {
	return &CheckpointStats{
		CheckpointID:  h.CheckpointID,
		Incremental:   h.Kind == snapshot.KindIncremental,
		SyncDuration:  sync,
		AsyncDuration: async,
		UploadedFiles: files,
		UploadedBytes: h.CheckpointedSize,
		FullSizeBytes: h.StateSize,
	}
}
