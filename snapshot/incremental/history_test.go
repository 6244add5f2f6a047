package incremental_test

import (
	"maps"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

func sharedFiles(id int64, locals ...string) []snapshot.SharedFile {
	var out []snapshot.SharedFile
	for _, l := range locals {
		out = append(out, snapshot.SharedFile{FileRef: snapshot.FileRef{Name: snapshot.SharedName("ab", id, l)}, LocalName: l})
	}
	return out
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
	h := incremental.NewHistory()
	if r := h.Reusable(); len(r) != 0 || h.Base() != -1 {
		t.Fatalf("new history: reusable %v, base %d; want nothing, -1", r, h.Base())
	}
	h.Record(1, sharedFiles(1, "000001.sst", "000002.sst"))
	if r := h.Reusable(); len(r) != 0 {
		t.Fatalf("before completion: reusable %v; want nothing (1 may be aborted)", r)
	}
	h.Complete(1)
	want := locals(maps.Collect(func(yield func(string, snapshot.SharedFile) bool) {
		for _, f := range sharedFiles(1, "000001.sst", "000002.sst") {
			yield(f.LocalName, f)
		}
	}))
	if got := locals(h.Reusable()); !maps.Equal(got, want) || h.Base() != 1 {
		t.Fatalf("after Complete(1): reusable %v, base %d; want %v, 1", got, h.Base(), want)
	}
	h.Record(2, sharedFiles(2, "000003.sst"))
	h.Abort(2)
	h.Complete(2) // aborted: not recorded any more
	if h.Base() != 1 {
		t.Fatalf("Complete of an aborted checkpoint moved the base to %d", h.Base())
	}
	h.Record(3, sharedFiles(3, "000004.sst"))
	h.Record(4, sharedFiles(4, "000005.sst"))
	h.Complete(4) // subsumes 3
	h.Complete(3) // late: older than the base
	if got := h.Reusable(); h.Base() != 4 || len(got) != 1 || got["000005.sst"].Name != snapshot.SharedName("ab", 4, "000005.sst") {
		t.Fatalf("after Complete(4), Complete(3): base %d, reusable %v; want 4 and its one file", h.Base(), locals(got))
	}
	h.Seed(9, sharedFiles(9, "000010.sst"))
	if h.Base() != 9 || len(h.Reusable()) != 1 {
		t.Fatalf("after Seed(9): base %d, reusable %v", h.Base(), locals(h.Reusable()))
	}
}
