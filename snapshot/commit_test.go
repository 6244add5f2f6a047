package snapshot_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// Tests of the commit's invariants: coverage of every key group exactly
// once per operator, one checkpoint id, one max parallelism, and an
// exclusive create of the metadata.

// commitFails checks that Commit of cp fails with want, saying each of
// says, and writes nothing.
func commitFails(t *testing.T, cp *snapshot.Checkpoint, want error, says ...string) {
	t.Helper()
	st := storagetest.NewLocal(t)
	err := snapshot.Commit(context.Background(), st, cp)
	if !errors.Is(err, want) {
		t.Fatalf("Commit = %v, want %v", err, want)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if got := storagetest.WalkRoot(t, st.Root()); len(got) != 0 {
		t.Errorf("a refused commit wrote %v", got)
	}
	// The same checkpoint, stored by a build without the check, does not
	// decode.
	_, err = snapshot.DecodeMetadata(metaName, mustEncode(t, cp))
	if !errors.Is(err, snapshot.ErrCorrupt) || !errors.Is(err, want) {
		t.Errorf("DecodeMetadata = %v, want ErrCorrupt and %v", err, want)
	}
}

// TestCommitRefusesUncoveredKeyGroups guards against issue 12's first
// loss: two subtasks each committing checkpoint 1 with its own handle.
func TestCommitRefusesUncoveredKeyGroups(t *testing.T) {
	cp := sampleCheckpoint(7)
	cp.Handles = cp.Handles[:1] // [0, 64) of 128
	commitFails(t, cp, snapshot.ErrIncomplete, `operator "op"`, "[64, 128)")

	// Several gaps are all named; other operators are checked on their own.
	cp = sampleCheckpoint(7)
	other := sampleHandle("cccc", 7, 10, 20)
	other.Operator = "other"
	other2 := sampleHandle("dddd", 7, 30, 128)
	other2.Operator = "other"
	cp.Handles = append(cp.Handles, other, other2)
	commitFails(t, cp, snapshot.ErrIncomplete, `operator "other"`, "[0, 10), [20, 30)")
}

// TestCommitRefusesOverlappingKeyGroups: of one operator, every key group
// is covered exactly once, never by two handles.
// Guards issue 12 case 1: the commit checks coverage (here: no overlap).
func TestCommitRefusesOverlappingKeyGroups(t *testing.T) {
	cp := sampleCheckpoint(7)
	cp.Handles = append(cp.Handles, sampleHandle("cccc", 7, 32, 70))
	commitFails(t, cp, snapshot.ErrInconsistent, `operator "op"`, "[32, 70)", "more than one handle")

	// The same handle twice (one subtask's handle sent twice).
	cp = sampleCheckpoint(7)
	cp.Handles = append(cp.Handles, cp.Handles[1])
	commitFails(t, cp, snapshot.ErrInconsistent, "[64, 128)")
}

// TestCommitRefusesDisagreeingMaxParallelism: the handles of one operator
// agree on its max parallelism.
// Guards issue 12 case 1: the commit checks coverage (here: one max parallelism).
func TestCommitRefusesDisagreeingMaxParallelism(t *testing.T) {
	cp := sampleCheckpoint(7)
	h := sampleHandle("bbbb", 7, 64, 256)
	h.MaxParallelism = 256
	cp.Handles[1] = h
	commitFails(t, cp, snapshot.ErrInconsistent, "max parallelism", "128", "256")
}

// TestCompleteRefusesHandleOfAnotherCheckpoint guards issue 12's third
// loss: a handle of checkpoint 5 completed as checkpoint 6 made retention
// delete chk-5, and checkpoint 6 could not be restored.
func TestCompleteRefusesHandleOfAnotherCheckpoint(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	commitCheckpoint(t, st, 5)
	before := storagetest.WalkRoot(t, st.Root())
	cp := sampleCheckpoint(6)
	cp.Handles[1] = sampleCheckpoint(5).Handles[1]
	err := retention.Complete(ctx, st, cp, 1)
	if !errors.Is(err, snapshot.ErrInconsistent) || !strings.Contains(err.Error(), "belongs to checkpoint 5, not 6") {
		t.Fatalf("Complete with a handle of checkpoint 5 = %v", err)
	}
	if got := storagetest.WalkRoot(t, st.Root()); !slicesEqual(got, before) {
		t.Fatalf("a refused Complete changed the root:\n%v\nto\n%v", before, got)
	}
	if cp, err := snapshot.Latest(ctx, st); err != nil || cp.ID != 5 {
		t.Fatalf("Latest = %v, %v", cp, err)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// TestCheckCovers: Covers and CheckCovers, which a restore runs before
// reading anything, refuse handles that leave out key groups asked for,
// that hold nothing for the operator, that mix checkpoints or that carry
// unsafe names.
// Guards issue 12 cases 1 and 4 (a restore checks coverage and operator).
func TestCheckCovers(t *testing.T) {
	cp := sampleCheckpoint(7)
	for _, c := range []struct {
		op         string
		start, end int
		want       error
		says       string
	}{
		{"op", 0, 128, nil, ""},
		{"op", 60, 70, nil, ""},
		{"nobody", 0, 128, snapshot.ErrIncomplete, `no handle for operator "nobody" (the handles are of operators "op")`},
		{"op", 0, 129, nil, "not a range"},
		{"op", 5, 5, nil, "not a range"},
	} {
		err := cp.CheckCovers(c.op, c.start, c.end)
		switch {
		case c.says == "" && err != nil:
			t.Errorf("CheckCovers(%q, %d, %d) = %v", c.op, c.start, c.end, err)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.says) || (c.want != nil && !errors.Is(err, c.want))):
			t.Errorf("CheckCovers(%q, %d, %d) = %v, want %v saying %q", c.op, c.start, c.end, err, c.want, c.says)
		}
	}
	// Handles passed to a restore: a subset may cover the range asked for.
	hs := sampleCheckpoint(7).Handles
	if err := snapshot.Covers(hs[1:], "op", 64, 128); err != nil {
		t.Errorf("Covers of the second handle's own range: %v", err)
	}
	err := snapshot.Covers(hs[1:], "op", 32, 128)
	if !errors.Is(err, snapshot.ErrIncomplete) || !strings.Contains(err.Error(), "[32, 64)") {
		t.Errorf("Covers with a gap = %v", err)
	}
	mixed := []snapshot.Handle{hs[0], sampleCheckpoint(8).Handles[1]}
	if err := snapshot.Covers(mixed, "op", 0, 128); !errors.Is(err, snapshot.ErrInconsistent) {
		t.Errorf("Covers of handles of checkpoints 7 and 8 = %v", err)
	}
	bad := sampleCheckpoint(7).Handles
	bad[0].Shared = []snapshot.SharedFile{{FileRef: snapshot.FileRef{Name: "shared/../../x"}, LocalName: "x"}}
	if err := snapshot.Covers(bad, "op", 0, 128); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("Covers of a handle with an unsafe name = %v", err)
	}
	if err := snapshot.Covers(nil, "op", 0, 128); !errors.Is(err, snapshot.ErrIncomplete) || !strings.Contains(err.Error(), "no handle") {
		t.Errorf("Covers of no handles = %v", err)
	}
}

