package backend

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/compaction"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/store"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/full"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
	"github.com/pebblestate/pebblestate/ttl"
)

// Defaults of Options fields left at their zero value.
const (
	DefaultMaxParallelism = 128
	DefaultBlockCacheSize = 64 << 20
	DefaultMemTableSize   = 64 << 20
)

// Options configure a backend. The zero value of every field but Dir means
// its default; EnsureDefaults fills them in and Validate checks the result.
type Options struct {
	// Dir is the directory of the backend's Pebble database. Required. It is
	// created if missing; reopening it brings back every state.
	Dir string

	// MaxParallelism is the number of key groups, in [1, 32768].
	// Default: 128. It is fixed when the directory is created.
	MaxParallelism int

	// KeyGroups is the range of key groups this instance owns. Keys of other
	// key groups are rejected. Default: all of [0, MaxParallelism). It is
	// fixed when the directory is created; restoring from a checkpoint is
	// the way to change it.
	KeyGroups KeyGroupRange

	// KeyGroupAssigner decides which key group a key belongs to: Murmur3
	// (Flink's, the default) or KafkaMurmur2 (a key's key group is the
	// partition a Kafka producer sends it to; set MaxParallelism to the
	// topic's number of partitions). It is recorded when the directory is
	// created and in every checkpoint handle: reopening with another one,
	// or restoring a checkpoint taken with another one, is
	// ErrIncompatibleBackend.
	KeyGroupAssigner KeyGroupAssigner

	// BlockCacheSize is the size in bytes of Pebble's block cache.
	// Default: 64 MiB (Pebble's own default is only 8 MiB).
	BlockCacheSize int64

	// MemTableSize is the size in bytes of each Pebble memtable.
	// Default: 64 MiB.
	MemTableSize uint64

	// EnableWAL turns Pebble's write-ahead log on. Default: off, as in
	// Flink: durability comes from checkpoints, and writes never wait for
	// the log. With the WAL off, writes since the last flush are lost if the
	// process dies; Close and Flush write them to disk. With it on, writes
	// are logged without an fsync, and Pebble writes its log in 32 KiB
	// blocks behind the writes, so a process crash still loses the newest
	// writes, those in blocks not yet written (TestCrashWAL measures up to
	// hundreds of small writes); it narrows the window, it does not close it.
	EnableWAL bool

	// Clock supplies processing time for state TTL. Default: ttl.SystemClock.
	Clock ttl.Clock

	// TTLSweepInterval is how often background TTL cleanup scans every TTL
	// state in full, besides the spans flushes and compactions report.
	// Default: one hour. Negative turns the periodic sweep off.
	TTLSweepInterval time.Duration

	// TTLScanRate caps the work of background TTL cleanup per second, in
	// entries checked (removing an expired entry counts as 100 checks, its
	// cost with the compaction of its tombstone), so the task keeps its
	// speed: at the default, at most 10,000 removals or 1,000,000 checks a
	// second. Default: 1,000,000.
	// CleanupExpired is not capped.
	TTLScanRate int

	// TTLCleanupShare caps the share of one core's time background TTL
	// cleanup spends working, in wall time; it sleeps the rest. Where
	// entries are dearer to scan than TTLScanRate assumes (a memtable full
	// of the task's writes makes each step several times dearer), this is
	// the cap that holds. In (0, 1]; 1 lifts it. Default: 0.25.
	// CleanupExpired is not capped.
	TTLCleanupShare float64

	// Operator names the operator this instance belongs to. It goes into
	// snapshot handles, and restore picks the handles of this operator.
	// Default: "default".
	Operator string

	// SnapshotCompression compresses the key-group blocks of full
	// snapshots: "none", "snappy", "zstd" or "s2". Default: "snappy".
	SnapshotCompression string

	// IncrementalCheckpoints makes Snapshot and Checkpoint take incremental
	// snapshots: a native Pebble checkpoint of which only the SST files the
	// last completed checkpoint did not have are uploaded. Default: off
	// (full snapshots), as in Flink.
	IncrementalCheckpoints bool

	// UploadWorkers is the number of parallel uploads of an incremental
	// snapshot. Default: 4.
	UploadWorkers int

	// RetainedCheckpoints is how many completed checkpoints Checkpoint
	// keeps. Default: 1, as in Flink. It applies only to Checkpoint, the
	// one-call checkpoint of a backend alone: a job whose checkpoints a
	// checkpoint.Coordinator takes sets retention there, and only there.
	RetainedCheckpoints int

	// RestoreMode says whether a restored backend takes ownership of the
	// files of the checkpoint it was restored from, as Flink's restore
	// modes do. Default: NoClaim. Only Restore (and RestoreLatest,
	// RestoreFromPath) acts on it.
	RestoreMode RestoreMode

	// LocalRecovery says whether the backend keeps on local disk a copy
	// of its last completed incremental checkpoint (hard links to files
	// it has anyway), and whether Restore takes an incremental handle's
	// files from such copies, after checking each one's size and CRC-32C
	// against the handle, before downloading what is missing or damaged,
	// as Flink's local recovery does (see package
	// snapshot/localrecovery). Default: LocalRecoveryAuto, on for
	// checkpoint storage other than snapshot.Local. Full snapshots have
	// no local copy.
	LocalRecovery LocalRecovery

	// LocalRecoveryDir is where local copies are kept and looked for.
	// Backends on one machine should share it: a restore finds the copies
	// of every instance kept there, whatever its key groups. It must not be
	// Dir or inside it (a restore needs Dir empty). Default: the directory
	// "local-recovery" beside Dir.
	LocalRecoveryDir string

	// Logger receives Pebble's messages (informational ones at debug
	// level), its background errors, background TTL cleanup's errors, and
	// a line for each checkpoint RestoreLatest or RestoreFromPath passes
	// over. A repeated message is logged once, then at most once every 10
	// seconds with the number left out (a flush failing on a full disk is
	// retried many times a second). Default: slog.Default(), not a
	// discarding logger: what is logged at warning and error level
	// (a failed compaction or flush, corruption found in the background,
	// a checkpoint passed over) is what an operator must see, and no call
	// of the task returns it; Pebble's routine messages are at debug
	// level, which the default handler leaves out. An application routes
	// the messages with slog.SetDefault or by setting Logger; the library
	// never uses package log.
	Logger *slog.Logger

	// Pebble, if set, is called with the Pebble options the backend built,
	// just before opening, to change advanced settings; tests use it to
	// inject filesystem faults (replace FS with a vfs.FS wrapping the one
	// it holds, such as Pebble's vfs/errorfs). It must not replace the
	// Merger, Comparer, FormatMajorVersion or Logger; to add an
	// EventListener, tee it with the backend's (pebble.TeeEventListener),
	// which background TTL cleanup and Flush's error reporting need.
	Pebble func(*pebble.Options)

	// Progress and metrics (see Backend.Metrics for the metrics).

	// RestoreProgress, if set, is called as Restore, RestoreLatest or
	// RestoreFromPath brings in the checkpoint's files: the files and
	// bytes done of the totals (every file of the incremental handles
	// the restore reads, and the owned key groups' blocks of the full
	// handles' data files). It is called from the goroutines doing the
	// work, one call at a time, once when the totals are known, then at
	// most every snapshot.ProgressInterval, and once at the end with
	// every file and byte done; done never decreases. It must not block
	// for long: the restore waits for it. Default: none.
	RestoreProgress func(snapshot.Progress)

	// CheckpointProgress, if set, is called as a snapshot's asynchronous
	// part (AsyncSnapshot.Run, which Checkpoint and a
	// checkpoint.Coordinator call) writes to checkpoint storage, with the
	// checkpoint id: for an incremental snapshot the files and bytes
	// uploaded of those to upload, for a full one the bytes written of
	// its one file (whose size, BytesTotal, is known only at the last
	// call). It is called as RestoreProgress is, from the goroutines
	// running Run. Default: none.
	CheckpointProgress func(checkpointID int64, p snapshot.Progress)
}

