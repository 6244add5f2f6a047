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
// whose key groups do not meet opts.KeyGroups are ignored.
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
		mine = append(mine, h)
	}
	b, err := Open(keyCodec, opts)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Backend[K], error) {
		_ = b.Close()
		_ = os.RemoveAll(opts.Dir)
		return nil, err
	}
	_, err = restore.Full(ctx, st, mine, restore.Target{
		DB:             b.db,
		Options:        b.pebbleOpts,
		StagingDir:     filepath.Join(opts.Dir, "restore-staging"),
		KeyGroups:      opts.KeyGroups,
		MaxParallelism: opts.MaxParallelism,
		StateID:        b.adoptState,
	})
	if err != nil {
		return fail(fmt.Errorf("backend: restore: %w", err))
	}
	if err := os.RemoveAll(filepath.Join(opts.Dir, "restore-staging")); err != nil {
		return fail(err)
	}
	if err := b.db.Flush(); err != nil {
		return fail(err)
	}
	return b, nil
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
