package backend_test

// Tests of who writes what into a checkpoint root: every backend writes
// under its own writer id, forked writers never lose a checkpoint, a
// restore claims the restored checkpoint's files only when asked to, and a
// forgotten completion notification is harmless.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

func claim(o *backend.Options) { o.RestoreMode = backend.Claim }

// writtenBy reports whether every file a handle names for its own
// checkpoint (its private or data files, and the shared files it
// uploaded) carries writer's id.
func writtenBy(h snapshot.Handle, writer string) bool {
	for _, f := range h.Files {
		if !strings.Contains(f.Name, writer) {
			return false
		}
	}
	for _, f := range h.Shared {
		if strings.Contains(f.Name, fmt.Sprintf("-c%d-", h.CheckpointID)) && !strings.Contains(f.Name, writer) {
			return false
		}
	}
	return true
}

// TestForkedWritersNeverLoseACheckpoint guards the safety issue's case 2:
// two processes restored from one incremental checkpoint at the same range
// (a zombie and its replacement) shared the instance id and so the names
// of their uploads; both took checkpoint 2, both got nil, one overwrote
// the other's files and no checkpoint restored. Now each has its own
// writer id: of each id exactly one commit wins, the loser's Checkpoint
// fails (it does not mistake the winner's metadata for its own), and
// every completed checkpoint restores exactly the state of its writer.
// With retention 1 each winner deletes files the other built on; the
// other uploads them again rather than fail.
func TestForkedWritersNeverLoseACheckpoint(t *testing.T) {
	for _, c := range []struct {
		m    mode
		rm   backend.RestoreMode
		keep int
	}{
		{incrementalMode, backend.NoClaim, 100}, {incrementalMode, backend.Claim, 100},
		{incrementalMode, backend.NoClaim, 1}, {incrementalMode, backend.Claim, 1},
		{fullMode, backend.NoClaim, 100}, {fullMode, backend.NoClaim, 1},
	} {
		m, rm, keep := c.m, c.rm, c.keep
		t.Run(fmt.Sprintf("%s/%v/keep=%d", m.name, rm, keep), func(t *testing.T) {
			ctx := context.Background()
			st := newStorage(t)
			opts := func(o *backend.Options) { o.RetainedCheckpoints = keep; o.RestoreMode = rm }
			j := newJob(t, st, 1, m.each(), opts)
			const n = 3000
			for k := range int64(n) {
				j.setV(k, fxVal(k, 0))
			}
			cp1 := j.checkpoint(1, keep)
			models := map[int64]*fxModel{1: j.model.clone()}
			j.close()

			forks := []*job{
				restoreJob(t, st, cp1.Handles, 1, m.each(), models[1], opts),
				restoreJob(t, st, cp1.Handles, 1, m.each(), models[1], opts),
			}
			a, b := forks[0].b(), forks[1].b()
			// From an incremental handle at its range, both keep its
			// instance id (from a full one, each gets its own).
			if m.incremental && a.InstanceID() != b.InstanceID() {
				t.Fatalf("forks restored at one range have instance ids %s and %s: the scenario needs one", a.InstanceID(), b.InstanceID())
			}
			if a.WriterID() == b.WriterID() {
				t.Fatalf("forks share writer id %s", a.WriterID())
			}
			for id := int64(2); id <= 6; id++ {
				for i, f := range forks {
					for k := int64(i); k < n; k += 7 {
						f.setV(k, fxVal(k, int(id)*10+i))
					}
				}
				var wg sync.WaitGroup
				cps := make([]*snapshot.Checkpoint, 2)
				errs := make([]error, 2)
				for i, f := range forks {
					wg.Go(func() { cps[i], errs[i] = f.b().Checkpoint(ctx, st, id) })
				}
				wg.Wait()
				won := -1
				for i := range forks {
					if errs[i] == nil {
						if won >= 0 {
							t.Fatalf("checkpoint %d: both writers' Checkpoint returned nil", id)
						}
						won = i
					} else if cps[i] != nil {
						t.Fatalf("checkpoint %d: writer %d committed, then: %v", id, i, errs[i])
					}
				}
				if won < 0 {
					t.Fatalf("checkpoint %d: no writer won: %v", id, errors.Join(errs...))
				}
				t.Logf("checkpoint %d: writer %d won; the other: %v", id, won, errs[1-won])
				got := must(snapshot.Load(ctx, st, id)).in(t)
				if len(got.Handles) != 1 || !writtenBy(got.Handles[0], forks[won].b().WriterID()) {
					t.Fatalf("checkpoint %d holds %+v, not the winner's files", id, got.Handles)
				}
				models[id] = forks[won].model.clone()
			}
			for _, f := range forks {
				f.close()
			}
			sharedExact(t, st)
			ids := must(snapshot.Completed(ctx, st)).in(t)
			// Under NoClaim, retention keeps the restored checkpoint 1 too.
			want := min(6, keep)
			if rm == backend.NoClaim && keep < 6 {
				want++
				if ids[0] != 1 {
					t.Errorf("completed checkpoints %v: NoClaim retention deleted the restored checkpoint 1", ids)
				}
			}
			if len(ids) != want || ids[len(ids)-1] != 6 {
				t.Fatalf("completed checkpoints %v; want %d, the newest 6", ids, want)
			}
			for _, id := range ids {
				cp := must(snapshot.Load(ctx, st, id)).in(t)
				noErr(t, snapshot.Verify(ctx, st, cp))
				r := restoreJob(t, st, cp.Handles, 1, m.each(), models[id])
				r.verify(models[id], fmt.Sprintf("restore of checkpoint %d", id))
				r.close()
			}
		})
	}
}

