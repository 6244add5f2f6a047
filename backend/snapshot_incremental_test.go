package backend_test

// Tests of incremental snapshots alone: which SSTs a checkpoint uploads
// and which it reuses, the identity a restore keeps or gets, and the hard
// links a restore from local storage makes.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

func TestIncrementalSecondCheckpointUploadsLittle(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	j := newJob(t, st, 1, incrementalMode.each(), func(o *backend.Options) { o.RetainedCheckpoints = 3 })
	b := j.b()
	const n = 8_000
	for k := range int64(n) {
		j.setV(k, fxVal(k, 0))
	}
	// Settle the LSM before the first checkpoint. The writes went through
	// many 1 MiB memtables into L0 files, which Pebble compacts down in the
	// background at its own pace. Were those files uploaded as they are,
	// the compactions that follow would rewrite most of the data into new
	// SSTs and the second checkpoint would upload them all again, whatever
	// the change. Compacted into the bottom level, the data stays in the
	// same files, and the 1% change is one small flushed SST.
	noErr(t, b.Compact(ctx))
	cp1 := must(b.Checkpoint(ctx, st, 1)).in(t)
	for k := int64(0); k < n; k += 100 {
		j.setV(k, fxVal(k, 1))
	}
	cp2 := must(b.Checkpoint(ctx, st, 2)).in(t)
	m2 := j.model.clone()
	h1, h2 := cp1.Handles[0], cp2.Handles[0]
	t.Logf("checkpoint 1: %d of %d bytes, %d SSTs; checkpoint 2: %d of %d bytes, %d SSTs",
		h1.CheckpointedSize, h1.StateSize, len(h1.Shared), h2.CheckpointedSize, h2.StateSize, len(h2.Shared))
	if h1.CheckpointedSize != h1.StateSize {
		t.Errorf("first checkpoint uploaded %d of %d bytes", h1.CheckpointedSize, h1.StateSize)
	}
	if h2.CheckpointedSize*10 >= h1.CheckpointedSize {
		t.Errorf("second checkpoint uploaded %d bytes, the first %d: not < 10%%", h2.CheckpointedSize, h1.CheckpointedSize)
	}
	// Every SST of checkpoint 2 is either checkpoint 1's upload, reused
	// under its name, or its own.
	old := sharedNames(h1)
	for _, f := range h2.Shared {
		if !old[f.Name] && f.Name != snapshot.SharedName(b.WriterID(), 2, f.LocalName) {
			t.Errorf("checkpoint 2 references %s", f.Name)
		}
	}
	sharedExact(t, st)
	id := b.InstanceID()
	j.close()

	// Same range, claimed: the restored backend keeps its identity and
	// upload history, so its next checkpoint into the same root uploads no
	// SST.
	r := restoreJob(t, st, cp2.Handles, 1, incrementalMode.each(), m2, claim)
	r.verify(m2, "restore of checkpoint 2")
	rb := r.b()
	if rb.InstanceID() != id {
		t.Errorf("same-range restore changed the instance id from %s to %s", id, rb.InstanceID())
	}
	cp3 := r.checkpoint(3, 3)
	h3 := cp3.Handles[0]
	var private int64
	for _, f := range h3.Files {
		private += f.Size
	}
	t.Logf("checkpoint 3 after restore: %d of %d bytes (%d private)", h3.CheckpointedSize, h3.StateSize, private)
	for _, f := range h3.Shared {
		if !sharedNames(h2)[f.Name] {
			t.Errorf("checkpoint 3, nothing changed since the restore, uploaded %s", f.Name)
		}
	}
	if h3.CheckpointedSize != private {
		t.Errorf("checkpoint 3 uploaded %d bytes, its private files are %d", h3.CheckpointedSize, private)
	}
	// The restored database shares its SSTs with storage by hard links:
	// working on it must not change them.
	for k := int64(1); k < n; k += 7 {
		r.setV(k, fxVal(k, 2))
	}
	noErr(t, rb.Compact(ctx))
	r.close()
	sharedExact(t, st)
	again := restoreJob(t, st, cp3.Handles, 1, incrementalMode.each(), m2)
	again.verify(m2, "restore of checkpoint 3 after the first restore's database changed")
}

