package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/opstate"
	"github.com/pebblestate/pebblestate/snapshot"
)

// TestInspectAndVerifyOperatorState: inspect lists a checkpoint's
// operator state, and verify reads its files and reports a damaged one.
func TestInspectAndVerifyOperatorState(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "chk")
	st, err := snapshot.NewLocal(root)
	opNoErr(t, err)
	op := checkpoint.Operator{Name: "src"}
	for i := range 2 {
		s, err := opstate.New(8, 2, i)
		opNoErr(t, err)
		opNoErr(t, s.SetPositionInt64(s.KeyGroups().Start, 42))
		op.Subtasks = append(op.Subtasks, checkpoint.OperatorParticipant(nil, s, nil))
	}
	c, err := checkpoint.NewCoordinator(ctx, checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{op}})
	opNoErr(t, err)
	_, err = c.Checkpoint(ctx)
	opNoErr(t, err)
	opNoErr(t, c.Close())

	code, stdout, stderr := runArgs("inspect", root)
	if code != 0 || !strings.Contains(stdout, `operator "src", subtask 1 of 2: operator state, key groups of 8`) {
		t.Fatalf("inspect: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runArgs("inspect", "-json", root)
	if code != 0 || !strings.Contains(stdout, `"operator_states"`) {
		t.Fatalf("inspect -json: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runArgs("verify", root); code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	cp, err := snapshot.Load(ctx, st, 1)
	opNoErr(t, err)
	name := cp.OperatorStates[0].Name
	p := filepath.Join(root, filepath.FromSlash(name))
	b, err := os.ReadFile(p)
	opNoErr(t, err)
	b[30] ^= 1
	opNoErr(t, os.WriteFile(p, b, 0o644))
	if code, stdout, stderr := runArgs("verify", root); code != 1 || !strings.Contains(stderr, filepath.Base(name)) {
		t.Fatalf("verify of a damaged operator state file: exit %d\n%s%s", code, stdout, stderr)
	}
	// A missing one is reported too.
	gone := cp.OperatorStates[1].Name
	opNoErr(t, os.Remove(filepath.Join(root, filepath.FromSlash(gone))))
	if code, stdout, stderr := runArgs("verify", root); code != 1 || !strings.Contains(stderr, filepath.Base(gone)) || !strings.Contains(stderr, filepath.Base(name)) {
		t.Fatalf("verify of a missing operator state file: exit %d\n%s%s", code, stdout, stderr)
	}
}

func opNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
