package snapshot_test

import (
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// Tests of the _metadata section of operator state: its rules, and that
// verification, retention and recovery treat its files as the
// checkpoint's.

// withOperatorState adds to cp the operator state of a source "src" at
// parallelism 2 (max parallelism 4) and of cp's operator "op" at 1.
func withOperatorState(cp *snapshot.Checkpoint) *snapshot.Checkpoint {
	ref := func(op string, i, p int, writer string) snapshot.OperatorStateRef {
		return snapshot.OperatorStateRef{
			Operator: op, Subtask: i, Parallelism: p, MaxParallelism: 4,
			FileRef: snapshot.FileRef{Name: snapshot.Dir(cp.ID) + "/op-" + writer + ".dat", Size: 40 + int64(i), CRC32C: 0xabcd0000 + uint32(i)},
		}
	}
	cp.OperatorStates = []snapshot.OperatorStateRef{
		ref("src", 1, 2, "b1"), ref("src", 0, 2, "b0"), ref("op", 0, 1, "c0"),
	}
	return cp
}

func TestOperatorStateRefsValidate(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(cp *snapshot.Checkpoint)
		want  error
		says  string
	}{
		{"missing first subtask", func(cp *snapshot.Checkpoint) { cp.OperatorStates = cp.OperatorStates[:1:1] }, snapshot.ErrIncomplete, "subtask 0 of 2 is missing"},
		{"missing last subtask", func(cp *snapshot.Checkpoint) { cp.OperatorStates = cp.OperatorStates[1:] }, snapshot.ErrIncomplete, "subtask 1 of 2 is missing"},
		{"missing subtasks", func(cp *snapshot.Checkpoint) {
			cp.OperatorStates[0].Parallelism, cp.OperatorStates[1].Parallelism = 4, 4
		}, snapshot.ErrIncomplete, "subtasks 2 to 3 of 4 are missing"},
		{"doubled subtask", func(cp *snapshot.Checkpoint) { cp.OperatorStates[0].Subtask = 0 }, snapshot.ErrInconsistent, "appears twice"},
		{"parallelism disagrees", func(cp *snapshot.Checkpoint) {
			cp.OperatorStates[0].Parallelism = 3
		}, snapshot.ErrInconsistent, "disagree"},
		{"max parallelism disagrees", func(cp *snapshot.Checkpoint) { cp.OperatorStates[0].MaxParallelism = 8 }, snapshot.ErrInconsistent, "disagree"},
		{"file named twice", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].Name = cp.OperatorStates[0].Name }, snapshot.ErrInconsistent, "named twice"},
		{"no operator", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].Operator = "" }, nil, "no operator"},
		{"subtask out of range", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].Subtask = 1 }, nil, "out of range"},
		{"negative subtask", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].Subtask = -1 }, nil, "out of range"},
		{"parallelism above max", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].Parallelism = 5 }, nil, "out of range"},
		{"max parallelism 0", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].MaxParallelism = 0 }, nil, "out of range"},
		{"max parallelism too large", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].MaxParallelism = 1<<15 + 1 }, nil, "out of range"},
		{"name in another checkpoint", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].Name = "chk-6/op-c0.dat" }, nil, "not under chk-7/"},
		{"name escapes", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].Name = "chk-7/../../etc/passwd" }, nil, "not a clean path"},
		{"empty name", func(cp *snapshot.Checkpoint) { cp.OperatorStates[2].Name = "" }, nil, "empty"},
	}
	if err := withOperatorState(sampleCheckpoint(7)).Validate(); err != nil {
		t.Fatalf("the sample does not validate: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := withOperatorState(sampleCheckpoint(7))
			c.spoil(cp)
			err := cp.Validate()
			if err == nil || !strings.Contains(err.Error(), c.says) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("Validate: %v; want %v saying %q", err, c.want, c.says)
			}
			// Decoding refuses it as corrupt, and Commit writes nothing.
			_, err = snapshot.DecodeMetadata(metaName, frame("PBSTMETA", 2, mustJSON(t, cp)))
			wantCorrupt(t, err, metaName, c.says)
			st := storagetest.NewLocal(t)
			if err := snapshot.Commit(context.Background(), st, cp); err == nil {
				t.Fatal("Commit accepted it")
			}
			if ids := storagetest.Completed(t, st); len(ids) != 0 {
				t.Fatalf("Commit wrote checkpoints %v", ids)
			}
		})
	}
}

