package store

import (
	"log/slog"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// ScratchDir is the subdirectory of the database directory that holds
// native checkpoints while they are uploaded. Pebble ignores it, the store
// never fsyncs what is in it, and Open removes what a dead process left
// there.
const ScratchDir = "checkpoints"

// MaxManifestSize is the size past which Pebble starts a new MANIFEST
// (Pebble's MaxManifestFileSize, whose own default is 128 MiB). Every
// native checkpoint copies the whole current MANIFEST in the synchronous
// part of an incremental snapshot, and every incremental checkpoint
// uploads it again as a private file. The MANIFEST grows with every flush
// and compaction (by 0.5 to 1.5 KiB a checkpoint in
// BenchmarkIncrementalSnapshotSync), so at Pebble's default a
// long-running job would come to copy and upload tens of MiB per
// checkpoint. Pebble starts a new MANIFEST only once the edits since the
// last start name more tables than the database holds, so the MANIFEST
// of a database of many tables may exceed this by about twice its table
// list.
const MaxManifestSize = 1 << 20

// L0StopWritesThreshold is the number of L0 sublevels at which Pebble
// stops every write, and every flush, until compactions bring L0 down
// (Pebble's own default is 12; RocksDB's level0_stop_writes_trigger, which
// Flink's RocksDB backend keeps, is 36). Each flush of updates spread over
// the key space adds a sublevel, and an incremental snapshot flushes at
// every checkpoint: under random updates with frequent checkpoints, twelve
// flushes can arrive faster than an L0 compaction, which rewrites the
// whole of the level below, ends. At 12, BenchmarkIncrementalSnapshotSync
// past 30 checkpoints spent 200-600 ms of some synchronous parts waiting
// in that stall (77 ms a checkpoint on average over 60, against 28 ms at
// 36). A deeper L0 costs point reads a filter probe per sublevel, only
// while compactions are behind.
const L0StopWritesThreshold = 36

// Options configure a Store. The caller (the backend) fills in defaults;
// the store adds none but those Pebble's own EnsureDefaults adds.
type Options struct {
	// Dir is the database directory. It must exist.
	Dir string
	// BlockCacheSize is the size in bytes of Pebble's block cache.
	BlockCacheSize int64
	// MemTableSize is the size in bytes of each memtable.
	MemTableSize uint64
	// EnableWAL turns Pebble's write-ahead log on.
	EnableWAL bool
	// Logger receives Pebble's messages (informational ones at debug
	// level) and background errors, rate-limited (see LogInterval). Nil
	// means slog.Default().
	Logger *slog.Logger
	// Pebble, if set, changes the Pebble options just before opening.
	Pebble func(*pebble.Options)
	// EventListener is installed in the Pebble options (background TTL
	// cleanup's listener).
	EventListener pebble.EventListener

	// Record is the backend record the directory must hold: its max
	// parallelism, key groups, key codec and key-group assigner. A new
	// directory gets it, with a new instance id; InstanceID and
	// FormatVersion here are ignored.
	Record meta.Backend
	// Clock stamps values when a TTL migration switches TTL on. Required.
	Clock ttl.Clock

	// BeforeCleanupLock, if set, is called just before each hold of the
	// write lock by cleanup (WriteGen and Confirm). Tests use it to write
	// between a scan and its confirmation.
	BeforeCleanupLock func()
}

// PebbleOptions returns the Pebble options a store with options o opens
// its database with, using cache as the block cache and listener as the
// event listener, teed with the store's own: it logs through o.Logger,
// rate-limited, and keeps Pebble from stopping the process over
// corruption found in the background. The caller owns the cache
// reference.
func PebbleOptions(o Options, cache *pebble.Cache, listener pebble.EventListener) *pebble.Options {
	po, _ := pebbleOptions(o, cache, listener)
	return po
}

// pebbleOptions is PebbleOptions, also returning the monitor the options
// report to.
func pebbleOptions(o Options, cache *pebble.Cache, listener pebble.EventListener) (*pebble.Options, *monitor) {
	m := newMonitor(o.Dir, o.Logger)
	el := m.listener(listener)
	po := &pebble.Options{
		Cache:              cache,
		MemTableSize:       o.MemTableSize,
		DisableWAL:         !o.EnableWAL,
		FormatMajorVersion: pebble.FormatNewest,
		Merger:             listfmt.Merger,
		Logger:             logger{m},
		EventListener:      &el,
	}
	po.MaxManifestFileSize = MaxManifestSize
	po.L0StopWritesThreshold = L0StopWritesThreshold
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	if o.Pebble != nil {
		o.Pebble(po)
	}
	if po.FS == nil {
		po.FS = vfs.Default
	}
	po.FS = scratchFS{FS: po.FS, dir: filepath.Join(filepath.Clean(o.Dir), ScratchDir), pace: &pace{}}
	po.EnsureDefaults()
	return po, m
}
