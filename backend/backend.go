package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/pebblestate/pebblestate/compaction"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/internal/store"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// Backend is a keyed-state backend for one parallel instance of an
// operator: one Pebble database holding every state of the key groups the
// instance owns. K is the type of the operator's keys.
//
// # Concurrency
//
// A Backend and its states are driven by one goroutine at a time, like a
// task thread in Flink: SetCurrentKey, state access and registration must
// not run concurrently with each other. The current key is shared by every
// state of the backend. Background work (snapshots, TTL cleanup) runs beside
// that goroutine on its own synchronization.
type Backend[K any] struct {
	opts     Options
	keyCodec Codec[K]
	keyFixed int // fixed size of keyCodec, or -1
	kgWidth  int // bytes of the key-group prefix

	// st is the one path to the database: every read and write of state
	// data, the write lock, write tracking and the stored metadata.
	st *store.Store

	// closed is set by Close and read from any goroutine. lifecycle is held
	// shared by CleanupExpired and Compact and exclusively by Close, which
	// first cancels closing so that they stop early.
	closed    atomic.Bool
	lifecycle sync.RWMutex
	closing   context.Context // cancelled when Close begins
	stopAll   context.CancelFunc

	// The current key: its value, key group, and encoded form
	// [key group][key component], which every state's key starts with
	// after its state id.
	cur struct {
		set     bool
		key     K
		kg      int
		enc     []byte
		scratch []byte
	}

	// Registered states, in this process, by name; their stored records
	// are the store's.
	states map[string]registered

	// TTL cleanup.
	filter          *compaction.Filter // background cleanup
	ttlTargets      []ttl.Target       // states background cleanup covers
	snapshotTargets []ttl.Target       // states full snapshots filter
	onKey           []cleaner          // states with access cleanup on every key
	ttlMetrics      ttlCounters

	snaps *snapshotOwner // snapshots in flight and their files

	// restoredFrom is the checkpoint a NoClaim restore came from: retention
	// in its root keeps it (see NoClaim). Nil for Open and Claim.
	restoredFrom *restoredCheckpoint

	// What Metrics reads from any goroutine: the stats of the restore
	// that made the backend (set before Restore returns, never changed
	// after), the stored state records, the timer services' counters.
	restored  *RestoreStats
	stateList atomic.Pointer[[]meta.State]
	timerReg  timerRegistry
	sizeCache stateSizeCache
}

// restoredCheckpoint names a checkpoint a backend was restored from.
type restoredCheckpoint struct {
	st snapshot.Storage
	id int64
}

type registered struct {
	meta   meta.State
	ttl    ttl.Config
	handle any
}

// Open opens the backend in opts.Dir, creating it if needed. keyCodec
// encodes the operator's keys; its name is recorded and must match on every
// later open. Reopening a directory brings back every state, which is found
// again by registering it under the same name. A directory a restore did
// not finish is refused with ErrUnfinishedRestore.
func Open[K any](keyCodec Codec[K], opts Options) (*Backend[K], error) {
	return open(keyCodec, opts, false)
}

