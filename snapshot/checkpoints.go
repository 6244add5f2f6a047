package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Dir returns the directory name of checkpoint id, "chk-<id>".
func Dir(id int64) string { return "chk-" + strconv.FormatInt(id, 10) }

// MetadataPath returns the storage name of checkpoint id's metadata.
func MetadataPath(id int64) string { return Dir(id) + "/" + MetadataName }

// SharedDir is the directory of files several checkpoints share.
const SharedDir = "shared"

// parseDir returns the id of a name under "chk-<id>/".
func parseDir(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, "chk-")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(num, 10, 64)
	return id, err == nil && id >= 0
}

// Commit completes checkpoint cp by writing its metadata, the commit point.
// It fails if the checkpoint already exists.
//
// A checkpoint older than the newest completed one is subsumed and cannot
// be committed: retention may already have deleted shared files it reuses.
// Every shared file the handles reference must exist.
func Commit(ctx context.Context, st Storage, cp *Checkpoint) error {
	ids, err := Completed(ctx, st)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == cp.ID {
			return fmt.Errorf("snapshot: checkpoint %d already exists", cp.ID)
		}
		if id > cp.ID {
			return fmt.Errorf("%w: checkpoint %d, newer checkpoint %d completed", ErrSubsumed, cp.ID, id)
		}
	}
	if err := checkShared(ctx, st, cp); err != nil {
		return err
	}
	for i := range cp.Handles {
		if err := cp.Handles[i].Validate(); err != nil {
			return fmt.Errorf("snapshot: commit checkpoint %d: %w", cp.ID, err)
		}
	}
	enc, err := EncodeMetadata(cp)
	if err != nil {
		return err
	}
	w, err := st.Create(ctx, MetadataPath(cp.ID))
	if err != nil {
		return err
	}
	if _, err := w.Write(enc); err != nil {
		_ = w.Abort()
		return fmt.Errorf("snapshot: write %s: %w", MetadataPath(cp.ID), err)
	}
	return w.Commit()
}

// Load reads and verifies checkpoint id's metadata.
func Load(ctx context.Context, st Storage, id int64) (*Checkpoint, error) {
	name := MetadataPath(id)
	b, err := ReadFile(ctx, st, name)
	if err != nil {
		return nil, err
	}
	cp, err := DecodeMetadata(name, b)
	if err != nil {
		return nil, err
	}
	if cp.ID != id {
		return nil, fmt.Errorf("%w: %s: holds checkpoint %d", ErrCorrupt, name, cp.ID)
	}
	return cp, nil
}

// ReadFile reads a whole file from storage.
func ReadFile(ctx context.Context, st Storage, name string) ([]byte, error) {
	f, err := st.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("snapshot: read %s: %w", name, err)
	}
	return b, nil
}

// Completed returns the ids of the checkpoints whose metadata exists, in
// ascending order. It does not verify them; Latest does.
func Completed(ctx context.Context, st Storage) ([]int64, error) {
	names, err := st.List(ctx, "chk-")
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, n := range names {
		if id, ok := parseDir(n); ok && n == MetadataPath(id) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// checkShared verifies every shared file cp references exists. (Sizes and
// checksums are Verify's work: they cost a read of every file.)
func checkShared(ctx context.Context, st Storage, cp *Checkpoint) error {
	var names map[string]bool
	for _, h := range cp.Handles {
		for _, f := range h.Shared {
			if names == nil {
				list, err := st.List(ctx, SharedDir+"/")
				if err != nil {
					return err
				}
				names = make(map[string]bool, len(list))
				for _, n := range list {
					names[n] = true
				}
			}
			if !names[f.Name] {
				return fmt.Errorf("snapshot: commit checkpoint %d: shared file %s is missing", cp.ID, f.Name)
			}
		}
	}
	return nil
}

// Latest returns the newest checkpoint whose metadata verifies. A newer
// checkpoint whose metadata does not verify does not exist, by definition;
// it is skipped.
func Latest(ctx context.Context, st Storage) (*Checkpoint, error) {
	ids, err := Completed(ctx, st)
	if err != nil {
		return nil, err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		cp, err := Load(ctx, st, ids[i])
		if err == nil {
			return cp, nil
		}
		if !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
	}
	return nil, ErrNoCheckpoint
}

// Discard deletes checkpoint id: first its metadata, so it stops existing
// at once, then every other file in its directory. Files in shared/ are
// left alone.
func Discard(ctx context.Context, st Storage, id int64) error {
	if err := st.Delete(ctx, MetadataPath(id)); err != nil {
		return err
	}
	names, err := st.List(ctx, Dir(id)+"/")
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := st.Delete(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// Retain discards every completed checkpoint but the newest keep, the
// directories of checkpoints older than the newest completed one that never
// completed (debris of crashes and failures), and the shared files no
// retained checkpoint references. Checkpoints newer than the newest
// completed one may be in flight; they and their uploads are left alone.
// keep < 1 counts as 1.
func Retain(ctx context.Context, st Storage, keep int) error {
	keep = max(keep, 1)
	listed, err := Completed(ctx, st)
	if err != nil || len(listed) == 0 {
		return err
	}
	// Only metadata that verifies makes a checkpoint; the rest is debris
	// and must not count toward keep.
	var ids []int64
	for _, id := range listed {
		if _, err := Load(ctx, st, id); err == nil {
			ids = append(ids, id)
		} else if !errors.Is(err, ErrCorrupt) {
			return err
		}
	}
	if len(ids) == 0 {
		return nil // nothing verifies: keep everything for a person to look at
	}
	newest := ids[len(ids)-1]
	retained := make(map[int64]bool)
	for _, id := range ids[max(0, len(ids)-keep):] {
		retained[id] = true
	}
	names, err := st.List(ctx, "chk-")
	if err != nil {
		return err
	}
	discarded := make(map[int64]bool)
	for _, n := range names {
		id, ok := parseDir(n)
		if !ok || retained[id] || id > newest || discarded[id] {
			continue
		}
		discarded[id] = true
		if err := Discard(ctx, st, id); err != nil {
			return err
		}
	}
	return collectShared(ctx, st, ids[max(0, len(ids)-keep):], newest)
}

// Recover cleans a checkpoint root after a crash, when no checkpoint is in
// flight: it discards every checkpoint directory without metadata that
// verifies, deletes the shared files (named by SharedName; others are not
// this package's) that no completed checkpoint references and, for Local
// storage, removes temporary files.
func Recover(ctx context.Context, st Storage) error {
	names, err := st.List(ctx, "chk-")
	if err != nil {
		return err
	}
	checked := make(map[int64]bool)
	for _, n := range names {
		id, ok := parseDir(n)
		if !ok || checked[id] {
			continue
		}
		checked[id] = true
		if _, err := Load(ctx, st, id); err == nil {
			continue
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotExist) {
			return err
		}
		if err := Discard(ctx, st, id); err != nil {
			return err
		}
	}
	// No checkpoint is in flight: every unreferenced shared file goes.
	ids, err := Completed(ctx, st)
	if err != nil {
		return err
	}
	if err := collectShared(ctx, st, ids, 1<<62); err != nil {
		return err
	}
	if l, ok := st.(*Local); ok {
		return l.Sweep()
	}
	return nil
}

// Complete commits checkpoint cp (writes its metadata) and then applies
// retention, keeping the newest keep completed checkpoints. It is the one
// call a framework makes once every instance's handle is in.
func Complete(ctx context.Context, st Storage, cp *Checkpoint, keep int) error {
	if err := Commit(ctx, st, cp); err != nil {
		return err
	}
	return Retain(ctx, st, keep)
}
