package backend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/internal/store"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Restore creates a backend in opts.Dir from the handles of a checkpoint,
// for the key groups in opts.KeyGroups, which may differ from the handles'
// (rescaling). Handles of other operators than opts.Operator and handles
// whose key groups do not meet opts.KeyGroups are ignored. Full and
// incremental handles may be mixed.
//
// The restore is strict: it fails, before reading anything, if the
// handles have nothing for opts.Operator or do not cover every key group
// of opts.KeyGroups (snapshot.ErrIncomplete), or are damaged or disagree
// (snapshot.ErrCorrupt, snapshot.ErrInconsistent). State of operators other
// than opts.Operator is not this backend's to judge: a framework checks
// that every operator of the checkpoint is claimed with
// snapshot.CheckClaimed.
//
// From incremental handles, the one sharing the most key groups with the
// new instance becomes its database directly (hard-linked from local
// storage); when it is the only one and its range is the new one, the
// backend keeps its instance id, and under opts.RestoreMode Claim its
// upload history too, so its first checkpoint into st reuses the handle's
// SSTs. Otherwise (and by default, NoClaim) its first incremental
// checkpoint uploads everything. Either way the backend writes under a new
// writer id (WriterID), so it never writes a name another backend may.
//
// opts.Dir must not exist, be empty, or hold what a restore that did not
// finish left (which is removed). The restore is atomic: while it runs,
// the directory holds a marker file, made durable before anything else is
// written and removed only once the restored database is complete and
// flushed, and Open refuses a directory that holds it
// (ErrUnfinishedRestore). A directory the restore creates appears with
// the marker in it (it is made under a temporary name beside opts.Dir and
// renamed). So a restore killed at any moment leaves opts.Dir as it was
// (missing or empty) or refused by Open, never a backend with part of the
// state. If the restore fails, opts.Dir is removed again. Register
// the states afterwards as after Open; changing a state's TTL here
// migrates it as on reopen.
//
// opts.RestoreProgress, if set, follows the restore as it goes; the
// restored backend's Metrics().Restore says what it read and how long it
// took.
func Restore[K any](ctx context.Context, keyCodec Codec[K], opts Options, st snapshot.Storage, handles []snapshot.Handle) (*Backend[K], error) {
	began := time.Now()
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if keyCodec == nil || keyCodec.Name() == "" {
		return nil, fmt.Errorf("restore %s: %w: key codec is nil or unnamed", opts.Dir, ErrInvalidArgument)
	}
	if err := prepareRestoreDir(opts.Dir); err != nil {
		return nil, err
	}
	// Refuse, before reading anything, a checkpoint that has nothing for
	// this operator, whose handles are damaged or disagree, or that does
	// not cover every key group asked for: a restore never silently
	// returns less state than the checkpoint promised.
	if err := snapshot.Covers(handles, opts.Operator, opts.KeyGroups.Start, opts.KeyGroups.End); err != nil {
		return nil, fmt.Errorf("restore %s: %w", opts.Dir, err)
	}
	var mine []snapshot.Handle
	for _, h := range handles {
		if h.Operator != opts.Operator {
			continue
		}
		if h.KeyCodec != keyCodec.Name() {
			return nil, fmt.Errorf("restore %s: %w: handle of %s has key codec %q, not %q", opts.Dir, ErrIncompatibleBackend, h.InstanceID, h.KeyCodec, keyCodec.Name())
		}
		if h.MaxParallelism != opts.MaxParallelism {
			return nil, fmt.Errorf("restore %s: %w: handle of %s has max parallelism %d, not %d", opts.Dir, ErrIncompatibleBackend, h.InstanceID, h.MaxParallelism, opts.MaxParallelism)
		}
		if h.KeyGroupAssigner != opts.KeyGroupAssigner.Recorded() {
			return nil, fmt.Errorf("restore %s: %w: handle of %s was taken with key-group assigner %s, not %s", opts.Dir, ErrIncompatibleBackend, h.InstanceID, h.Assigner(), opts.KeyGroupAssigner)
		}
		mine = append(mine, h)
	}
	if err := markRestoring(opts.Dir); err != nil {
		_ = os.RemoveAll(opts.Dir)
		return nil, fmt.Errorf("restore %s: mark the directory: %w", opts.Dir, err)
	}
	progress := opts.RestoreProgress
	if progress == nil {
		progress = func(snapshot.Progress) {} // the tracker still counts, for RestoreStats
	}
	tracker := snapshot.NewProgressTracker(progress)
	tracker.AddTotal(restore.Totals(mine, opts.KeyGroups))
	b, err := restoreInto(ctx, keyCodec, opts, st, mine, tracker)
	if err == nil {
		tracker.Finish()
		b.restored.Duration = time.Since(began)
		p := tracker.Progress()
		b.restored.Files, b.restored.Bytes = p.Files, p.Bytes
		b.restored.DownloadedBytes = p.Bytes - b.restored.LocalBytes
		if err = unmarkRestoring(opts.Dir); err != nil {
			_ = b.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(opts.Dir)
		return nil, fmt.Errorf("restore %s: %w", opts.Dir, err)
	}
	return b, nil
}

func restoreInto[K any](ctx context.Context, keyCodec Codec[K], opts Options, st snapshot.Storage, handles []snapshot.Handle, tracker *snapshot.ProgressTracker) (*Backend[K], error) {
	base := restore.Base(handles, opts.KeyGroups)
	keep := false // keep the base's identity and upload history
	local := opts.restoreLocal(st)
	if base != nil {
		unverified, err := restore.FetchUnverifiedWith(ctx, st, base, opts.Dir, tracker, local)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, h := range handles {
			if !(KeyGroupRange{Start: h.KeyGroupStart, End: h.KeyGroupEnd}).Intersect(opts.KeyGroups).IsEmpty() {
				n++
			}
		}
		keep = n == 1 && base.KeyGroupStart == opts.KeyGroups.Start && base.KeyGroupEnd == opts.KeyGroups.End
		if keep {
			err = unverified.Verify(ctx, nil)
		} else {
			err = rebase(ctx, opts, base, unverified)
		}
		if err != nil {
			return nil, err
		}
	}
	b, err := open(keyCodec, opts, true)
	if err != nil {
		return nil, err
	}
	staging := filepath.Join(opts.Dir, "restore-staging")
	var stats restore.Stats
	err = b.st.Load(func(l store.Loader) error {
		var err error
		stats, err = restore.Handles(ctx, st, handles, restore.Target{
			DB:             restoreDB{l},
			StagingDir:     staging,
			KeyGroups:      opts.KeyGroups,
			MaxParallelism: opts.MaxParallelism,
			StateID:        b.adoptState,
			Base:           base,
			Progress:       tracker,
			Local:          local,
		})
		return err
	})
	if err == nil {
		err = os.RemoveAll(staging)
	}
	if err == nil {
		err = b.st.Flush(ctx)
	}
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	if keep && opts.RestoreMode == Claim {
		b.snaps.history.Seed(base.CheckpointID, st, *base)
	}
	if opts.RestoreMode == NoClaim && len(handles) > 0 {
		b.restoredFrom = &restoredCheckpoint{st: st, id: handles[0].CheckpointID}
	}
	b.publishStates()
	if local != nil {
		b.snaps.local.restoredFrom(handles, opts.KeyGroups)
	}
	rs := &RestoreStats{CheckpointID: -1, Handles: stats.Handles, IngestedBytes: stats.Bytes, Entries: stats.Entries, Rewritten: stats.Rewritten}
	if local != nil {
		rs.LocalFiles, rs.LocalBytes = int(local.Files()), local.Bytes()
	}
	if base != nil {
		rs.Handles++
	}
	if len(handles) > 0 {
		rs.CheckpointID = handles[0].CheckpointID
	}
	b.restored = rs
	return b, nil
}

// restoreDB is the store's Loader as restore.Handles takes it.
type restoreDB struct{ store.Loader }

// NewIter returns the store's iterator as a restore.Iter.
func (d restoreDB) NewIter(lo, hi []byte) (restore.Iter, error) { return d.Loader.NewIter(lo, hi) }

// rebase turns the database fetched from an incremental handle into one of
// the new instance: it checksums the tables that will be left, excises the
// key groups the instance does not own (the tables wholly inside them are
// never read) and rewrites the backend record with the new range and a new
// instance id. Checksums come before the excise: to cut a table in part,
// Pebble reads it, and a read that fails there can lose the rest of the
// table unreported. store.Rebase keeps compactions and table statistics
// off, so no unverified table is rewritten or read in the background.
func rebase(ctx context.Context, opts Options, base *snapshot.Handle, unverified *restore.Unverified) error {
	err := store.Rebase(opts.storeOptions(pebble.EventListener{}), func(db *pebble.DB, m meta.Backend) (meta.Backend, error) {
		ids := make([]uint16, len(base.States))
		for i, s := range base.States {
			ids[i] = s.ID
		}
		had := KeyGroupRange{Start: base.KeyGroupStart, End: base.KeyGroupEnd}
		keep := had.Intersect(opts.KeyGroups)
		need, err := restore.Kept(db, ids, had, keep, opts.MaxParallelism)
		if err != nil {
			return m, err
		}
		if err := unverified.Verify(ctx, need); err != nil {
			return m, err
		}
		if err := restore.Clip(ctx, db, ids, had, keep, opts.MaxParallelism); err != nil {
			return m, err
		}
		if m.InstanceID, err = meta.NewInstanceID(); err != nil {
			return m, err
		}
		m.KeyGroupStart, m.KeyGroupEnd = opts.KeyGroups.Start, opts.KeyGroups.End
		return m, nil
	})
	if errors.Is(err, store.ErrCorrupt) {
		err = fmt.Errorf("%w: the database of %s's handle: %v", snapshot.ErrCorrupt, base.InstanceID, err)
	}
	return unverified.Blame(ctx, err)
}

// RestoreReport says which checkpoint RestoreLatest or RestoreFromPath
// chose, and which newer ones it passed over.
type RestoreReport struct {
	// Checkpoint is the checkpoint chosen, or nil if none was found. It
	// is set when the restore from it fails, too.
	Checkpoint *snapshot.Checkpoint

	// Skipped are the checkpoints newer than Checkpoint that were passed
	// over because their metadata exists but does not verify (damaged, or
	// of a format version this build does not read), newest first, each
	// with the error that says why. Each is also logged to
	// Options.Logger. They are kept in storage (retention.Retain and
	// Recover never delete them): a newer build, or a repair, may restore
	// them.
	Skipped []snapshot.Skipped

	// Stats describe the restore, when it succeeded (the backend's
	// Metrics().Restore holds them too); nil otherwise.
	Stats *RestoreStats
}

// RestoreLatest restores from the newest checkpoint in st whose metadata
// verifies (snapshot.LatestWithReport). The report says which one that
// was and which newer ones were passed over, and why; if there is none,
// the error wraps snapshot.ErrNoCheckpoint and names where it looked.
func RestoreLatest[K any](ctx context.Context, keyCodec Codec[K], opts Options, st snapshot.Storage) (*Backend[K], RestoreReport, error) {
	opts.EnsureDefaults()
	cp, skipped, err := snapshot.LatestWithReport(ctx, st)
	report := RestoreReport{Checkpoint: cp, Skipped: skipped}
	if err != nil {
		return nil, report, fmt.Errorf("restore %s: %w", opts.Dir, err)
	}
	for _, s := range skipped {
		opts.Logger.Warn(fmt.Sprintf("restore %s: passed over checkpoint %d, restoring checkpoint %d", opts.Dir, s.ID, cp.ID), "err", s.Err)
	}
	b, err := Restore(ctx, keyCodec, opts, st, cp.Handles)
	if err == nil {
		report.Stats = b.restored
	}
	return b, report, err
}

var chkDir = regexp.MustCompile(`^chk-(\d+)$`)

// RestoreFromPath restores from a checkpoint directory on disk, or a URL
// of storage registered with snapshot.RegisterScheme (s3://bucket/prefix
// once the program imports snapshot/s3store): either a checkpoint root,
// from which it restores as RestoreLatest does, or one checkpoint's
// chk-<id> directory, which must verify. The report says
// which checkpoint it chose and, for a root, which newer ones it passed
// over and why.
func RestoreFromPath[K any](ctx context.Context, keyCodec Codec[K], opts Options, path string) (*Backend[K], RestoreReport, error) {
	if snapshot.IsURL(path) {
		return restoreFromURL(ctx, keyCodec, opts, path)
	}
	path = filepath.Clean(path)
	// A restore never creates the checkpoint directory it reads.
	if _, err := os.Stat(path); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named once, below
		}
		return nil, RestoreReport{}, fmt.Errorf("restore from %s: %w", path, err)
	}
	if m := chkDir.FindStringSubmatch(filepath.Base(path)); m != nil {
		id, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, RestoreReport{}, fmt.Errorf("restore from %s: %w: not a checkpoint id", path, ErrInvalidArgument)
		}
		st, err := snapshot.NewLocal(filepath.Dir(path))
		if err != nil {
			return nil, RestoreReport{}, fmt.Errorf("restore from %s: %w", path, err)
		}
		cp, err := snapshot.Load(ctx, st, id)
		if err != nil {
			return nil, RestoreReport{}, fmt.Errorf("restore %s: %w", opts.Dir, err)
		}
		b, err := Restore(ctx, keyCodec, opts, st, cp.Handles)
		report := RestoreReport{Checkpoint: cp}
		if err == nil {
			report.Stats = b.restored
		}
		return b, report, err
	}
	st, err := snapshot.NewLocal(path)
	if err != nil {
		return nil, RestoreReport{}, fmt.Errorf("restore from %s: %w", path, err)
	}
	return RestoreLatest(ctx, keyCodec, opts, st)
}

