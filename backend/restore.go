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

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Restore creates a backend in opts.Dir from the handles of a checkpoint,
// for the key groups in opts.KeyGroups, which may differ from the handles'
// (rescaling). Handles of other operators than opts.Operator and handles
// whose key groups do not meet opts.KeyGroups are ignored. Full and
// incremental handles may be mixed.
//
// From incremental handles, the one sharing the most key groups with the
// new instance becomes its database directly (hard-linked from local
// storage); when it is the only one and its range is the new one, the
// backend keeps its instance id and upload history, so the next checkpoint
// stays incremental. Otherwise the backend gets a new instance id, and its
// first incremental checkpoint uploads everything.
//
// opts.Dir must not exist or be empty. If the restore fails, it is removed
// again: nothing is ever half-restored. Register the states afterwards as
// after Open; changing a state's TTL here migrates it as on reopen.
func Restore[K any](ctx context.Context, keyCodec Codec[K], opts Options, st snapshot.Storage, handles []snapshot.Handle) (*Backend[K], error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := checkEmptyDir(opts.Dir); err != nil {
		return nil, err
	}
	var mine []snapshot.Handle
	for _, h := range handles {
		if h.Operator != opts.Operator {
			continue
		}
		if h.KeyCodec != keyCodec.Name() {
			return nil, fmt.Errorf("%w: handle of %s has key codec %q, not %q", ErrIncompatibleBackend, h.InstanceID, h.KeyCodec, keyCodec.Name())
		}
		if h.MaxParallelism != opts.MaxParallelism {
			return nil, fmt.Errorf("%w: handle of %s has max parallelism %d, not %d", ErrIncompatibleBackend, h.InstanceID, h.MaxParallelism, opts.MaxParallelism)
		}
		mine = append(mine, h)
	}
	b, err := restoreInto(ctx, keyCodec, opts, st, mine)
	if err != nil {
		_ = os.RemoveAll(opts.Dir)
		return nil, fmt.Errorf("backend: restore: %w", err)
	}
	return b, nil
}