// RestoreMode says who owns the files of the checkpoint a backend is
// restored from. Only incremental checkpoints reference files of earlier
// checkpoints, so it matters for them; a restore from full handles is the
// same in either mode.
type RestoreMode int

const (
	// NoClaim, the default, leaves the restored checkpoint to whoever
	// made it, as Flink's NO_CLAIM does: the restored backend never
	// references its files, so its first incremental checkpoint uploads
	// every SST it needs, into whichever root, and afterwards the restored
	// checkpoint may be deleted (by its owner's retention, or by hand)
	// without harming the new job. The backend never deletes it either:
	// the retention Checkpoint applies to the root the restored checkpoint
	// lives in keeps it and its files (retention.RetainPinned), outside the
	// count of RetainedCheckpoints. It suits starting a job from another
	// job's checkpoint; a job recovering from its own checkpoints after a
	// failure, as Flink's failover does, should restore with Claim, or
	// every recovery's first checkpoint uploads the whole state.
	NoClaim RestoreMode = iota
	// Claim takes ownership of the restored checkpoint, as Flink's CLAIM
	// does: a restore of one incremental handle at exactly its key groups
	// keeps its upload history, so the first checkpoint into the root the
	// handle came from reuses its SSTs instead of uploading them again,
	// and retention there deletes them once no retained checkpoint
	// references them. Into another root, nothing is reused. One job should
	// claim a checkpoint: two that do and checkpoint into its root lose no
	// committed checkpoint (a commit checks that its files exist), but one's
	// retention may delete files the other builds on, and fail its
	// checkpoints.
	Claim
)

// String returns "NoClaim" or "Claim".
func (m RestoreMode) String() string {
	switch m {
	case NoClaim:
		return "NoClaim"
	case Claim:
		return "Claim"
	}
	return fmt.Sprintf("RestoreMode(%d)", int(m))
}