// TestFirstCheckpointIntoAnotherRootAfterRestore guards the safety
// issue's case 7: after an incremental restore, the first checkpoint into
// another root failed with "shared file ... is missing" (it referenced the
// restored root's files), and the retry uploaded everything. In either
// restore mode it now uploads what it needs, at once, and the restored
// root is not touched.
func TestFirstCheckpointIntoAnotherRootAfterRestore(t *testing.T) {
	for _, rm := range []backend.RestoreMode{backend.NoClaim, backend.Claim} {
		t.Run(rm.String(), func(t *testing.T) {
			ctx := context.Background()
			from, to := newStorage(t), newStorage(t)
			j := newJob(t, from, 1, incrementalMode.each())
			for k := range int64(3000) {
				j.setV(k, fxVal(k, 0))
			}
			for id := int64(1); id <= 7; id++ {
				j.setV(id, fxVal(id, int(id)))
				j.checkpoint(id, 1)
			}
			cp := must(snapshot.Latest(ctx, from)).in(t)
			j.close()
			before := tree(t, from.Root())
			r := restoreJob(t, from, cp.Handles, 1, incrementalMode.each(), j.model, func(o *backend.Options) { o.RestoreMode = rm })
			got, err := r.b().Checkpoint(ctx, to, 8)
			if err != nil {
				t.Fatalf("first checkpoint into another root: %v", err)
			}
			h := got.Handles[0]
			if h.CheckpointedSize != h.StateSize {
				t.Errorf("first checkpoint into another root uploaded %d of %d bytes", h.CheckpointedSize, h.StateSize)
			}
			if !writtenBy(h, r.b().WriterID()) {
				t.Errorf("checkpoint 8 names files not its writer's: %+v", h)
			}
			sharedExact(t, to)
			r.close()
			if after := tree(t, from.Root()); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("the restored root changed:\nbefore %v\nafter  %v", before, after)
			}
			restoreJob(t, to, got.Handles, 2, incrementalMode.each(), j.model).verify(j.model, "restore of checkpoint 8 from the other root")
		})
	}
}

