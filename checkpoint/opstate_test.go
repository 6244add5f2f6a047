package checkpoint_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// sourceOperator returns an operator "src" of p subtasks with operator
// state only, each holding a split list of its index and the position
// of its first key group.
func sourceOperator(t *testing.T, p int) (checkpoint.Operator, []*opstate.State) {
	t.Helper()
	op := checkpoint.Operator{Name: "src"}
	var states []*opstate.State
	for i := range p {
		s, err := opstate.New(testMaxParallelism, p, i)
		noErr(t, err)
		l, err := s.List("splits", opstate.Split)
		noErr(t, err)
		l.Add([]byte{byte('a' + i)})
		noErr(t, s.SetPositionInt64(s.KeyGroups().Start, int64(100+i)))
		states = append(states, s)
		op.Subtasks = append(op.Subtasks, checkpoint.OperatorParticipant(nil, s, nil))
	}
	return op, states
}

func opFiles(t *testing.T, st snapshot.Storage) []string {
	t.Helper()
	names, err := st.List(context.Background(), "chk-")
	noErr(t, err)
	var out []string
	for _, n := range names {
		if strings.Contains(n, "/op-") {
			out = append(out, n)
		}
	}
	return out
}

// TestOperatorStateDamagedFile: a flipped bit or a truncation of an
// operator state file is ErrCorrupt naming the file, from Verify and from
// the restore.
func TestOperatorStateDamagedFile(t *testing.T) {
	ctx := context.Background()
	for _, what := range []string{"flipped", "truncated"} {
		t.Run(what, func(t *testing.T) {
			st := newStorage(t)
			op, _ := sourceOperator(t, 2)
			c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{op}})
			noErr(t, err)
			_, err = c.Checkpoint(ctx)
			noErr(t, err)
			noErr(t, c.Close())
			r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: []string{"src"}})
			noErr(t, err)
			name := r.Checkpoint.OperatorStates[1].Name
			p := filepath.Join(st.Root(), filepath.FromSlash(name))
			b, err := os.ReadFile(p)
			noErr(t, err)
			if what == "flipped" {
				b[len(b)/2] ^= 0x20
			} else {
				b = b[:len(b)-5]
			}
			noErr(t, os.WriteFile(p, b, 0o644))
			for _, err := range []error{
				snapshot.Verify(ctx, st, r.Checkpoint),
				func() error { _, err := r.OperatorState(ctx, "src", 0, 3); return err }(),
			} {
				if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(name)) {
					t.Fatalf("error %v; want ErrCorrupt naming %s", err, name)
				}
			}
		})
	}
}

// blocked is a participant whose keyed part waits for release, then
// fails.
type blocked struct{ release chan struct{} }

var errBlocked = errors.New("blocked part failed")

func (b blocked) SnapshotState(int64, snapshot.Storage) (checkpoint.SubtaskState, error) {
	return checkpoint.SubtaskState{Keyed: b}, nil
}
func (blocked) NotifyCheckpointComplete(int64) error { return nil }
func (blocked) NotifyCheckpointAborted(context.Context, int64, snapshot.Storage) error {
	return nil
}
func (b blocked) Run(ctx context.Context) (snapshot.Handle, error) {
	select {
	case <-b.release:
		return snapshot.Handle{}, errBlocked
	case <-ctx.Done():
		return snapshot.Handle{}, context.Cause(ctx)
	}
}
func (blocked) Release() {}

