package checkpoint_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/snapshot"
)

var twoOps = []opSpec{{"counts", 3}, {"sums", 2}}

// TestCheckpointRounds takes checkpoints with the three calls of a
// single-process user: every checkpoint restores to the state of its
// round, retention keeps the newest, ids increase by one, and the stats
// say what each subtask did.
func TestCheckpointRounds(t *testing.T) {
	forEachMode(t, func(t *testing.T, incremental bool) {
		ctx := context.Background()
		st := newStorage(t)
		j := openJob(t, "", twoOps, incremental)
		var reports []checkpoint.Stats
		c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{
			Storage: st, Operators: j.operators(), RetainedCheckpoints: 2,
			OnReport: func(s checkpoint.Stats) { reports = append(reports, s) },
		})
		noErr(t, err)
		for round := int64(1); round <= 3; round++ {
			j.write(t, round)
			stats, err := c.Checkpoint(ctx)
			noErr(t, err)
			if stats.ID != round || !stats.Completed || len(stats.Subtasks) != 5 {
				t.Fatalf("round %d: stats %+v", round, stats)
			}
			for _, s := range stats.Subtasks {
				if s.SyncDuration <= 0 || s.AsyncDuration <= 0 || s.StateSize <= 0 || s.CheckpointedSize <= 0 || s.CheckpointedSize > s.StateSize {
					t.Fatalf("round %d: subtask stats %+v", round, s)
				}
			}
			if last := c.LastCompleted(); last == nil || last.ID != round || last.StateSize != stats.StateSize {
				t.Fatalf("LastCompleted = %+v, want checkpoint %d", last, round)
			}
		}
		noErr(t, c.Close())
		if len(reports) != 3 || reports[2].ID != 3 {
			t.Fatalf("OnReport saw %d checkpoints", len(reports))
		}
		if got := completed(t, st); !slices.Equal(got, []int64{2, 3}) {
			t.Fatalf("completed checkpoints %v, want [2 3]", got)
		}
		checkNoDebris(t, st)
		r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: j.names()})
		noErr(t, err)
		restoreJob(t, r, twoOps, incremental).check(t, 3)
		if _, err := c.Checkpoint(ctx); !errors.Is(err, checkpoint.ErrClosed) {
			t.Fatalf("Checkpoint after Close: %v", err)
		}
	})
}

// TestRestoreContinuesIDs restores a job and checkpoints on: ids go on
// above the restored checkpoint and above any id in storage (here the
// debris of a checkpoint that never committed), and a NoClaim restore's
// checkpoint is kept by retention in its own root.
func TestRestoreContinuesIDs(t *testing.T) {
	forEachMode(t, func(t *testing.T, incremental bool) {
		ctx := context.Background()
		st := newStorage(t)
		j := openJob(t, "", twoOps, incremental)
		c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: j.operators()})
		noErr(t, err)
		for round := int64(1); round <= 2; round++ {
			j.write(t, round)
			_, err := c.Checkpoint(ctx)
			noErr(t, err)
		}
		// Checkpoint 3 is written by one subtask but never committed.
		s, err := j.backends[0][0].Snapshot(3, st)
		noErr(t, err)
		_, err = s.Run(ctx)
		noErr(t, err)
		noErr(t, c.Close())

		r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: j.names()})
		noErr(t, err)
		if r.Checkpoint.ID != 2 {
			t.Fatalf("restored checkpoint %d, want 2", r.Checkpoint.ID)
		}
		j2 := restoreJob(t, r, twoOps, incremental)
		j2.check(t, 2)
		c2, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: j2.operators(), Restored: r})
		noErr(t, err)
		if got := c2.NextID(); got != 4 {
			t.Fatalf("next id after restore %d, want 4 (above the debris of 3)", got)
		}
		for round := int64(4); round <= 5; round++ {
			j2.write(t, round)
			stats, err := c2.Checkpoint(ctx)
			noErr(t, err)
			if stats.ID != round {
				t.Fatalf("checkpoint id %d, want %d", stats.ID, round)
			}
		}
		noErr(t, c2.Close())
		// NoClaim: the restored checkpoint 2 stays beside the newest.
		if got := completed(t, st); !slices.Equal(got, []int64{2, 5}) {
			t.Fatalf("completed checkpoints %v, want [2 5]", got)
		}
		checkNoDebris(t, st)

		// Restored into another root, the ids still continue above it.
		other := newStorage(t)
		c3, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: other, Operators: j2.operators(), Restored: r})
		noErr(t, err)
		if got := c3.NextID(); got != 3 {
			t.Fatalf("next id in a new root after restoring 2: %d, want 3", got)
		}
		noErr(t, c3.Close())
	})
}