// TestRestoreNoClaimNeverDependsOnRestoredFiles checks the default
// restore mode: the first checkpoint after the restore, even into the
// same root, references no file of the restored checkpoint, so deleting
// that checkpoint with all its files (as its owner may) harms nothing.
func TestRestoreNoClaimNeverDependsOnRestoredFiles(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	j := newJob(t, st, 1, incrementalMode.each())
	for k := range int64(3000) {
		j.setV(k, fxVal(k, 0))
	}
	cp1 := j.checkpoint(1, 5)
	j.close()
	r := restoreJob(t, st, cp1.Handles, 1, incrementalMode.each(), j.model, func(o *backend.Options) { o.RetainedCheckpoints = 5 })
	r.setV(1, fxVal(1, 1))
	cp2 := must(r.b().Checkpoint(ctx, st, 2)).in(t)
	want := r.model.clone()
	r.close()
	h := cp2.Handles[0]
	old := sharedNames(cp1.Handles...)
	for _, f := range h.Shared {
		if old[f.Name] {
			t.Errorf("checkpoint 2 references %s of the restored checkpoint", f.Name)
		}
	}
	if h.CheckpointedSize != h.StateSize {
		t.Errorf("first checkpoint after a NoClaim restore uploaded %d of %d bytes", h.CheckpointedSize, h.StateSize)
	}
	// The owner of checkpoint 1 deletes it, shared files and all.
	noErr(t, snapshot.Discard(ctx, st, 1))
	for name := range old {
		noErr(t, st.Delete(ctx, name))
	}
	sharedExact(t, st)
	restoreJob(t, st, cp2.Handles, 1, incrementalMode.each(), want).verify(want, "restore of checkpoint 2 after checkpoint 1 was deleted")
}

// TestRestoreNoClaimRetentionKeepsRestoredCheckpoint checks that a
// backend restored without claiming never deletes the checkpoint it came
// from: retention in that root, with RetainedCheckpoints 1, keeps it and
// its shared files beside the backend's own newest checkpoint, and it
// still restores exactly afterwards.
func TestRestoreNoClaimRetentionKeepsRestoredCheckpoint(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	j := newJob(t, st, 1, incrementalMode.each())
	for k := range int64(3000) {
		j.setV(k, fxVal(k, 0))
	}
	cp1 := j.checkpoint(1, 1)
	want1 := j.model.clone()
	j.close()
	r := restoreJob(t, st, cp1.Handles, 1, incrementalMode.each(), j.model, func(o *backend.Options) { o.RetainedCheckpoints = 1 })
	for id := int64(2); id <= 4; id++ {
		r.setV(id, fxVal(id, 1))
		must(r.b().Checkpoint(ctx, st, id)).in(t)
	}
	r.close()
	ids := must(snapshot.Completed(ctx, st)).in(t)
	if !slices.Equal(ids, []int64{1, 4}) {
		t.Fatalf("completed checkpoints after a NoClaim restore and retention 1: %v, want [1 4]", ids)
	}
	restoreJob(t, st, cp1.Handles, 1, incrementalMode.each(), want1).verify(want1, "restore of the restored-from checkpoint 1 after the new job's retention")
}

// TestRestoreClaimOwnsRestoredFiles checks the Claim restore mode: the
// first checkpoint into the restored root reuses the restored SSTs, and
// retention there deletes them once no retained checkpoint references
// them.
func TestRestoreClaimOwnsRestoredFiles(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	j := newJob(t, st, 1, incrementalMode.each())
	for k := range int64(3000) {
		j.setV(k, fxVal(k, 0))
	}
	cp1 := j.checkpoint(1, 1)
	j.close()
	r := restoreJob(t, st, cp1.Handles, 1, incrementalMode.each(), j.model, claim)
	h2 := must(r.b().Checkpoint(ctx, st, 2)).in(t).Handles[0]
	var private int64
	for _, f := range h2.Files {
		private += f.Size
	}
	if h2.CheckpointedSize != private {
		t.Errorf("first checkpoint after a Claim restore uploaded %d bytes; its private files are %d", h2.CheckpointedSize, private)
	}
	old := sharedNames(cp1.Handles...)
	for _, f := range h2.Shared {
		if !old[f.Name] {
			t.Errorf("checkpoint 2 uploaded %s although nothing changed", f.Name)
		}
	}
	// Rewrite everything: checkpoint 3 references none of checkpoint 1's
	// files, and retention (keep 1) deletes them.
	for k := range int64(3000) {
		r.setV(k, fxVal(k, 3))
	}
	noErr(t, r.b().Compact(ctx))
	cp3 := must(r.b().Checkpoint(ctx, st, 3)).in(t)
	want := r.model.clone()
	r.close()
	for name := range old {
		if !sharedNames(cp3.Handles...)[name] && exists(t, st, name) {
			t.Errorf("%s of the claimed checkpoint is still in storage, referenced by nothing", name)
		}
	}
	sharedExact(t, st)
	restoreJob(t, st, cp3.Handles, 1, incrementalMode.each(), want).verify(want, "restore of checkpoint 3")
}