func restoreInto[K any](ctx context.Context, keyCodec Codec[K], opts Options, st snapshot.Storage, handles []snapshot.Handle) (*Backend[K], error) {
	base := restore.Base(handles, opts.KeyGroups)
	keep := false // keep the base's identity and upload history
	if base != nil {
		unverified, err := restore.FetchUnverified(ctx, st, base, opts.Dir)
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
	b, err := Open(keyCodec, opts)
	if err != nil {
		return nil, err
	}
	staging := filepath.Join(opts.Dir, "restore-staging")
	_, err = restore.Handles(ctx, st, handles, restore.Target{
		DB:             b.db,
		Options:        b.pebbleOpts,
		StagingDir:     staging,
		KeyGroups:      opts.KeyGroups,
		MaxParallelism: opts.MaxParallelism,
		StateID:        b.adoptState,
		Base:           base,
	})
	if err == nil {
		err = os.RemoveAll(staging)
	}
	if err == nil {
		err = b.db.Flush()
	}
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	if keep {
		m := make(map[string]snapshot.SharedFile, len(base.Shared))
		for _, f := range base.Shared {
			m[f.LocalName] = f
		}
		b.snaps.uploads[base.CheckpointID] = m
		b.snaps.lastCompleted = base.CheckpointID
	}
	return b, nil
}

// rebase turns the database fetched from an incremental handle into one of
// the new instance: it rewrites the backend record with the new range and
// a new instance id, checksums the tables that will be left, and excises
// the key groups the instance does not own (the tables inside them are
// never read). The checksums take longest: the record is rewritten
// meanwhile, and Clip waits for them, since it reads the tables it cuts in
// part. Automatic compactions and table statistics stay off, so that no
// table is rewritten, or read in the background, before it is verified.
func rebase(ctx context.Context, opts Options, base *snapshot.Handle, unverified *restore.Unverified) error {
	cache := pebble.NewCache(opts.BlockCacheSize)
	defer cache.Unref()
	// Reads of a damaged table fail; the listener keeps Pebble from
	// stopping the process over it before the checksums tell.
	po := opts.pebbleOptions(cache, pebble.EventListener{DataCorruption: func(pebble.DataCorruptionInfo) {}})
	po.DisableAutomaticCompactions = true
	po.DisableTableStats = true
	db, err := pebble.Open(opts.Dir, po)
	if err != nil {
		return unverified.Blame(ctx, fmt.Errorf("%w: open the database of %s's handle: %v", snapshot.ErrCorrupt, base.InstanceID, err))
	}
	ids := make([]uint16, len(base.States))
	for i, s := range base.States {
		ids[i] = s.ID
	}
	had := KeyGroupRange{Start: base.KeyGroupStart, End: base.KeyGroupEnd}
	keep := had.Intersect(opts.KeyGroups)
	err = func() error {
		need, err := restore.Kept(db, ids, had, keep, opts.MaxParallelism)
		if err != nil {
			return err
		}
		verified := make(chan error, 1)
		go func() { verified <- unverified.Verify(ctx, need) }()
		err = rewriteRecord(db, opts, base)
		if verr := <-verified; verr != nil {
			return verr
		}
		if err != nil {
			return err
		}
		return restore.Clip(ctx, db, ids, had, keep, opts.MaxParallelism)
	}()
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return unverified.Blame(ctx, err)
}

// rewriteRecord gives the backend record of a rebased database the new
// instance's range and a new instance id, and flushes it.
func rewriteRecord(db *pebble.DB, opts Options, base *snapshot.Handle) error {
	raw, closer, err := db.Get(keys.BackendMetaKey())
	if err != nil {
		return fmt.Errorf("%w: %s's database has no backend record: %v", snapshot.ErrCorrupt, base.InstanceID, err)
	}
	m, err := meta.DecodeBackend(raw)
	closer.Close()
	if err != nil {
		return fmt.Errorf("%w: %s's backend record: %v", snapshot.ErrCorrupt, base.InstanceID, err)
	}
	if m.InstanceID, err = meta.NewInstanceID(); err != nil {
		return err
	}
	m.KeyGroupStart, m.KeyGroupEnd = opts.KeyGroups.Start, opts.KeyGroups.End
	enc, err := meta.Encode(m)
	if err != nil {
		return err
	}
	if err := db.Set(keys.BackendMetaKey(), enc, pebble.NoSync); err != nil {
		return err
	}
	return db.Flush()
}

// RestoreLatest restores from the newest completed checkpoint in st. It
// returns the checkpoint it used, or snapshot.ErrNoCheckpoint.
func RestoreLatest[K any](ctx context.Context, keyCodec Codec[K], opts Options, st snapshot.Storage) (*Backend[K], *snapshot.Checkpoint, error) {
	cp, err := snapshot.Latest(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	b, err := Restore(ctx, keyCodec, opts, st, cp.Handles)
	return b, cp, err
}

var chkDir = regexp.MustCompile(`^chk-(\d+)$`)

// RestoreFromPath restores from a checkpoint directory on disk: either a
// checkpoint root (the newest completed checkpoint is used) or one
// checkpoint's chk-<id> directory.
func RestoreFromPath[K any](ctx context.Context, keyCodec Codec[K], opts Options, path string) (*Backend[K], error) {
	path = filepath.Clean(path)
	if m := chkDir.FindStringSubmatch(filepath.Base(path)); m != nil {
		id, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrInvalidArgument, path)
		}
		st, err := snapshot.NewLocal(filepath.Dir(path))
		if err != nil {
			return nil, err
		}
		cp, err := snapshot.Load(ctx, st, id)
		if err != nil {
			return nil, err
		}
		return Restore(ctx, keyCodec, opts, st, cp.Handles)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("backend: restore from %s: %w", path, err)
	}
	st, err := snapshot.NewLocal(path)
	if err != nil {
		return nil, err
	}
	b, _, err := RestoreLatest(ctx, keyCodec, opts, st)
	return b, err
}

func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backend: restore into %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%w: restore target %s is not empty", ErrInvalidArgument, dir)
	}
	return nil
}

// adoptState records a state of a checkpoint in this backend, reusing the
// record of a state of the same name restored from another handle, and
// returns its id.
func (b *Backend[K]) adoptState(m meta.State) (uint16, error) {
	m.KeyCodec = b.keyCodec.Name()
	if have, ok := b.persisted[m.Name]; ok {
		if err := meta.Compatible(have, m); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrIncompatibleState, err)
		}
		if have.TTL != m.TTL {
			return 0, fmt.Errorf("%w: state %q has TTL %v in one handle and %v in another", ErrIncompatibleState, m.Name, have.TTL, m.TTL)
		}
		return have.ID, nil
	}
	if b.nextID > keys.MaxStateID {
		return 0, fmt.Errorf("%w: too many states (at most %d)", ErrInvalidArgument, keys.MaxStateID)
	}
	m.ID = b.nextID
	m.FormatVersion = meta.FormatVersion
	enc, err := meta.Encode(m)
	if err != nil {
		return 0, err
	}
	if err := b.db.Set(keys.StateMetaKey(m.Name), enc, pebble.NoSync); err != nil {
		return 0, fmt.Errorf("backend: record state %q: %w", m.Name, err)
	}
	b.nextID++
	b.persisted[m.Name] = m
	return m.ID, nil
}