// open is Open; restore opens the database it builds, which holds the
// marker of an unfinished restore until it is complete.
func open[K any](keyCodec Codec[K], opts Options, restoring bool) (*Backend[K], error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if !restoring {
		if err := checkRestored(opts.Dir); err != nil {
			return nil, err
		}
	}
	if keyCodec == nil || keyCodec.Name() == "" {
		return nil, fmt.Errorf("%w: key codec is nil or unnamed", ErrInvalidArgument)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("backend: create %s: %w", opts.Dir, err)
	}
	b := &Backend[K]{
		opts:     opts,
		keyCodec: keyCodec,
		keyFixed: fixedSize(keyCodec),
		kgWidth:  keys.KeyGroupBytes(opts.MaxParallelism),
		states:   make(map[string]registered),
	}
	b.snaps = newSnapshotOwner(newLocalCopies(&b.opts))
	b.closing, b.stopAll = context.WithCancel(context.Background())
	b.filter = compaction.New(compaction.Config{
		Clock:         opts.Clock,
		SweepInterval: opts.TTLSweepInterval,
		ScanRate:      opts.TTLScanRate,
		Share:         opts.TTLCleanupShare,
		Scanned:       &b.ttlMetrics.bgScanned,
		Removed:       &b.ttlMetrics.bgRemoved,
		OnError: func(err error) {
			opts.Logger.Error("pebblestate: background TTL cleanup failed", slog.String("dir", opts.Dir), slog.Any("err", err))
		},
	})
	so := opts.storeOptions(b.filter.EventListener())
	so.Record = meta.Backend{
		MaxParallelism: opts.MaxParallelism,
		KeyGroupStart:  opts.KeyGroups.Start,
		KeyGroupEnd:    opts.KeyGroups.End,
		KeyCodec:       keyCodec.Name(),

		KeyGroupAssigner: opts.KeyGroupAssigner.Recorded(),
	}
	st, err := store.Open(so)
	if err != nil {
		return nil, err
	}
	b.st = st
	b.publishStates()
	b.filter.Start(cleanupStore{st})
	return b, nil
}

// cleanupStore is the store as background cleanup sees it.
type cleanupStore struct{ *store.Store }

func (c cleanupStore) NewIter(lo, hi []byte) (compaction.Iterator, error) {
	return c.Store.NewIter(lo, hi)
}

// InstanceID returns the random id given to this backend's directory when
// it was created.
func (b *Backend[K]) InstanceID() string { return b.st.Record().InstanceID }

// MaxParallelism returns the number of key groups.
func (b *Backend[K]) MaxParallelism() int { return b.opts.MaxParallelism }

// KeyGroups returns the key groups this instance owns.
func (b *Backend[K]) KeyGroups() KeyGroupRange { return b.opts.KeyGroups }

// KeyGroupAssigner returns the assigner that maps keys to key groups.
func (b *Backend[K]) KeyGroupAssigner() KeyGroupAssigner { return b.opts.KeyGroupAssigner }

// KeyGroupOf returns the key group of k under this backend's assigner and
// max parallelism, whether or not this instance owns it: the way a
// framework routes a record to the subtask owning its key.
func (b *Backend[K]) KeyGroupOf(k K) (int, error) {
	return KeyGroupOfWith(b.opts.KeyGroupAssigner, b.keyCodec, k, b.opts.MaxParallelism)
}

// Clock returns the clock the backend reads processing time from.
func (b *Backend[K]) Clock() ttl.Clock { return b.opts.Clock }

// SetCurrentKey makes k the key that every state of this backend reads and
// writes until the next call. It fails with ErrKeyGroupOutOfRange if k
// belongs to a key group this instance does not own; the current key is
// then unset.
func (b *Backend[K]) SetCurrentKey(k K) error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.cur.set = false
	var err error
	b.cur.scratch, err = b.keyCodec.Append(b.cur.scratch[:0], k)
	if err != nil {
		return fmt.Errorf("backend: encode key: %w", err)
	}
	kg := b.opts.KeyGroupAssigner.AssignUnchecked(b.cur.scratch, b.opts.MaxParallelism)
	if !b.opts.KeyGroups.Contains(kg) {
		return fmt.Errorf("%w: key group %d is not in this backend's key groups %s",
			ErrKeyGroupOutOfRange, kg, b.opts.KeyGroups)
	}
	enc := keys.AppendKeyGroup(b.cur.enc[:0], kg, b.kgWidth)
	if enc, err = keys.AppendComponent(enc, b.cur.scratch, b.keyFixed); err != nil {
		return fmt.Errorf("%w: key codec %q: %w", ErrInvalidArgument, b.keyCodec.Name(), err)
	}
	b.cur.enc, b.cur.key, b.cur.kg, b.cur.set = enc, k, kg, true
	for _, c := range b.onKey {
		if err := c.accessed(); err != nil {
			return err
		}
	}
	return nil
}

