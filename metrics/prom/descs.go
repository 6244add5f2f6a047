package prom

import "github.com/prometheus/client_golang/prometheus"

// The labels of every backend metric.
var subtaskLabels = []string{"operator", "subtask"}

var allDescs []*prometheus.Desc

// desc describes a metric pebblestate_<name> with the subtask labels and
// extra ones, and lists it for Describe.
func desc(name, help string, extra ...string) *prometheus.Desc {
	d := prometheus.NewDesc("pebblestate_"+name, help, append(append([]string(nil), subtaskLabels...), extra...), nil)
	allDescs = append(allDescs, d)
	return d
}

// jobDesc describes a metric of the job's checkpoints, with the given
// labels only.
func jobDesc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc("pebblestate_"+name, help, labels, nil)
	allDescs = append(allDescs, d)
	return d
}

// Backend metrics (backend.Metrics).
var (
	backendClosed = desc("backend_closed", "1 if the backend is closed (its Pebble and state metrics are then not exported), else 0.")

	levelFiles        = desc("pebble_level_files", "Tables in the LSM level.", "level")
	levelBytes        = desc("pebble_level_bytes", "Bytes of the tables in the LSM level.", "level")
	levelSublevels    = desc("pebble_level_sublevels", "Sublevels of L0; 1 for another non-empty level.", "level")
	diskUsage         = desc("pebble_disk_usage_bytes", "Bytes the database takes on disk.")
	readAmp           = desc("pebble_read_amplification", "Sorted runs a read may consult.")
	compactions       = desc("pebble_compactions_total", "Compactions since the backend opened.")
	compactedBytes    = desc("pebble_compacted_bytes_total", "Bytes compactions wrote.")
	compactionDebt    = desc("pebble_compaction_debt_bytes", "Estimated bytes still to compact.")
	flushes           = desc("pebble_flushes_total", "Memtable flushes.")
	flushedBytes      = desc("pebble_flushed_bytes_total", "Bytes flushes wrote.")
	ingestions        = desc("pebble_ingestions_total", "Ingestions of tables (restores).")
	writeStalls       = desc("pebble_write_stalls_total", "Times Pebble delayed writes.")
	writeStallSeconds = desc("pebble_write_stall_seconds_total", "Time writes were delayed.")
	cacheHits         = desc("pebble_block_cache_hits_total", "Block cache hits.")
	cacheMisses       = desc("pebble_block_cache_misses_total", "Block cache misses.")
	cacheBytes        = desc("pebble_block_cache_bytes", "Bytes in the block cache.")
	cacheBlocks       = desc("pebble_block_cache_blocks", "Blocks in the block cache.")
	memtableBytes     = desc("pebble_memtable_bytes", "Bytes of the memtables, flushing ones included.")
	memtables         = desc("pebble_memtables", "Memtables, flushing ones included.")
	walBytes          = desc("pebble_wal_bytes", "Live bytes of the write-ahead log (0 with the WAL off).")
	walWritten        = desc("pebble_wal_written_bytes_total", "Bytes written to the write-ahead log.")
	stateBytes        = desc("state_estimated_disk_bytes", "Estimate of the bytes a state's entries take on disk (Pebble's EstimateDiskUsage over its keys; the memtable not counted).", "state", "kind")

	ttlRemoved = desc("ttl_removed_total", "Expired entries removed or trimmed, by strategy (read, access, background).", "strategy")
	ttlScanned = desc("ttl_scanned_total", "Entries checked for expiry, by strategy (access, background).", "strategy")

	cpSnapshots     = desc("checkpoint_snapshots_total", "Synchronous parts of snapshots taken.")
	cpWritten       = desc("checkpoint_written_total", "Asynchronous parts of snapshots that succeeded.")
	cpFailed        = desc("checkpoint_failed_total", "Asynchronous parts of snapshots that failed or were cancelled.")
	cpCompleted     = desc("checkpoint_completed_total", "Checkpoints the backend was told completed.")
	cpAborted       = desc("checkpoint_aborted_total", "Checkpoints the backend was told were aborted.")
	cpSyncSeconds   = desc("checkpoint_sync_seconds_total", "Time spent in synchronous parts of snapshots.")
	cpAsyncSeconds  = desc("checkpoint_async_seconds_total", "Time spent in asynchronous parts of snapshots that succeeded.")
	cpUploadedBytes = desc("checkpoint_uploaded_bytes_total", "Bytes snapshots wrote to checkpoint storage.")
	cpLastID        = desc("checkpoint_last_id", "Checkpoint id of the last snapshot written.")
	cpLastSync      = desc("checkpoint_last_sync_seconds", "Synchronous part of the last snapshot written.")
	cpLastAsync     = desc("checkpoint_last_async_seconds", "Asynchronous part of the last snapshot written.")
	cpLastUploaded  = desc("checkpoint_last_uploaded_bytes", "Bytes the last snapshot wrote to checkpoint storage.")
	cpLastFullSize  = desc("checkpoint_last_full_size_bytes", "Full size of the last snapshot: every file its handle refers to.")

	restoreBytes      = desc("restore_bytes", "Bytes the restore that made the backend read from checkpoint storage.")
	restoreFiles      = desc("restore_files", "Files the restore that made the backend read from checkpoint storage.")
	restoreLocal      = desc("restore_local_bytes", "Bytes the restore that made the backend took from local copies (local recovery) rather than checkpoint storage.")
	restoreDownloaded = desc("restore_downloaded_bytes", "Bytes the restore that made the backend brought from checkpoint storage.")
	restoreSeconds    = desc("restore_seconds", "Duration of the restore that made the backend.")
	restoreCheckpoint = desc("restore_checkpoint_id", "Checkpoint the backend was restored from.")

	timersRegistered   = desc("timers_registered_total", "Timer registrations, duplicates included.", "timer_service")
	timersDeleted      = desc("timers_deleted_total", "Timer deletions.", "timer_service")
	timersFired        = desc("timers_fired_total", "Timers fired.", "timer_service")
	timersPending      = desc("timers_pending", "Timers stored, due or not.", "timer_service")
	timersPendingExact = desc("timers_pending_exact", "1 if pebblestate_timers_pending is exact, 0 if it may be off (see backend.TimerStats).", "timer_service")
)