// TestRestoreClaimed checks the restore helper's strictness: state of an
// operator the job does not run is an error unless allowed, and the
// coordinator makes the same check.
func TestRestoreClaimed(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	j := openJob(t, "", twoOps, false)
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: j.operators()})
	noErr(t, err)
	j.write(t, 1)
	_, err = c.Checkpoint(ctx)
	noErr(t, err)
	noErr(t, c.Close())

	_, err = checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: []string{"counts"}})
	if !errors.Is(err, snapshot.ErrNonRestoredState) {
		t.Fatalf("restore without operator sums: %v, want ErrNonRestoredState", err)
	}
	r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: []string{"counts", "new"}, AllowNonRestoredState: true})
	noErr(t, err)
	if !r.HasState("counts") || r.HasState("new") {
		t.Fatalf("HasState wrong for %v", snapshot.Operators(r.Checkpoint))
	}
	r.AllowNonRestoredState = false
	_, err = checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: j.operators()[:1], Restored: r})
	if !errors.Is(err, snapshot.ErrNonRestoredState) {
		t.Fatalf("coordinator with a restored checkpoint it does not claim: %v", err)
	}
	if _, err := checkpoint.LatestCheckpoint(ctx, newStorage(t), checkpoint.RestoreOptions{Operators: j.names()}); !errors.Is(err, snapshot.ErrNoCheckpoint) {
		t.Fatalf("empty root: %v", err)
	}
}

// TestRescaleOperators checkpoints operators at different parallelisms
// and restores each at others, exactly.
func TestRescaleOperators(t *testing.T) {
	forEachMode(t, func(t *testing.T, incremental bool) {
		ctx := context.Background()
		st := newStorage(t)
		from := []opSpec{{"a", 1}, {"b", 3}, {"c", 4}}
		j := openJob(t, "", from, incremental)
		c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: j.operators()})
		noErr(t, err)
		j.write(t, 7)
		_, err = c.Checkpoint(ctx)
		noErr(t, err)
		noErr(t, c.Close())
		r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: j.names()})
		noErr(t, err)
		to := []opSpec{{"a", 3}, {"b", 2}, {"c", 5}}
		j2 := restoreJob(t, r, to, incremental)
		j2.check(t, 7)
		// And on: the rescaled job checkpoints and restores again.
		c2, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: j2.operators(), Restored: r})
		noErr(t, err)
		j2.write(t, 8)
		_, err = c2.Checkpoint(ctx)
		noErr(t, err)
		noErr(t, c2.Close())
		r2, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: j.names()})
		noErr(t, err)
		restoreJob(t, r2, from, incremental).check(t, 8)
	})
}