// EnsureDefaults fills every zero field but Dir with its default.
func (o *Options) EnsureDefaults() {
	if o.MaxParallelism == 0 {
		o.MaxParallelism = DefaultMaxParallelism
	}
	if o.KeyGroups == (KeyGroupRange{}) {
		o.KeyGroups = KeyGroupRange{Start: 0, End: o.MaxParallelism}
	}
	if o.BlockCacheSize == 0 {
		o.BlockCacheSize = DefaultBlockCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.Clock == nil {
		o.Clock = ttl.SystemClock{}
	}
	if o.TTLSweepInterval == 0 {
		o.TTLSweepInterval = compaction.DefaultSweepInterval
	}
	if o.TTLScanRate == 0 {
		o.TTLScanRate = compaction.DefaultScanRate
	}
	if o.TTLCleanupShare == 0 {
		o.TTLCleanupShare = compaction.DefaultShare
	}
	if o.Operator == "" {
		o.Operator = "default"
	}
	if o.SnapshotCompression == "" {
		o.SnapshotCompression = "snappy"
	}
	if o.UploadWorkers == 0 {
		o.UploadWorkers = incremental.DefaultWorkers
	}
	if o.RetainedCheckpoints == 0 {
		o.RetainedCheckpoints = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LocalRecoveryDir == "" && o.Dir != "" {
		o.LocalRecoveryDir = defaultLocalRecoveryDir(o.Dir)
	}
}

// Validate reports every problem with the options, joined. Call it after
// EnsureDefaults; Open does both.
func (o *Options) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.Dir == "" {
		add("Dir is empty")
	}
	if o.MaxParallelism < 1 || o.MaxParallelism > keygroup.MaxParallelismLimit {
		add("MaxParallelism %d outside [1, %d]", o.MaxParallelism, keygroup.MaxParallelismLimit)
	} else if err := o.KeyGroups.Validate(o.MaxParallelism); err != nil {
		add("KeyGroups: %v", err)
	}
	if !o.KeyGroupAssigner.Valid() {
		add("KeyGroupAssigner %v is neither Murmur3 nor KafkaMurmur2", o.KeyGroupAssigner)
	}
	if o.BlockCacheSize < 0 {
		add("BlockCacheSize %d is negative", o.BlockCacheSize)
	}
	if o.MemTableSize < 1<<20 {
		add("MemTableSize %d is below 1 MiB", o.MemTableSize)
	}
	if o.Clock == nil {
		add("Clock is nil")
	}
	if _, err := full.ParseCompression(o.SnapshotCompression); err != nil {
		add("SnapshotCompression: %v", err)
	}
	if o.UploadWorkers < 0 {
		add("UploadWorkers %d is negative", o.UploadWorkers)
	}
	if o.RetainedCheckpoints < 0 {
		add("RetainedCheckpoints %d is negative", o.RetainedCheckpoints)
	}
	if o.RestoreMode != NoClaim && o.RestoreMode != Claim {
		add("RestoreMode %v is neither NoClaim nor Claim", o.RestoreMode)
	}
	if o.LocalRecovery < LocalRecoveryAuto || o.LocalRecovery > LocalRecoveryOff {
		add("LocalRecovery %v is not Auto, On or Off", o.LocalRecovery)
	} else if o.LocalRecovery != LocalRecoveryOff && o.Dir != "" && within(o.LocalRecoveryDir, o.Dir) {
		add("LocalRecoveryDir %s is Dir or inside it", o.LocalRecoveryDir)
	}
	if o.TTLScanRate < 0 {
		add("TTLScanRate %d is negative", o.TTLScanRate)
	}
	if s := o.TTLCleanupShare; s < 0 || s > 1 || s != s {
		add("TTLCleanupShare %v is not in (0, 1]", s)
	}
	return errors.Join(errs...)
}

// PebbleOptions returns the Pebble options the backend opens its database
// with (after EnsureDefaults), using cache as the block cache, but without
// the event listener background TTL cleanup installs. Baselines and tools
// that open a backend's directory with Pebble directly use it, so they
// cannot drift from the backend. The caller owns the cache reference.
func (o Options) PebbleOptions(cache *pebble.Cache) *pebble.Options {
	o.EnsureDefaults()
	return store.PebbleOptions(o.storeOptions(pebble.EventListener{}), cache, pebble.EventListener{})
}

// storeOptions returns the options of the backend's store, with listener
// as Pebble's event listener. The caller fills in the backend record.
func (o *Options) storeOptions(listener pebble.EventListener) store.Options {
	return store.Options{
		Dir:            o.Dir,
		BlockCacheSize: o.BlockCacheSize,
		MemTableSize:   o.MemTableSize,
		EnableWAL:      o.EnableWAL,
		Logger:         o.Logger,
		Pebble:         o.Pebble,
		EventListener:  listener,
		Clock:          o.Clock,
	}
}