// TestOperatorStateAbortLeavesNothing: a checkpoint aborted after its
// operator state files were written deletes them; one whose operator
// state is of the wrong subtask aborts before writing anything.
func TestOperatorStateAbortLeavesNothing(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	src, _ := sourceOperator(t, 3)
	bad := blocked{release: make(chan struct{})}
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{
		src, {Name: "bad", Subtasks: []checkpoint.Participant{bad}},
	}})
	noErr(t, err)
	defer c.Close()
	done := make(chan error, 1)
	go func() { _, err := c.Checkpoint(ctx); done <- err }()
	// Wait until the three files are committed, then fail the other part.
	for len(opFiles(t, st)) < 3 {
		select {
		case err := <-done:
			t.Fatalf("checkpoint ended before its operator state was written: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	close(bad.release)
	if err := <-done; !errors.Is(err, checkpoint.ErrAborted) || !errors.Is(err, errBlocked) {
		t.Fatalf("checkpoint: %v", err)
	}
	if got := onDisk(t, st.Root()); len(got) != 0 && !(len(got) == 1 && got[0] == "shared/") {
		t.Fatalf("the aborted checkpoint left %q", got)
	}

	// Operator state of the wrong subtask: subtask 0 hands in subtask 1's.
	c2, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{src}})
	noErr(t, err)
	defer c2.Close()
	wrong, err := opstate.New(testMaxParallelism, 3, 1)
	noErr(t, err)
	sn, err := wrong.Snapshot()
	noErr(t, err)
	p, err := c2.Trigger(ctx)
	noErr(t, err)
	noErr(t, p.Acknowledge(checkpoint.Subtask{Operator: "src", Index: 0}, checkpoint.SubtaskState{Operator: sn}))
	_, err = p.Wait(ctx)
	if !errors.Is(err, checkpoint.ErrAborted) || !strings.Contains(err.Error(), "subtask 1 of 3, not 0 of 3") {
		t.Fatalf("wrong subtask: %v", err)
	}
	if got := opFiles(t, st); len(got) != 0 {
		t.Fatalf("left %q", got)
	}
}

// TestOperatorStateRestartContinues: a job whose subtasks have keyed and
// operator state checkpoints, restarts from its latest checkpoint at
// another parallelism, and its next checkpoint, with a higher id, holds
// the new operator state beside the keyed state.
func TestOperatorStateRestartContinues(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	specs := []opSpec{{"counts", 2}}
	j := openJob(t, "", specs, false)
	j.write(t, 1)

	// Each subtask keeps, per key group it owns, the round it last
	// checkpointed at (filled at the barrier), and a union list of rounds.
	round := int64(1)
	fill := func(s *opstate.State) error {
		for kg := s.KeyGroups().Start; kg < s.KeyGroups().End; kg++ {
			if err := s.SetPositionInt64(kg, round); err != nil {
				return err
			}
		}
		l, err := s.List("rounds", opstate.Union)
		if err != nil {
			return err
		}
		l.Add([]byte{byte(round)})
		return nil
	}
	operators := func(j *job, states []*opstate.State) []checkpoint.Operator {
		op := checkpoint.Operator{Name: "counts"}
		for i, b := range j.backends[0] {
			op.Subtasks = append(op.Subtasks, checkpoint.OperatorParticipant(b, states[i], fill))
		}
		return []checkpoint.Operator{op}
	}
	var states []*opstate.State
	for i := range 2 {
		s, err := opstate.New(testMaxParallelism, 2, i)
		noErr(t, err)
		states = append(states, s)
	}
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: operators(j, states)})
	noErr(t, err)
	stats, err := c.Checkpoint(ctx)
	noErr(t, err)
	for _, ss := range stats.Subtasks {
		if ss.CheckpointedSize == 0 {
			t.Fatalf("stats of %v: nothing written", ss.Subtask)
		}
	}
	noErr(t, c.Close())
	j.close(t)

	// Restart at parallelism 3.
	r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: []string{"counts"}})
	noErr(t, err)
	if len(r.Checkpoint.Handles) != 2 || len(r.Checkpoint.OperatorStates) != 2 || !r.HasState("counts") || !r.HasOperatorState("counts") {
		t.Fatalf("checkpoint %d: %d handles, %d operator states", r.Checkpoint.ID, len(r.Checkpoint.Handles), len(r.Checkpoint.OperatorStates))
	}
	specs = []opSpec{{"counts", 3}}
	j2 := restoreJob(t, r, specs, false)
	j2.check(t, 1)
	states = nil
	for i := range 3 {
		s, err := r.OperatorState(ctx, "counts", i, 3)
		noErr(t, err)
		for kg := s.KeyGroups().Start; kg < s.KeyGroups().End; kg++ {
			if v, ok, err := s.PositionInt64(kg); err != nil || !ok || v != 1 {
				t.Fatalf("restored subtask %d: position of key group %d: %d %v %v", i, kg, v, ok, err)
			}
		}
		states = append(states, s)
	}
	c2, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: operators(j2, states), Restored: r})
	noErr(t, err)
	j2.write(t, 2)
	round = 2
	stats, err = c2.Checkpoint(ctx)
	noErr(t, err)
	if stats.ID <= r.Checkpoint.ID {
		t.Fatalf("checkpoint id %d after restoring %d", stats.ID, r.Checkpoint.ID)
	}
	noErr(t, c2.Close())
	checkNoDebris(t, st)

	// The new checkpoint holds the new state; restore it at 1.
	r2, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: []string{"counts"}})
	noErr(t, err)
	if r2.Checkpoint.ID != stats.ID || len(r2.Checkpoint.OperatorStates) != 3 {
		t.Fatalf("latest %d with %d operator states", r2.Checkpoint.ID, len(r2.Checkpoint.OperatorStates))
	}
	j3 := restoreJob(t, r2, []opSpec{{"counts", 1}}, false)
	j3.check(t, 2)
	s, err := r2.OperatorState(ctx, "counts", 0, 1)
	noErr(t, err)
	for kg := range testMaxParallelism {
		if v, ok, err := s.PositionInt64(kg); err != nil || !ok || v != 2 {
			t.Fatalf("position of key group %d: %d %v %v", kg, v, ok, err)
		}
	}
	l, err := s.List("rounds", opstate.Union)
	noErr(t, err)
	// Round 1 by both old subtasks, restored into each of the three, then
	// round 2 by each: the union list holds every subtask's history.
	if got := string(joinEntries(l.Entries())); got != "\x01\x01\x02\x01\x01\x02\x01\x01\x02" {
		t.Fatalf("union list %q", got)
	}
	if _, err := r2.OperatorState(ctx, "other", 0, 1); !errors.Is(err, snapshot.ErrIncomplete) {
		t.Fatalf("operator state of an operator without: %v", err)
	}
}