// TestCommitTwoCommittersGoroutines guards issue 12's second loss: of
// committers of one checkpoint id, exactly one wins, the others get
// ErrExist, and the winner's metadata stays.
func TestCommitTwoCommittersGoroutines(t *testing.T) {
	ctx := context.Background()
	for round := range 20 {
		st := storagetest.NewLocal(t)
		storagetest.PutHandleFiles(t, st, sampleCheckpoint(7))
		const n = 4
		errs := make([]error, n)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cp := sampleCheckpoint(7)
				cp.CreatedUnixMillis = int64(i)
				start.Wait()
				errs[i] = snapshot.Commit(ctx, st, cp)
			}()
		}
		start.Done()
		wg.Wait()
		winner := checkOneWinner(t, round, errs)
		cp, err := snapshot.Load(ctx, st, 7)
		if err != nil || cp.CreatedUnixMillis != int64(winner) {
			t.Fatalf("round %d: committer %d won, the metadata is %+v, %v", round, winner, cp, err)
		}
	}
}

// checkOneWinner checks exactly one of errs is nil and the others are
// ErrExist, and returns the winner.
func checkOneWinner(t *testing.T, round int, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("round %d: committers %d and %d both won", round, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, snapshot.ErrExist) || !strings.Contains(err.Error(), "already exists"):
			t.Fatalf("round %d: committer %d: %v, want ErrExist", round, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("round %d: nobody won: %v", round, errs)
	}
	return winner
}

const (
	commitChildRoot  = "PEBBLESTATE_COMMIT_CHILD_ROOT"
	commitChildIndex = "PEBBLESTATE_COMMIT_CHILD_INDEX"
)

// TestCommitChild is a committer process of TestCommitTwoCommittersProcesses.
// It says "ready", waits for the file "go" in its root's parent and
// commits checkpoint 7, then prints "won" or "lost: <error>".
func TestCommitChild(t *testing.T) {
	root := os.Getenv(commitChildRoot)
	if root == "" {
		t.Skip("run by TestCommitTwoCommittersProcesses")
	}
	i, _ := strconv.Atoi(os.Getenv(commitChildIndex))
	st, err := snapshot.NewLocal(root)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	// The parent wrote the handles' files.
	cp := sampleCheckpoint(7)
	cp.CreatedUnixMillis = int64(i)
	fmt.Println("ready")
	for {
		if _, err := os.Stat(filepath.Join(filepath.Dir(root), "go")); err == nil {
			break
		}
		time.Sleep(50 * time.Microsecond)
	}
	if err := snapshot.Commit(context.Background(), st, cp); err != nil {
		fmt.Println("lost:", err)
		return
	}
	fmt.Println("won")
}

