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
	err = b.st.Load(func(db *pebble.DB, po *pebble.Options) error {
		_, err := restore.Handles(ctx, st, handles, restore.Target{
			DB:             db,
			Options:        po,
			StagingDir:     staging,
			KeyGroups:      opts.KeyGroups,
			MaxParallelism: opts.MaxParallelism,
			StateID:        b.adoptState,
			Base:           base,
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
	if keep {
		b.snaps.history.Seed(base.CheckpointID, base.Shared)
	}
	return b, nil
}

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
