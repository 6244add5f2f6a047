package backend_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// TestCheckpointOfOneSubtaskDoesNotRestoreAsComplete guards issue 12 case
// 1: two subtasks of one operator each called the one-call Checkpoint(ctx,
// st, 1) on a shared root (or each committed its own handle after
// Snapshot and Run); both got nil, chk-1 held one handle, and restoring
// every key group returned about half the keys with no error. Now each
// such commit covers only its subtask's key groups, so it is refused with
// ErrIncomplete, nothing completes, and a restore finds no checkpoint;
// the two handles committed together restore exactly.
func TestCheckpointOfOneSubtaskDoesNotRestoreAsComplete(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		j := newJob(t, st, 2, m.each())
		defer j.close()
		j.apply(rand.New(rand.NewPCG(1, 12)), 600, 300, "a")

		// The one-call Checkpoint, by both subtasks at once.
		errs := make([]error, len(j.insts))
		var wg sync.WaitGroup
		for i, in := range j.insts {
			wg.Go(func() {
				cp, err := in.b.Checkpoint(ctx, st, 1)
				if err == nil {
					err = errors.New("succeeded with handles of key groups " + cpRanges(cp))
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if !errors.Is(err, snapshot.ErrIncomplete) {
				t.Fatalf("subtask %d's Checkpoint(1) of its own key groups: %v; want ErrIncomplete", i, err)
			}
		}

		// Snapshot and Run by both, then each commits its own handle.
		hs, err := runAll(ctx, j.snapshot(2))
		noErr(t, err)
		for i, h := range hs {
			cp := &snapshot.Checkpoint{ID: 2, Handles: []snapshot.Handle{h}}
			if err := retention.Complete(ctx, st, cp, 1); !errors.Is(err, snapshot.ErrIncomplete) {
				t.Fatalf("Complete of checkpoint 2 with subtask %d's handle alone: %v; want ErrIncomplete", i, err)
			}
		}
		if cp, err := snapshot.Latest(ctx, st); !errors.Is(err, snapshot.ErrNoCheckpoint) {
			t.Fatalf("Latest after refused commits = %+v, %v; want ErrNoCheckpoint", cp, err)
		}
		dir := filepath.Join(t.TempDir(), "r")
		if b, _, err := backend.RestoreLatest(ctx, backend.Int64, backend.Options{Dir: dir, MaxParallelism: fxMaxPar}, st); !errors.Is(err, snapshot.ErrNoCheckpoint) {
			if b != nil {
				_ = b.Close()
			}
			t.Fatalf("RestoreLatest after refused commits: %v; want ErrNoCheckpoint", err)
		}

		// Both handles in one checkpoint: it commits and restores every
		// key at parallelism 1.
		if err := retention.Complete(ctx, st, &snapshot.Checkpoint{ID: 2, Handles: hs}, 1); err != nil {
			t.Fatalf("Complete of checkpoint 2 with both handles: %v", err)
		}
		r := restoreJob(t, st, hs, 1, m.each(), j.model)
		defer r.close()
		r.verify(j.model, "checkpoint 2 restored at parallelism 1")
	})
}

// cpRanges describes the key groups of cp's handles.
func cpRanges(cp *snapshot.Checkpoint) string {
	s := ""
	for _, h := range cp.Handles {
		s += backend.KeyGroupRange{Start: h.KeyGroupStart, End: h.KeyGroupEnd}.String() + " "
	}
	return s
}
