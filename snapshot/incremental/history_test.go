package incremental_test

import (
	"context"
	"maps"
	"path/filepath"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

const histWriter = "ab"

// histHandle is the handle of writer histWriter's incremental checkpoint
// id, with one private file and the shared files of the local names.
func histHandle(id int64, locals ...string) snapshot.Handle {
	h := snapshot.Handle{
		Operator: "op", InstanceID: "cd", CheckpointID: id, Kind: snapshot.KindIncremental,
		MaxParallelism: 4, KeyGroupStart: 0, KeyGroupEnd: 4, KeyCodec: "string",
		Files: []snapshot.FileRef{{Name: incremental.PrivateDir(id, histWriter) + "/MANIFEST-000001"}},
	}
	for _, l := range locals {
		h.Shared = append(h.Shared, snapshot.SharedFile{FileRef: snapshot.FileRef{Name: snapshot.SharedName(histWriter, id, l)}, LocalName: l})
	}
	return h
}

func locals(m map[string]snapshot.SharedFile) map[string]string {
	out := make(map[string]string, len(m))
	for l, f := range m {
		out[l] = f.Name
	}
	return out
}

// TestHistory walks the life of an instance's uploads: nothing is reused
// before a completion, only the last completed checkpoint's files are,
// an abort forgets, and a late completion of an older id changes nothing.
func TestHistory(t *testing.T) {
	root := incLocal(t)
	h := incremental.NewHistory()
	if r := h.Reusable(root); len(r) != 0 || h.Base() != -1 {
		t.Fatalf("new history: reusable %v, base %d; want nothing, -1", r, h.Base())
	}
	h.Record(1, root, histHandle(1, "000001.sst", "000002.sst"))
	if r := h.Reusable(root); len(r) != 0 {
		t.Fatalf("before completion: reusable %v; want nothing (1 may be aborted)", r)
	}
	h.Complete(1)
	want := map[string]string{
		"000001.sst": snapshot.SharedName(histWriter, 1, "000001.sst"),
		"000002.sst": snapshot.SharedName(histWriter, 1, "000002.sst"),
	}
	if got := locals(h.Reusable(root)); !maps.Equal(got, want) || h.Base() != 1 {
		t.Fatalf("after Complete(1): reusable %v, base %d; want %v, 1", got, h.Base(), want)
	}
	h.Record(2, root, histHandle(2, "000003.sst"))
	h.Abort(2)
	h.Complete(2) // aborted: not recorded any more
	if h.Base() != 1 {
		t.Fatalf("Complete of an aborted checkpoint moved the base to %d", h.Base())
	}
	h.Record(3, root, histHandle(3, "000004.sst"))
	h.Record(4, root, histHandle(4, "000005.sst"))
	h.Complete(4) // subsumes 3
	h.Complete(3) // late: older than the base
	if got := h.Reusable(root); h.Base() != 4 || len(got) != 1 || got["000005.sst"].Name != snapshot.SharedName(histWriter, 4, "000005.sst") {
		t.Fatalf("after Complete(4), Complete(3): base %d, reusable %v; want 4 and its one file", h.Base(), locals(got))
	}
	h.Seed(9, root, histHandle(9, "000010.sst"))
	if h.Base() != 9 || len(h.Reusable(root)) != 1 {
		t.Fatalf("after Seed(9): base %d, reusable %v", h.Base(), locals(h.Reusable(root)))
	}
}

// TestHistoryReusesOnlyInItsRoot guards the safety issue's case 7: after
// a restore, the first checkpoint into another root failed with "shared
// file ... is missing", because it referenced the restored root's files.
// A file can only be reused by a checkpoint into the root it lives in;
// the same directory opened twice is the same root.
func TestHistoryReusesOnlyInItsRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chk")
	a, err := snapshot.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := snapshot.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	other := incLocal(t)
	h := incremental.NewHistory()
	h.Seed(5, a, histHandle(5, "000001.sst"))
	if got := h.Reusable(other); len(got) != 0 {
		t.Errorf("a checkpoint into another root may reuse %v", locals(got))
	}
	if got := h.Reusable(again); len(got) != 1 {
		t.Errorf("the same directory, opened again: reusable %v; want its one file", locals(got))
	}
	if got := h.Reusable(nil); len(got) != 0 {
		t.Errorf("no root: reusable %v", locals(got))
	}
}

// TestHistoryCommittedFindsUnnotifiedCheckpoint guards the safety issue's
// case 9: a checkpoint committed without a completion notification is
// found in storage, if it holds this history's handle, and not if the
// metadata of its id is another writer's.
func TestHistoryCommittedFindsUnnotifiedCheckpoint(t *testing.T) {
	ctx := context.Background()
	root := incLocal(t)
	put := func(name string) {
		w, err := root.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(hd snapshot.Handle) {
		for _, f := range hd.Files {
			put(f.Name)
		}
		for _, f := range hd.Shared {
			put(f.Name)
		}
		if err := snapshot.Commit(ctx, root, &snapshot.Checkpoint{ID: hd.CheckpointID, Handles: []snapshot.Handle{hd}}); err != nil {
			t.Fatal(err)
		}
	}
	h := incremental.NewHistory()
	if id, err := h.Committed(ctx, root); err != nil || id != -1 {
		t.Fatalf("empty history: Committed = %d, %v; want -1", id, err)
	}
	h1, h2, h3 := histHandle(1, "000001.sst"), histHandle(2, "000001.sst", "000002.sst"), histHandle(3, "000003.sst")
	h.Record(1, root, h1)
	h.Record(2, root, h2)
	h.Record(3, root, h3)
	commit(h1)
	commit(h2)
	// Checkpoint 3 was committed by another writer: same local files,
	// other names.
	stranger := h3
	stranger.Files = []snapshot.FileRef{{Name: incremental.PrivateDir(3, "ef") + "/MANIFEST-000001"}}
	stranger.Shared = []snapshot.SharedFile{{FileRef: snapshot.FileRef{Name: snapshot.SharedName("ef", 3, "000003.sst")}, LocalName: "000003.sst"}}
	commit(stranger)
	if id, err := h.Committed(ctx, incLocal(t)); err != nil || id != -1 {
		t.Fatalf("another root: Committed = %d, %v; want -1", id, err)
	}
	id, err := h.Committed(ctx, root)
	if err != nil || id != 2 {
		t.Fatalf("Committed = %d, %v; want 2 (3 is another writer's)", id, err)
	}
	h.Complete(id)
	if got := h.Reusable(root); len(got) != 2 {
		t.Fatalf("after completing 2: reusable %v", locals(got))
	}
	if id, err := h.Committed(ctx, root); err != nil || id != -1 {
		t.Fatalf("after completing 2: Committed = %d, %v; want -1", id, err)
	}
}