func TestIncrementalRescaledRestoreGetsNewIdentity(t *testing.T) {
	forEachS3(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := m.storage(t)
		j := newJob(t, st, 1, incrementalMode.each())
		for k := range int64(3000) {
			j.setV(k, fxVal(k, 0))
			j.addL(k%50, k)
		}
		cp := j.checkpoint(1, 1)
		old := j.b().InstanceID()
		for _, p := range []int{2, 3} {
			r := restoreJob(t, st, cp.Handles, p, incrementalMode.each(), j.model)
			r.verify(j.model, fmt.Sprintf("restore at parallelism %d", p))
			for i, in := range r.insts {
				if in.b.InstanceID() == old {
					t.Fatalf("instance %d of %d kept the instance id %s of a different range", i, p, old)
				}
				// Its first checkpoint uploads everything, under its own id.
				h := must(must(in.b.Snapshot(int64(10+p), st)).in(t).Run(ctx)).in(t)
				if h.CheckpointedSize != h.StateSize {
					t.Errorf("first checkpoint after rescaling uploaded %d of %d bytes", h.CheckpointedSize, h.StateSize)
				}
				for _, f := range h.Shared {
					if f.Name != snapshot.SharedName(in.b.WriterID(), int64(10+p), f.LocalName) {
						t.Errorf("first checkpoint after rescaling references %s", f.Name)
					}
				}
				noErr(t, in.b.NotifyCheckpointAborted(ctx, int64(10+p), st))
			}
		}
		sharedExact(t, st)
	})
}

func TestIncrementalAbortedUploadsNeverReused(t *testing.T) {
	for _, notify := range []bool{true, false} {
		t.Run(fmt.Sprintf("notified=%v", notify), func(t *testing.T) {
			ctx := context.Background()
			st := newStorage(t)
			j := newJob(t, st, 1, incrementalMode.each())
			b := j.b()
			for k := range int64(4000) {
				j.setV(k, fxVal(k, 0))
			}
			cp1 := j.checkpoint(1, 1)
			for k := int64(0); k < 4000; k += 3 {
				j.setV(k, fxVal(k, 1))
			}
			h2 := must(must(b.Snapshot(2, st)).in(t).Run(ctx)).in(t)
			var new2 []string
			for _, f := range h2.Shared {
				if !sharedNames(cp1.Handles...)[f.Name] {
					new2 = append(new2, f.Name)
				}
			}
			if len(new2) == 0 {
				t.Fatal("checkpoint 2 uploaded no SST")
			}
			if notify {
				noErr(t, b.NotifyCheckpointAborted(ctx, 2, st))
				for _, n := range append(slices.Clone(new2), h2.Files[0].Name) {
					if exists(t, st, n) {
						t.Errorf("%s of aborted checkpoint 2 is still in storage", n)
					}
				}
			}
			// Checkpoint 3 builds on checkpoint 1, the last completed one,
			// never on 2's uploads: it uploads what it needs again.
			m := j.model.clone()
			h3 := j.checkpoint(3, 1).Handles[0]
			for _, f := range h3.Shared {
				if strings.Contains(f.Name, "-c2-") {
					t.Errorf("checkpoint 3 reuses %s of checkpoint 2, which never completed", f.Name)
				}
			}
			sharedExact(t, st)
			restoreJob(t, st, []snapshot.Handle{h3}, 1, incrementalMode.each(), m).verify(m, "restore of checkpoint 3")
		})
	}
}