// TestIncrementalForgottenNotifyStaysIncremental guards the safety
// issue's case 9: without NotifyCheckpointComplete every incremental
// checkpoint uploaded everything (581 KB instead of 4 KB). The next
// snapshot now finds the committed checkpoint that holds its handle and
// builds on it.
func TestIncrementalForgottenNotifyStaysIncremental(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	j := newJob(t, st, 1, incrementalMode.each(), func(o *backend.Options) { o.RetainedCheckpoints = 3 })
	b := j.b()
	const n = 8000
	for k := range int64(n) {
		j.setV(k, fxVal(k, 0))
	}
	noErr(t, b.Compact(ctx))
	take := func(id int64) snapshot.Handle {
		h := must(must(b.Snapshot(id, st)).in(t).Run(ctx)).in(t)
		noErr(t, retention.Complete(ctx, st, &snapshot.Checkpoint{ID: id, Handles: []snapshot.Handle{h}}, 3))
		return h // and no NotifyCheckpointComplete
	}
	h1 := take(1)
	for id := int64(2); id <= 3; id++ {
		for k := int64(0); k < n; k += 100 {
			j.setV(k, fxVal(k, int(id)))
		}
		h := take(id)
		t.Logf("checkpoint %d: %d of %d bytes", id, h.CheckpointedSize, h.StateSize)
		if h.CheckpointedSize*10 >= h1.CheckpointedSize {
			t.Errorf("checkpoint %d without notifications uploaded %d bytes, the first %d: not < 10%%", id, h.CheckpointedSize, h1.CheckpointedSize)
		}
	}
	want := j.model.clone()
	sharedExact(t, st)
	restoreJob(t, st, must(snapshot.Latest(ctx, st)).in(t).Handles, 1, incrementalMode.each(), want).verify(want, "restore of checkpoint 3")
}

// TestIncrementalReuploadsDeletedBaseFiles checks that a file of the last
// completed checkpoint that is gone from storage (deleted by another
// writer's retention) is uploaded again, not referenced: the checkpoint
// commits and restores.
func TestIncrementalReuploadsDeletedBaseFiles(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	j := newJob(t, st, 1, incrementalMode.each())
	for k := range int64(3000) {
		j.setV(k, fxVal(k, 0))
	}
	cp1 := j.checkpoint(1, 1)
	gone := cp1.Handles[0].Shared[0]
	noErr(t, st.Delete(ctx, gone.Name))
	j.setV(1, fxVal(1, 1))
	cp2 := j.checkpoint(2, 1)
	reup := false
	for _, f := range cp2.Handles[0].Shared {
		if f.Name == gone.Name {
			t.Fatalf("checkpoint 2 references %s, which is gone", f.Name)
		}
		reup = reup || f.LocalName == gone.LocalName
	}
	if !reup {
		t.Fatalf("checkpoint 2 has no %s: the scenario did not happen", gone.LocalName)
	}
	sharedExact(t, st)
	restoreJob(t, st, cp2.Handles, 1, incrementalMode.each(), j.model).verify(j.model, "restore of checkpoint 2")
}
