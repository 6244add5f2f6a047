package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

// Report is what Retain or Recover did, and what they kept for a person to
// look at.
type Report struct {
	// Discarded are the ids of the checkpoint directories deleted:
	// completed checkpoints beyond the retained ones, and debris of
	// checkpoints that never completed.
	Discarded []int64
	// SharedDeleted counts the shared files deleted.
	SharedDeleted int
	// Unreadable are the checkpoints whose metadata exists but does not
	// verify (damaged, or of a format version this build does not read),
	// oldest first. They are kept with every file in their directories,
	// and while there is one, nothing in shared/ is deleted: what they
	// reference cannot be known.
	Unreadable []snapshot.Skipped
	// SharedKept says why shared files were not collected, or is empty.
	SharedKept string
}

// Err returns nil if no unreadable checkpoint was kept, else an error
// wrapping snapshot.ErrUnreadable and each one's error.
func (r *Report) Err() error {
	if r == nil || len(r.Unreadable) == 0 {
		return nil
	}
	return fmt.Errorf("%w (%d; nothing in %s/ deleted): %w", snapshot.ErrUnreadable, len(r.Unreadable), snapshot.SharedDir, snapshot.SkippedErr(r.Unreadable))
}

// Complete commits checkpoint cp (writes its metadata, snapshot.Commit)
// and then applies retention, keeping the newest keep completed
// checkpoints. It is the one call a framework makes once every instance's
// handle is in. If the commit succeeded and retention failed, or kept an
// unreadable checkpoint (snapshot.ErrUnreadable), the error says the
// checkpoint was committed: it exists, and the backends must be told so.
func Complete(ctx context.Context, st snapshot.Storage, cp *snapshot.Checkpoint, keep int) error {
	if err := snapshot.Commit(ctx, st, cp); err != nil {
		return err
	}
	if err := Retain(ctx, st, keep); err != nil {
		return fmt.Errorf("checkpoint %d committed, but retention failed: %w", cp.ID, err)
	}
	return nil
}

// Retain applies retention: see RetainWithReport. It returns the error
// that stopped it, or else Report.Err: an error wrapping
// snapshot.ErrUnreadable, after doing all the rest, if it kept an
// unreadable checkpoint.
func Retain(ctx context.Context, st snapshot.Storage, keep int) error {
	rep, err := RetainWithReport(ctx, st, keep)
	if err != nil {
		return err
	}
	return rep.Err()
}

// RetainWithReport discards every completed checkpoint but the newest
// keep, and collects the debris of checkpoints older than the newest
// completed one that never completed (crashes and failures): their
// directories, their temporary files (for storage that leaves them, a
// snapshot.TempRemover), and the shared files no retained checkpoint
// references (incremental.CollectShared). keep < 1 counts as 1.
//
// Checkpoints newer than the newest completed one may be in flight: they
// and their uploads are left alone. A checkpoint whose metadata exists
// but does not verify is never deleted: it is reported in
// Report.Unreadable, kept with its directory, and shared-file collection
// is skipped while it exists. If no checkpoint verifies, nothing is
// deleted.
//
// The error is one that stopped the work (an I/O error); the report says
// what was done until then.
func RetainWithReport(ctx context.Context, st snapshot.Storage, keep int) (*Report, error) {
	return RetainPinned(ctx, st, keep, nil)
}

// RetainPinned is RetainWithReport that also keeps the completed
// checkpoints pinned, and every shared file they reference, whatever their
// age: a backend restored without claiming its checkpoint (Flink's
// NO_CLAIM) pins the checkpoint it was restored from when it checkpoints
// into the same root, so that it never deletes files it does not own.
// Pinned checkpoints do not count towards keep.
func RetainPinned(ctx context.Context, st snapshot.Storage, keep int, pinned []int64) (*Report, error) {
	keep = max(keep, 1)
	rep := &Report{}
	good, unreadable, err := classify(ctx, st, rep)
	if err != nil || len(good) == 0 {
		if err == nil && len(unreadable) > 0 {
			rep.SharedKept = "no checkpoint verifies"
		}
		return rep, err
	}
	newest := good[len(good)-1].ID
	retained := good[max(0, len(good)-keep):]
	keepDir := make(map[int64]bool)
	for _, cp := range retained {
		keepDir[cp.ID] = true
	}
	for _, cp := range good[:len(good)-len(retained)] {
		if slices.Contains(pinned, cp.ID) {
			keepDir[cp.ID] = true
			retained = append(retained, cp)
		}
	}
	// A checkpoint newer than the newest completed one may be in flight.
	drop := func(id int64) bool { return id < newest && !keepDir[id] && !unreadable[id] }
	if err := discardDirs(ctx, st, drop, rep); err != nil {
		return rep, err
	}
	err = removeTemp(ctx, st, func(name string) bool {
		if id, ok := snapshot.ParseDir(name); ok {
			return id <= newest && !unreadable[id]
		}
		creator, ok := snapshot.SharedCreator(name)
		return ok && creator <= newest && len(unreadable) == 0
	})
	if err != nil {
		return rep, err
	}
	if len(unreadable) > 0 {
		rep.SharedKept = "an unreadable checkpoint may reference any of them"
		return rep, nil
	}
	rep.SharedDeleted, err = incremental.CollectShared(ctx, st, retained, newest)
	return rep, err
}