func joinEntries(es [][]byte) []byte {
	var out []byte
	for _, e := range es {
		out = append(out, e...)
	}
	return out
}

// TestOperatorStateMissingFileDoesNotCommit: an operator state file that
// is gone when the coordinator commits (deleted under it) makes the
// checkpoint abort, naming the file, instead of committing metadata that
// cannot be restored; the abort deletes the other files.
func TestOperatorStateMissingFileDoesNotCommit(t *testing.T) {
	ctx := context.Background()
	st := newStorage(t)
	op, _ := sourceOperator(t, 3)
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{op}})
	noErr(t, err)
	defer c.Close()
	var gone string
	checkpoint.SetHook(c, func(step string, id int64) {
		if step != "commit" {
			return
		}
		files := opFiles(t, st)
		if len(files) != 3 {
			t.Errorf("operator state files at commit: %q", files)
			return
		}
		gone = files[1]
		if err := st.Delete(ctx, gone); err != nil {
			t.Error(err)
		}
	})
	_, err = c.Checkpoint(ctx)
	if !errors.Is(err, checkpoint.ErrAborted) || !errors.Is(err, snapshot.ErrNotExist) || !strings.Contains(err.Error(), filepath.Base(gone)) {
		t.Fatalf("checkpoint missing operator state file %s: %v", gone, err)
	}
	if ids, err := snapshot.Completed(ctx, st); err != nil || len(ids) != 0 {
		t.Fatalf("completed checkpoints: %v, %v", ids, err)
	}
	if got := opFiles(t, st); len(got) != 0 {
		t.Fatalf("the aborted checkpoint left %q", got)
	}
}
