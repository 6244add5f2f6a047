package checkpoint_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Crash tests: a child process (this test binary, running
// TestCoordinatorCrashChild) restores the job from the latest checkpoint
// of a root, or opens it empty, and takes checkpoints, each of the values
// of its id; at one step of a commit it reports the step and stops there,
// and the parent kills it with SIGKILL. The parent then checks that the
// latest checkpoint restores to its own values, keyed and operator state
// alike (crashSource), and that the next
// checkpoint, with its retention, leaves in the root only what the
// remaining checkpoints reference.

const (
	crashEnvDir  = "PEBBLESTATE_COORD_CRASH_DIR"
	crashEnvStep = "PEBBLESTATE_COORD_CRASH_STEP"
	crashEnvMode = "PEBBLESTATE_COORD_CRASH_MODE"

	crashRounds = 3 // checkpoints that complete before the one killed
)

var (
	crashOps   = []opSpec{{"counts", 2}, {"sums", 3}}
	crashNames = []string{"counts", "sums", "src"}
)

// crashSource returns the crash test's source "src", two subtasks with
// operator state only: at each barrier each sets the position of every
// key group it owns to *id, the id of the checkpoint being taken. Restored
// from r (nil: empty), every position must hold r's id, as every key of
// the keyed operators does: the offsets and the state they produced are
// one checkpoint.
func crashSource(ctx context.Context, r *checkpoint.Restored, id *int64) (checkpoint.Operator, error) {
	op := checkpoint.Operator{Name: "src"}
	for i := range 2 {
		var s *opstate.State
		var err error
		if r == nil {
			s, err = opstate.New(testMaxParallelism, 2, i)
		} else {
			s, err = r.OperatorState(ctx, "src", i, 2)
		}
		if err != nil {
			return op, err
		}
		for kg := s.KeyGroups().Start; r != nil && kg < s.KeyGroups().End; kg++ {
			if v, ok, err := s.PositionInt64(kg); err != nil || !ok || v != r.Checkpoint.ID {
				return op, fmt.Errorf("restored source subtask %d: position of key group %d is %d (%v, %v), want %d", i, kg, v, ok, err, r.Checkpoint.ID)
			}
		}
		op.Subtasks = append(op.Subtasks, checkpoint.OperatorParticipant(nil, s, func(s *opstate.State) error {
			for kg := s.KeyGroups().Start; kg < s.KeyGroups().End; kg++ {
				if err := s.SetPositionInt64(kg, *id); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	return op, nil
}

// TestCoordinatorCrashChild is the child of TestCoordinatorCrash; it is
// skipped unless the parent set its environment.
func TestCoordinatorCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("the child of TestCoordinatorCrash; not run on its own")
	}
	if err := crashChild(t, dir, os.Getenv(crashEnvStep), os.Getenv(crashEnvMode) == "incremental"); err != nil {
		fmt.Printf("error %v\n", err)
		t.Fatal(err)
	}
}

func crashChild(t *testing.T, dir, step string, incremental bool) error {
	ctx := context.Background()
	st, err := snapshot.NewLocal(filepath.Join(dir, "root"))
	if err != nil {
		return err
	}
	var j *job
	opts := checkpoint.Options{Storage: st}
	r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: crashNames, Mode: backend.Claim})
	switch {
	case errors.Is(err, snapshot.ErrNoCheckpoint):
		r = nil
		j = openJob(t, "", crashOps, incremental)
	case err != nil:
		return err
	default:
		j = restoreJob(t, r, crashOps, incremental)
		j.check(t, r.Checkpoint.ID)
		opts.Restored = r
	}
	var cur int64
	src, err := crashSource(ctx, r, &cur)
	if err != nil {
		return err
	}
	opts.Operators = append(j.operators(), src)
	c, err := checkpoint.NewCoordinator(ctx, opts)
	if err != nil {
		return err
	}
	round := 0
	checkpoint.SetHook(c, func(s string, id int64) {
		if round == crashRounds && s == step {
			fmt.Printf("stopped %s %d\n", s, id)
			time.Sleep(time.Hour) // until killed
		}
	})
	for ; ; round++ {
		if step != "random" && round > crashRounds {
			return errors.New("the hook did not stop the child")
		}
		id := c.NextID()
		j.write(t, id)
		cur = id
		if step == "random" && round == crashRounds {
			fmt.Printf("stopped random %d\n", id)
		}
		if _, err := c.Checkpoint(ctx); err != nil {
			return err
		}
	}
}

// TestCoordinatorCrash kills a child with SIGKILL at each step of a commit
// (before the metadata is written, after it, before retention) and at a
// random moment while it checkpoints, in both snapshot modes.
func TestCoordinatorCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	forEachMode(t, func(t *testing.T, incremental bool) {
		ctx := context.Background()
		dir := t.TempDir()
		st, err := snapshot.NewLocal(filepath.Join(dir, "root"))
		noErr(t, err)
		mode := map[bool]string{false: "full", true: "incremental"}[incremental]
		steps := []string{"commit", "committed", "retain", "random", "commit"}
		if raceEnabled() {
			steps = []string{"commit", "retain"} // each round is several times slower
		}
		for _, step := range steps {
			stopped := crashRun(t, dir, step, mode)
			r, err := checkpoint.LatestCheckpoint(ctx, st, checkpoint.RestoreOptions{Operators: crashNames, Mode: backend.Claim})
			noErr(t, err)
			want := stopped
			if step == "commit" {
				want = stopped - 1 // killed before its metadata
			}
			if step != "random" && r.Checkpoint.ID != want {
				t.Fatalf("step %s, stopped at checkpoint %d: latest is %d, want %d", step, stopped, r.Checkpoint.ID, want)
			}
			j := restoreJob(t, r, crashOps, incremental)
			j.check(t, r.Checkpoint.ID)
			var cur int64
			src, err := crashSource(ctx, r, &cur)
			noErr(t, err)
			c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: append(j.operators(), src), Restored: r})
			noErr(t, err)
			// Ids continue above whatever the killed checkpoint wrote (at
			// a random moment, it may have written nothing yet).
			if next := c.NextID(); next <= stopped && (step != "random" || next < stopped) {
				t.Fatalf("step %s: next id %d reuses the killed checkpoint's %d", step, next, stopped)
			}
			j.write(t, c.NextID())
			cur = c.NextID()
			stats, err := c.Checkpoint(ctx)
			noErr(t, err)
			noErr(t, c.Close())
			checkNoDebris(t, st)
			if got := completed(t, st); len(got) != 1 || got[0] != stats.ID {
				t.Fatalf("step %s: completed %v, want [%d] (Claim: the restored checkpoint is not kept)", step, got, stats.ID)
			}
			j.close(t)
		}
	})
}

// crashRun runs the child until it reports it stopped at step, kills it
// with SIGKILL and returns the checkpoint id it stopped at.
func crashRun(t *testing.T, dir, step, mode string) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCoordinatorCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvStep+"="+step, crashEnvMode+"="+mode)
	out, err := cmd.StdoutPipe()
	noErr(t, err)
	cmd.Stderr = os.Stderr
	noErr(t, cmd.Start())
	defer func() { _ = cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "error "); ok {
			t.Fatalf("child: %s", rest)
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "stopped" || f[1] != step {
			continue
		}
		id, err := strconv.ParseInt(f[2], 10, 64)
		noErr(t, err)
		if step == "random" {
			time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		}
		noErr(t, cmd.Process.Kill()) // SIGKILL
		_ = cmd.Wait()
		return id
	}
	t.Fatalf("child ended without stopping at %s: %v", step, sc.Err())
	return 0
}