// Recover cleans a checkpoint root after a crash: see RecoverWithReport.
// It returns the error that stopped it, or else Report.Err: an error
// wrapping snapshot.ErrUnreadable, after doing all the rest, if it kept an
// unreadable checkpoint.
func Recover(ctx context.Context, st snapshot.Storage) error {
	rep, err := RecoverWithReport(ctx, st)
	if err != nil {
		return err
	}
	return rep.Err()
}

// RecoverWithReport cleans a checkpoint root after a crash, when no
// checkpoint is in flight: it discards every checkpoint directory without
// metadata, deletes the shared files (named by snapshot.SharedName;
// others are not ours) that no completed checkpoint references, and removes
// temporary files (for storage that leaves them, a snapshot.TempRemover).
//
// A checkpoint whose metadata exists but does not verify is never deleted:
// it is reported in Report.Unreadable, kept with its directory, and
// nothing in shared/ is deleted while it exists.
func RecoverWithReport(ctx context.Context, st snapshot.Storage) (*Report, error) {
	rep := &Report{}
	good, unreadable, err := classify(ctx, st, rep)
	if err != nil {
		return rep, err
	}
	completed := make(map[int64]bool, len(good))
	for _, cp := range good {
		completed[cp.ID] = true
	}
	if err := discardDirs(ctx, st, func(id int64) bool { return !completed[id] && !unreadable[id] }, rep); err != nil {
		return rep, err
	}
	// Nothing is in flight: every temporary file is debris, but those of
	// unreadable checkpoints, and of shared/ while one exists.
	err = removeTemp(ctx, st, func(name string) bool {
		if id, ok := snapshot.ParseDir(name); ok {
			return !unreadable[id]
		}
		return len(unreadable) == 0 || !strings.HasPrefix(name, snapshot.SharedDir+"/")
	})
	if err != nil {
		return rep, err
	}
	if len(unreadable) > 0 {
		rep.SharedKept = "an unreadable checkpoint may reference any of them"
		return rep, nil
	}
	rep.SharedDeleted, err = incremental.CollectShared(ctx, st, good, 1<<62)
	return rep, err
}

// classify loads the metadata of every checkpoint that has one: those that
// verify, oldest first, and the ids of those that do not, which it also
// records in rep.
func classify(ctx context.Context, st snapshot.Storage, rep *Report) ([]*snapshot.Checkpoint, map[int64]bool, error) {
	ids, err := snapshot.Completed(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	var good []*snapshot.Checkpoint
	unreadable := make(map[int64]bool)
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, st, id)
		switch {
		case err == nil:
			good = append(good, cp)
		case errors.Is(err, snapshot.ErrCorrupt):
			unreadable[id] = true
			rep.Unreadable = append(rep.Unreadable, snapshot.Skipped{ID: id, Err: err})
		case errors.Is(err, snapshot.ErrNotExist):
			// Deleted since it was listed.
		default:
			return nil, nil, err
		}
	}
	return good, unreadable, nil
}

// discardDirs discards every checkpoint directory whose id drop approves.
func discardDirs(ctx context.Context, st snapshot.Storage, drop func(int64) bool, rep *Report) error {
	names, err := st.List(ctx, "chk-")
	if err != nil {
		return err
	}
	seen := make(map[int64]bool)
	for _, n := range names {
		id, ok := snapshot.ParseDir(n)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		if !drop(id) {
			continue
		}
		if err := snapshot.Discard(ctx, st, id); err != nil {
			return err
		}
		rep.Discarded = append(rep.Discarded, id)
	}
	slices.Sort(rep.Discarded)
	return nil
}

// removeTemp removes, from storage that leaves temporary files, those
// whose final names drop approves, and the empty directories it approves.
func removeTemp(ctx context.Context, st snapshot.Storage, drop func(name string) bool) error {
	if tr, ok := st.(snapshot.TempRemover); ok {
		return tr.RemoveTemp(ctx, drop)
	}
	return nil
}