// restoreFromURL is RestoreFromPath for a URL.
func restoreFromURL[K any](ctx context.Context, keyCodec Codec[K], opts Options, root string) (*Backend[K], RestoreReport, error) {
	parent, id, one := snapshot.SplitCheckpoint(root)
	if !one {
		parent = root
	}
	st, err := snapshot.OpenRoot(ctx, parent)
	if err != nil {
		return nil, RestoreReport{}, fmt.Errorf("restore from %w", err)
	}
	if !one {
		return RestoreLatest(ctx, keyCodec, opts, st)
	}
	cp, err := snapshot.Load(ctx, st, id)
	if err != nil {
		return nil, RestoreReport{}, fmt.Errorf("restore %s: %w", opts.Dir, err)
	}
	b, err := Restore(ctx, keyCodec, opts, st, cp.Handles)
	return b, RestoreReport{Checkpoint: cp}, err
}

// adoptState records a state of a checkpoint in this backend, reusing the
// record of a state of the same name restored from another handle, and
// returns its id.
func (b *Backend[K]) adoptState(s snapshot.State) (uint16, error) {
	m := meta.FromSnapshot(s)
	m.KeyCodec = b.keyCodec.Name()
	if have, ok := b.st.Lookup(m.Name); ok {
		if err := meta.Compatible(have, m); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrIncompatibleState, err)
		}
		if have.TTL != m.TTL {
			return 0, fmt.Errorf("%w: state %q has TTL %v in one handle and %v in another", ErrIncompatibleState, m.Name, have.TTL, m.TTL)
		}
		return have.ID, nil
	}
	id, err := b.st.NextID()
	if err != nil {
		return 0, err
	}
	m.ID, m.FormatVersion = id, meta.FormatVersion
	if err := b.st.Create(m); err != nil {
		return 0, err
	}
	return m.ID, nil
}