// CleanupExpired runs a full pass of TTL cleanup over every state with
// background cleanup on, removing every entry expired now from disk and
// compacting what it emptied. It may run beside the task's goroutine;
// Close stops it, and it then returns ErrClosed.
func (b *Backend[K]) CleanupExpired(ctx context.Context) error {
	return b.stoppable(ctx, "cleanup expired", b.filter.Cleanup)
}

// stoppable runs long work beside the task goroutine: not after Close,
// and cancelled by Close rather than waited for, in which case it returns
// ErrClosed.
func (b *Backend[K]) stoppable(ctx context.Context, op string, work func(context.Context) error) error {
	b.lifecycle.RLock()
	defer b.lifecycle.RUnlock()
	if b.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.closing, cancel)()
	err := work(ctx)
	switch {
	case err == nil:
		return nil
	case b.closing.Err() != nil && errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %s stopped: %w", ErrClosed, op, err)
	}
	return fmt.Errorf("backend: %s: %w", op, err)
}

// CurrentKey returns the current key and whether one is set.
func (b *Backend[K]) CurrentKey() (K, bool) { return b.cur.key, b.cur.set }

// CurrentKeyGroup returns the key group of the current key, or -1 if no key
// is set.
func (b *Backend[K]) CurrentKeyGroup() int {
	if !b.cur.set {
		return -1
	}
	return b.cur.kg
}

// Flush writes everything in memory to disk. With the WAL off, writes are
// durable only once flushed; Close flushes too.
//
// When the filesystem fails (full, or failing writes), Flush returns the
// error of the first flush attempt begun after the call that fails
// (errors.Is finds syscall.ENOSPC, for instance), within about a second,
// rather than waiting: Pebble keeps retrying in the background (paced to
// about once a second), the data stays in memory, and a Flush after the
// fault clears succeeds.
func (b *Backend[K]) Flush() error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.st.Flush(context.Background())
}

// BackgroundError returns the latest error Pebble reported from its
// background work since Open (a failed flush or compaction, corruption
// found in the background, each also logged once through
// Options.Logger), or nil: for health checks, since no call of the task
// returns a failed compaction's error. It stays set after the fault
// clears.
func (b *Backend[K]) BackgroundError() error { return b.st.BackgroundError() }

// Compact flushes and compacts the whole database into its bottom level,
// dropping deleted and overwritten entries: useful after a bulk load, a
// mass expiry or a rescale, to return space and settle the files an
// incremental checkpoint uploads.
func (b *Backend[K]) Compact(ctx context.Context) error {
	return b.stoppable(ctx, "compact", func(ctx context.Context) error {
		if err := b.st.Flush(ctx); err != nil {
			return err
		}
		// One call compacts the levels that had files when it began, so a
		// second one carries what the first moved down into the bottom level.
		// Not parallelized: Pebble would split each level's compaction by
		// key range, and move every table that meets nothing below it into
		// the bottom level unchanged, keeping its sequence numbers, so that
		// a rescaling restore could not ingest it whole but must rewrite it.
		// One compaction per level rewrites them all, unless the level holds
		// a single table over nothing, which Pebble still moves (Pebble runs
		// one compaction at a time by default anyway).
		lo, hi := []byte{0}, []byte{0xFF, 0xFF, 0xFF}
		for range 2 {
			if err := b.st.Compact(ctx, lo, hi, false /* parallelize */); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close flushes (when the WAL is off) and closes the database. States of a
// closed backend return ErrClosed. Closing twice is a no-op.
//
// When the final flush fails (as Flush does, at its first failed attempt)
// or neither completes nor fails within 10 seconds (a hung device), Close
// still closes the database and releases its memory, and returns an error
// saying that the writes since the last flush are lost: restore from the
// last completed checkpoint. Closing the database waits for Pebble's
// background flush or compaction attempt in progress, if any, to end.
func (b *Backend[K]) Close() error {
	b.stopAll() // cancel CleanupExpired and Compact, which hold lifecycle
	b.lifecycle.Lock()
	defer b.lifecycle.Unlock()
	if b.closed.Load() {
		return nil
	}
	b.closed.Store(true)
	b.snaps.closeAll()
	b.filter.Close()
	return b.st.Close()
}