func TestIncrementalBaseRetiredWhileInFlight(t *testing.T) {
	// Checkpoint 6 is taken while 5 is in flight, so it builds on 4; 7 is
	// taken after 5 completed and builds on 5. When 6 completes with
	// retention 1, 5's uploads that 6 does not reference go, and 7, which
	// reuses them, must be refused rather than committed with missing
	// files. (Flink fails such a checkpoint too.) The job goes on.
	ctx := context.Background()
	st := newStorage(t)
	j := newJob(t, st, 1, incrementalMode.each(), func(o *backend.Options) {
		o.Pebble = func(o *pebble.Options) {
			// No compaction: every SST lives on from checkpoint to checkpoint.
			o.L0CompactionThreshold, o.L0CompactionFileThreshold, o.L0StopWritesThreshold = 1000, 1000, 2000
		}
	})
	b := j.b()
	write := func(v int) {
		for k := int64(v); k < 1500; k += 5 {
			j.setV(k, fxVal(k, v))
		}
	}
	write(0)
	j.checkpoint(4, 1)
	write(1)
	s5 := must(b.Snapshot(5, st)).in(t)
	write(2)
	s6 := must(b.Snapshot(6, st)).in(t)
	m6 := j.model.clone()
	hs, err := runAll(ctx, []*backend.AsyncSnapshot{s5, s6})
	noErr(t, err)
	noErr(t, retention.Complete(ctx, st, &snapshot.Checkpoint{ID: 5, Handles: hs[:1]}, 1))
	noErr(t, b.NotifyCheckpointComplete(5))
	write(3)
	s7 := must(b.Snapshot(7, st)).in(t)
	m7 := j.model.clone()
	h7 := must(s7.Run(ctx)).in(t)
	noErr(t, retention.Complete(ctx, st, &snapshot.Checkpoint{ID: 6, Handles: hs[1:]}, 1))
	noErr(t, b.NotifyCheckpointComplete(6))
	for _, h := range append(hs, h7) {
		var ns []string
		for _, f := range h.Shared {
			ns = append(ns, f.Name[strings.LastIndex(f.Name, "-c"):])
		}
		t.Logf("checkpoint %d: %v", h.CheckpointID, ns)
	}
	reuses5 := false
	for _, f := range h7.Shared {
		reuses5 = reuses5 || strings.Contains(f.Name, "-c5-")
	}
	err = retention.Complete(ctx, st, &snapshot.Checkpoint{ID: 7, Handles: []snapshot.Handle{h7}}, 1)
	t.Logf("checkpoint 7 reuses uploads of 5: %v; Complete: %v", reuses5, err)
	if !reuses5 {
		t.Errorf("checkpoint 7 does not reuse checkpoint 5's uploads: the scenario did not happen")
	}
	want, latest := m7, int64(7)
	if err != nil {
		if !errors.Is(err, snapshot.ErrNotExist) || !strings.Contains(err.Error(), "-c5-") {
			t.Fatalf("Complete(7): %v; want ErrNotExist naming a file of checkpoint 5", err)
		}
		noErr(t, b.NotifyCheckpointAborted(ctx, 7, st))
		want, latest = m6, 6
	} else {
		noErr(t, b.NotifyCheckpointComplete(7))
	}
	sharedExact(t, st)
	cp := must(snapshot.Latest(ctx, st)).in(t)
	if cp.ID != latest {
		t.Fatalf("latest checkpoint %d, want %d", cp.ID, latest)
	}
	r := restoreJob(t, st, cp.Handles, 1, incrementalMode.each(), want)
	r.verify(want, fmt.Sprintf("restore of checkpoint %d", latest))
	r.close()
	write(4)
	m8 := j.model.clone()
	cp8 := j.checkpoint(8, 1)
	sharedExact(t, st)
	restoreJob(t, st, cp8.Handles, 2, incrementalMode.each(), m8).verify(m8, "restore of checkpoint 8")
}

func TestIncrementalRestoredDatabaseNeverChangesStorage(t *testing.T) {
	// A database restored from local storage hard-links the checkpoint's
	// files. With the WAL on, Pebble replays, rotates and recycles log
	// files, rewrites its MANIFEST and compacts: none of it may write into
	// a linked file, or the checkpoint would be corrupt.
	st := newStorage(t)
	wal := func(o *backend.Options) { o.EnableWAL = true }
	j := newJob(t, st, 1, incrementalMode.each(), wal)
	for k := range int64(3000) {
		j.setV(k, fxVal(k, 0))
	}
	cp := j.checkpoint(1, 1)
	want := j.model.clone()
	j.close()
	for round := range 2 {
		dir := t.TempDir()
		r := restoreJob(t, st, cp.Handles, 1, incrementalMode.each(), want, wal, inDir(dir))
		r.verify(want, fmt.Sprintf("round %d: restore", round))
		for k := range int64(8000) {
			r.setV(k%4000, fxVal(k, round+1))
		}
		noErr(t, r.b().Compact(context.Background()))
		r.close()
		// Reopen: replays the WAL of the restored database.
		noErr(t, MustOpenK(t, backend.Int64, inDir(dir), fxOptions(fxRanges(t, 1)[0], true), wal).Close())
	}
	// The checkpoint still verifies and restores.
	restoreJob(t, st, cp.Handles, 1, incrementalMode.each(), want).verify(want, "restore after the restored databases worked")
}