// TestOperatorStateOldMetadataReads: metadata of version 1, without the
// section, reads as before: no operator state.
func TestOperatorStateOldMetadataReads(t *testing.T) {
	enc := mustEncode(t, sampleCheckpoint(7))
	if v := enc[11]; v != 1 {
		t.Fatalf("a checkpoint without operator state is written as version %d, want 1", v)
	}
	cp, err := snapshot.DecodeMetadata(metaName, enc)
	if err != nil {
		t.Fatal(err)
	}
	if cp.OperatorStates != nil || strings.Contains(string(enc), "operator_states") {
		t.Fatalf("operator states %v in %q", cp.OperatorStates, enc)
	}
	// A checkpoint with operator state is version 2, which builds that
	// read only version 1 refuse (and keep) rather than restore without it.
	if v := mustEncode(t, withOperatorState(sampleCheckpoint(7)))[11]; v != 2 {
		t.Fatalf("a checkpoint with operator state is written as version %d, want 2", v)
	}
}

func TestOperatorStateClaimed(t *testing.T) {
	cp := withOperatorState(sampleCheckpoint(7)) // keyed "op"; operator state of "op" and "src"
	if err := snapshot.CheckClaimed(cp, []string{"op"}, false); !errors.Is(err, snapshot.ErrNonRestoredState) || !strings.Contains(err.Error(), `"src"`) {
		t.Fatalf("CheckClaimed without src: %v", err)
	}
	if err := snapshot.CheckClaimed(cp, []string{"op"}, true); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.CheckClaimed(cp, []string{"src", "op"}, false); err != nil {
		t.Fatal(err)
	}
	if got := snapshot.OperatorStateOperators(cp); !slices.Equal(got, []string{"op", "src"}) {
		t.Fatalf("OperatorStateOperators: %q", got)
	}
	if got := snapshot.OperatorStatesOf(cp, "src"); len(got) != 2 || got[0].Subtask != 0 || got[1].Subtask != 1 {
		t.Fatalf("OperatorStatesOf: %+v", got)
	}
}