// TestTwoInFlight runs two checkpoints at once, the newer completing
// first: it subsumes the older, which aborts and leaves nothing behind;
// a third waits for room.
func TestTwoInFlight(t *testing.T) {
	forEachMode(t, func(t *testing.T, incremental bool) {
		ctx := context.Background()
		st := newStorage(t)
		j := openJob(t, "", twoOps, incremental)
		c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: j.operators(), MaxInFlight: 2})
		noErr(t, err)
		defer c.Close()
		j.write(t, 1)
		_, err = c.Checkpoint(ctx)
		noErr(t, err)

		subtasks := c.Subtasks()
		ack := func(p *checkpoint.Pending, which []int) {
			for _, i := range which {
				s := subtasks[i]
				o := slices.IndexFunc(j.specs, func(sp opSpec) bool { return sp.name == s.Operator })
				snap, err := j.backends[o][s.Index].Snapshot(p.ID(), st)
				noErr(t, err)
				noErr(t, p.Acknowledge(s, checkpoint.SubtaskState{Keyed: snap}))
			}
		}
		j.write(t, 2)
		p2, err := c.Trigger(ctx)
		noErr(t, err)
		ack(p2, []int{0, 1, 2}) // two subtasks still to report
		j.write(t, 3)
		p3, err := c.Trigger(ctx)
		noErr(t, err)
		if _, err := c.Trigger(ctx); !errors.Is(err, checkpoint.ErrTooManyInFlight) {
			t.Fatalf("third trigger: %v, want ErrTooManyInFlight", err)
		}
		ack(p3, []int{0, 1, 2, 3, 4})
		s3, err := p3.Wait(ctx)
		noErr(t, err)
		s2, err := p2.Wait(ctx)
		if !errors.Is(err, checkpoint.ErrAborted) || !errors.Is(err, snapshot.ErrSubsumed) || s2.Completed {
			t.Fatalf("older checkpoint: %v, want aborted as subsumed", err)
		}
		if s3.ID != 3 || !s3.Completed {
			t.Fatalf("newer checkpoint: %+v", s3)
		}
		// A late report for the subsumed checkpoint is refused and its
		// snapshot released.
		snap, err := j.backends[0][0].Snapshot(p2.ID(), st)
		noErr(t, err)
		if err := c.Acknowledge(p2.ID(), subtasks[3], checkpoint.SubtaskState{Keyed: snap}); !errors.Is(err, checkpoint.ErrUnknownCheckpoint) {
			t.Fatalf("late acknowledge: %v", err)
		}
		if got := completed(t, st); !slices.Equal(got, []int64{3}) {
			t.Fatalf("completed %v, want [3]", got)
		}
		checkNoDebris(t, st)

		// In order, both complete.
		j.write(t, 4)
		p4, err := c.Trigger(ctx)
		noErr(t, err)
		p5, err := c.Trigger(ctx)
		noErr(t, err)
		ack(p4, []int{0, 1, 2, 3, 4})
		_, err = p4.Wait(ctx)
		noErr(t, err)
		ack(p5, []int{4, 3, 2, 1, 0})
		_, err = p5.Wait(ctx)
		noErr(t, err)
		checkNoDebris(t, st)
		r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: j.names()})
		noErr(t, err)
		if r.Checkpoint.ID != 5 {
			t.Fatalf("latest %d, want 5", r.Checkpoint.ID)
		}
		restoreJob(t, r, twoOps, incremental).check(t, 4)
	})
}

// TestOptions checks defaults and validation.
func TestOptions(t *testing.T) {
	o := checkpoint.Options{}
	o.EnsureDefaults()
	if o.MaxInFlight != 1 || o.Timeout != 10*time.Minute || o.RetainedCheckpoints != 1 {
		t.Fatalf("defaults %+v", o)
	}
	if err := o.Validate(); err == nil {
		t.Fatal("options without storage and operators validate")
	}
	st := newStorage(t)
	b, err := backend.Open(backend.Int64, backendOptions(t.TempDir(), "a", false))
	noErr(t, err)
	defer b.Close()
	p := checkpoint.KeyedParticipant(b)
	for _, ops := range [][]checkpoint.Operator{
		{{Name: "", Subtasks: []checkpoint.Participant{p}}},
		{{Name: "a"}},
		{{Name: "a", Subtasks: []checkpoint.Participant{p}}, {Name: "a", Subtasks: []checkpoint.Participant{p}}},
		{{Name: "a", Subtasks: []checkpoint.Participant{nil}}},
	} {
		if _, err := checkpoint.NewCoordinator(context.Background(), checkpoint.Options{Storage: st, Operators: ops}); err == nil {
			t.Fatalf("operators %v accepted", ops)
		}
	}
}