// TestCommitTwoCommittersProcesses is TestCommitTwoCommittersGoroutines
// across processes: two processes commit one checkpoint id into one root.
// Guards issue 12 case 2 and the must-exist test "two committers of one id
// (processes)".
func TestCommitTwoCommittersProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	rounds := 5
	for round := range rounds {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		st, err := snapshot.NewLocal(root)
		if err != nil {
			t.Fatal(err)
		}
		storagetest.PutHandleFiles(t, st, sampleCheckpoint(7))
		const n = 2
		outs := make([]*bufio.Scanner, n)
		cmds := make([]*exec.Cmd, n)
		for i := range n {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCommitChild$", "-test.v=false")
			cmd.Env = append(os.Environ(), commitChildRoot+"="+root, commitChildIndex+"="+strconv.Itoa(i))
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds[i], outs[i] = cmd, bufio.NewScanner(stdout)
		}
		for i := range n {
			if !outs[i].Scan() || outs[i].Text() != "ready" {
				t.Fatalf("round %d: child %d: %q", round, i, outs[i].Text())
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, n)
		for i := range n {
			if !outs[i].Scan() {
				t.Fatalf("round %d: child %d said nothing", round, i)
			}
			switch line := outs[i].Text(); {
			case line == "won":
			case strings.HasPrefix(line, "lost: ") && strings.Contains(line, "already exists"):
				errs[i] = fmt.Errorf("%s: %w", line, snapshot.ErrExist)
			default:
				t.Fatalf("round %d: child %d: %s", round, i, line)
			}
			for outs[i].Scan() { // drain to EOF
			}
			if err := cmds[i].Wait(); err != nil {
				t.Fatalf("round %d: child %d: %v", round, i, err)
			}
		}
		winner := checkOneWinner(t, round, errs)
		cp, err := snapshot.Load(context.Background(), st, 7)
		if err != nil || cp.CreatedUnixMillis != int64(winner) {
			t.Fatalf("round %d: child %d won, the metadata is %+v, %v", round, winner, cp, err)
		}
	}
}

// staleList is storage whose List does not show checkpoint metadata yet,
// as when another committer's commit lands between Commit's check and its
// write.
type staleList struct{ snapshot.Storage }

func (s staleList) List(ctx context.Context, prefix string) ([]string, error) {
	if strings.HasPrefix(prefix, "chk") {
		return nil, nil
	}
	return s.Storage.List(ctx, prefix)
}

// TestCommitExclusiveWhenCheckRaces guards the commit's last step: even
// when the check for an existing checkpoint misses the other committer,
// the write of the metadata fails with ErrExist and the first stays.
// Guards issue 12 case 2: the commit's "already exists" check was a
// check-then-rename race.
func TestCommitExclusiveWhenCheckRaces(t *testing.T) {
	ctx := context.Background()
	local := storagetest.NewLocal(t)
	first := sampleCheckpoint(7)
	storagetest.PutHandleFiles(t, local, first)
	if err := snapshot.Commit(ctx, local, first); err != nil {
		t.Fatal(err)
	}
	second := sampleCheckpoint(7)
	second.CreatedUnixMillis++
	err := snapshot.Commit(ctx, staleList{local}, second)
	if !errors.Is(err, snapshot.ErrExist) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Commit = %v, want ErrExist", err)
	}
	cp, err := snapshot.Load(ctx, local, 7)
	if err != nil || cp.CreatedUnixMillis != first.CreatedUnixMillis {
		t.Fatalf("the first commit's metadata was replaced: %+v, %v", cp, err)
	}
}

// TestNilCheckpointIsAnError: library calls given no checkpoint return
// an error rather than panic.
func TestNilCheckpointIsAnError(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	var cp *snapshot.Checkpoint
	if err := snapshot.Commit(ctx, st, cp); err == nil {
		t.Error("Commit(nil) succeeded")
	}
	if err := retention.Complete(ctx, st, cp, 1); err == nil {
		t.Error("Complete(nil) succeeded")
	}
	if err := snapshot.Verify(ctx, st, cp); err == nil {
		t.Error("Verify(nil) succeeded")
	}
	if err := cp.Validate(); err == nil {
		t.Error("Validate of nil succeeded")
	}
	if err := cp.CheckCovers("op", 0, 1); !errors.Is(err, snapshot.ErrIncomplete) {
		t.Errorf("CheckCovers of nil = %v", err)
	}
}