// commitWithOperatorState commits checkpoint id into st with the sample
// handles and operator state, writing every file with real checksums.
func commitWithOperatorState(t *testing.T, st snapshot.Storage, id int64) *snapshot.Checkpoint {
	t.Helper()
	cp := withOperatorState(sampleCheckpoint(id))
	for i := range cp.Handles {
		cp.Handles[i].Files[0] = putRef(t, st, cp.Handles[i].Files[0].Name, "keyed "+cp.Handles[i].InstanceID)
	}
	for i := range cp.OperatorStates {
		cp.OperatorStates[i].FileRef = putRef(t, st, cp.OperatorStates[i].Name, "operator state "+cp.OperatorStates[i].Name)
	}
	if err := snapshot.Commit(context.Background(), st, cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

func putRef(t *testing.T, st snapshot.Storage, name, data string) snapshot.FileRef {
	t.Helper()
	ref := storagetest.Put(t, st, name, []byte(data))
	ref.CRC32C = crc32.Checksum([]byte(data), crc32.MakeTable(crc32.Castagnoli))
	return ref
}

func TestOperatorStateVerify(t *testing.T) {
	ctx := context.Background()
	for _, what := range []string{"intact", "flipped", "truncated", "missing"} {
		t.Run(what, func(t *testing.T) {
			st := storagetest.NewLocal(t)
			cp := commitWithOperatorState(t, st, 7)
			if got := snapshot.Files(cp); len(got) != 5 || got[4].Name != cp.OperatorStates[2].Name {
				t.Fatalf("Files: %+v", got)
			}
			name := cp.OperatorStates[1].Name
			p := filepath.Join(st.Root(), filepath.FromSlash(name))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			switch what {
			case "flipped":
				b[3] ^= 4
				err = os.WriteFile(p, b, 0o644)
			case "truncated":
				err = os.WriteFile(p, b[:len(b)-1], 0o644)
			case "missing":
				err = os.Remove(p)
			}
			if err != nil {
				t.Fatal(err)
			}
			err = snapshot.Verify(ctx, st, cp)
			switch {
			case what == "intact" && err != nil:
				t.Fatal(err)
			case what == "missing" && (!errors.Is(err, snapshot.ErrNotExist) || !strings.Contains(err.Error(), filepath.Base(name))):
				t.Fatalf("Verify of a checkpoint missing %s: %v", name, err)
			case what == "flipped" || what == "truncated":
				wantCorrupt(t, err, filepath.Base(name))
			}
		})
	}
}

// TestOperatorStateRetainAndRecover: retention deletes operator state
// files with their checkpoint, and Recover deletes those of a checkpoint
// that never committed.
func TestOperatorStateRetainAndRecover(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	first := commitWithOperatorState(t, st, 1)
	second := commitWithOperatorState(t, st, 2)
	// Checkpoint 3 crashed after writing its operator state.
	storagetest.Put(t, st, "chk-3/op-dead.dat", []byte("debris"))
	if err := retention.Retain(ctx, st, 1); err != nil {
		t.Fatal(err)
	}
	names := storagetest.List(t, st, "")
	for _, r := range first.OperatorStates {
		if slices.Contains(names, r.Name) {
			t.Fatalf("retention kept %s of discarded checkpoint 1: %q", r.Name, names)
		}
	}
	for _, r := range second.OperatorStates {
		if !slices.Contains(names, r.Name) {
			t.Fatalf("retention deleted %s of retained checkpoint 2: %q", r.Name, names)
		}
	}
	if !slices.Contains(names, "chk-3/op-dead.dat") {
		t.Fatalf("retention deleted the files of checkpoint 3, which may be in flight: %q", names)
	}
	if err := retention.Recover(ctx, st); err != nil {
		t.Fatal(err)
	}
	if names := storagetest.List(t, st, "chk-3/"); len(names) != 0 {
		t.Fatalf("Recover left %q", names)
	}
	if err := snapshot.Verify(ctx, st, second); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, cp *snapshot.Checkpoint) []byte {
	t.Helper()
	b, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCommitChecksOperatorStateFiles: a checkpoint whose operator state
// file is missing, or of another size than its reference records, does
// not commit, and the error names the file; nothing is written.
func TestCommitChecksOperatorStateFiles(t *testing.T) {
	ctx := context.Background()
	for _, what := range []string{"missing", "short", "long"} {
		t.Run(what, func(t *testing.T) {
			st := storagetest.NewLocal(t)
			cp := withOperatorState(sampleCheckpoint(7))
			for i := range cp.Handles {
				cp.Handles[i].Files[0] = putRef(t, st, cp.Handles[i].Files[0].Name, "keyed "+cp.Handles[i].InstanceID)
			}
			for i := range cp.OperatorStates {
				r := &cp.OperatorStates[i]
				data := "operator state " + r.Name
				r.FileRef = putRef(t, st, r.Name, data)
				if i != 1 {
					continue
				}
				p := filepath.Join(st.Root(), filepath.FromSlash(r.Name))
				var err error
				switch what {
				case "missing":
					err = os.Remove(p)
				case "short":
					err = os.WriteFile(p, []byte(data[:len(data)-1]), 0o644)
				case "long":
					err = os.WriteFile(p, []byte(data+"!"), 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			name := cp.OperatorStates[1].Name
			before := storagetest.List(t, st, "")
			err := snapshot.Commit(ctx, st, cp)
			switch {
			case err == nil:
				t.Fatalf("Commit of a checkpoint whose operator state file %s is %s succeeded", name, what)
			case strings.Count(err.Error(), filepath.Base(name)) != 1:
				t.Fatalf("Commit = %v; want the error to name %s once", err, name)
			case what == "missing" && !errors.Is(err, snapshot.ErrNotExist):
				t.Fatalf("Commit = %v; want ErrNotExist", err)
			case what != "missing" && !errors.Is(err, snapshot.ErrCorrupt):
				t.Fatalf("Commit = %v; want ErrCorrupt", err)
			}
			if after := storagetest.List(t, st, ""); !slices.Equal(after, before) {
				t.Fatalf("a refused commit changed the storage: %q to %q", before, after)
			}
			if ids := storagetest.Completed(t, st); len(ids) != 0 {
				t.Fatalf("completed checkpoints after a refused commit: %v", ids)
			}
		})
	}
}