// Job metrics (checkpoint.Stats through OnReport).
var (
	jobCompleted        = jobDesc("job_checkpoints_completed_total", "Checkpoints the coordinator completed.")
	jobAborted          = jobDesc("job_checkpoints_aborted_total", "Checkpoints the coordinator aborted.")
	jobLastID           = jobDesc("job_checkpoint_last_id", "Id of the last completed checkpoint.")
	jobLastDuration     = jobDesc("job_checkpoint_last_duration_seconds", "Time from trigger to the end of the last completed checkpoint.")
	jobLastCheckpointed = jobDesc("job_checkpoint_last_checkpointed_bytes", "Bytes written for the last completed checkpoint, all subtasks.")
	jobLastState        = jobDesc("job_checkpoint_last_state_bytes", "Full size of the last completed checkpoint, all subtasks.")
	jobSubSync          = jobDesc("job_checkpoint_last_sync_seconds", "Synchronous part of the subtask's snapshot in the last completed checkpoint.", subtaskLabels...)
	jobSubAsync         = jobDesc("job_checkpoint_last_async_seconds", "Asynchronous part of the subtask's snapshot in the last completed checkpoint.", subtaskLabels...)
	jobSubCheckpointed  = jobDesc("job_checkpoint_last_subtask_checkpointed_bytes", "Bytes the subtask wrote for the last completed checkpoint.", subtaskLabels...)
	jobSubState         = jobDesc("job_checkpoint_last_subtask_state_bytes", "Full size of the subtask's state in the last completed checkpoint.", subtaskLabels...)
)
