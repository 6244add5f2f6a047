package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// commitCheckpoint writes a data file for each handle of a sample
// checkpoint id and commits its metadata.
func commitCheckpoint(t testing.TB, st snapshot.Storage, id int64) *snapshot.Checkpoint {
	t.Helper()
	cp := sampleCheckpoint(id)
	putHandleFiles(t, st, cp)
	if err := snapshot.Commit(context.Background(), st, cp); err != nil {
		t.Fatalf("Commit(%d): %v", id, err)
	}
	return cp
}

func completed(t testing.TB, st snapshot.Storage) []int64 {
	t.Helper()
	ids, err := snapshot.Completed(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestCheckpointNames(t *testing.T) {
	if snapshot.Dir(12) != "chk-12" || snapshot.MetadataPath(12) != "chk-12/_metadata" || snapshot.MetadataName != "_metadata" {
		t.Fatalf("names: %s %s", snapshot.Dir(12), snapshot.MetadataPath(12))
	}
}

func TestCheckpointCommitLoad(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	cp := commitCheckpoint(t, st, 7)
	got, err := snapshot.Load(ctx, st, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 7 || len(got.Handles) != 2 || got.Handles[1].Blocks[0] != cp.Handles[1].Blocks[0] {
		t.Fatalf("Load = %+v", got)
	}
	// Committing the same id again fails and leaves the first intact.
	err = snapshot.Commit(ctx, st, &snapshot.Checkpoint{ID: 7})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Commit(7) = %v", err)
	}
	if got, err := snapshot.Load(ctx, st, 7); err != nil || len(got.Handles) != 2 {
		t.Fatalf("after a failed recommit, Load = %+v, %v", got, err)
	}
	// A missing checkpoint is ErrNotExist, not ErrCorrupt.
	if _, err := snapshot.Load(ctx, st, 8); !errors.Is(err, snapshot.ErrNotExist) || errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("Load(8) = %v", err)
	}
}

func TestCheckpointCommitSubsumed(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	commitCheckpoint(t, st, 5)
	cp := sampleCheckpoint(4)
	err := snapshot.Commit(ctx, st, cp)
	if !errors.Is(err, snapshot.ErrSubsumed) {
		t.Fatalf("Commit(4) after 5 = %v, want ErrSubsumed", err)
	}
	if _, err := snapshot.Load(ctx, st, 4); !errors.Is(err, snapshot.ErrNotExist) {
		t.Fatalf("a subsumed checkpoint was written: %v", err)
	}
	commitCheckpoint(t, st, 6)
}

func TestCheckpointCommitInvalidHandleWritesNothing(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	cp := sampleCheckpoint(3)
	cp.Handles[1].Blocks[0].KeyGroup = 0 // outside [64, 128)
	err := snapshot.Commit(ctx, st, cp)
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("Commit = %v", err)
	}
	if got := walkRoot(t, st.Root()); len(got) != 0 {
		t.Fatalf("a failed Commit wrote %v", got)
	}
}

func TestCheckpointLoadWrongID(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	putFile(t, st, snapshot.MetadataPath(6), mustEncode(t, sampleCheckpoint(5)))
	_, err := snapshot.Load(ctx, st, 6)
	wantCorrupt(t, err, "chk-6/_metadata", "holds checkpoint 5")
}

func TestCheckpointCompletedSkipsDebris(t *testing.T) {
	st := newLocal(t)
	commitCheckpoint(t, st, 1)
	commitCheckpoint(t, st, 2)
	commitCheckpoint(t, st, 10)
	putFile(t, st, "chk-3/full-x.dat", []byte("no metadata"))
	putFile(t, st, "chk-4/sub/_metadata", []byte("not the metadata"))
	putFile(t, st, "chk-x/_metadata", []byte("not a checkpoint"))
	putFile(t, st, "chk--1/_metadata", []byte("negative"))
	putFile(t, st, "chk-5_metadata", []byte("no directory"))
	putFile(t, st, "shared/_metadata", []byte("shared"))
	if ids := completed(t, st); !slices.Equal(ids, []int64{1, 2, 10}) {
		t.Fatalf("Completed = %v", ids)
	}
}

// replaceFile deletes a file and writes it again: storage never replaces
// a committed file.
func replaceFile(t testing.TB, st snapshot.Storage, name string, data []byte) {
	t.Helper()
	if err := st.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	putFile(t, st, name, data)
}

func TestCheckpointLatest(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	_, err := snapshot.Latest(ctx, st)
	if !errors.Is(err, snapshot.ErrNoCheckpoint) || !strings.Contains(err.Error(), st.Root()) {
		t.Fatalf("Latest of an empty root = %v, want ErrNoCheckpoint naming %s", err, st.Root())
	}
	commitCheckpoint(t, st, 1)
	commitCheckpoint(t, st, 2)
	putFile(t, st, "chk-9/full-x.dat", []byte("in flight, no metadata"))
	if cp, err := snapshot.Latest(ctx, st); err != nil || cp.ID != 2 {
		t.Fatalf("Latest = %v, %v", cp, err)
	}

	// A corrupt newest metadata does not exist: the one before is latest,
	// and LatestWithReport says checkpoint 3 was passed over, and why.
	good := mustEncode(t, sampleCheckpoint(3))
	putFile(t, st, snapshot.MetadataPath(3), good)
	for _, bad := range [][]byte{
		good[:len(good)-1],
		append(append([]byte(nil), good[:30]...), good[31:]...),
		[]byte("garbage"),
		{},
		mustEncode(t, sampleCheckpoint(33)), // metadata in the wrong directory
	} {
		replaceFile(t, st, snapshot.MetadataPath(3), bad)
		if cp, err := snapshot.Latest(ctx, st); err != nil || cp.ID != 2 {
			t.Fatalf("Latest with a corrupt chk-3 = %v, %v", cp, err)
		}
		cp, skipped, err := snapshot.LatestWithReport(ctx, st)
		if err != nil || cp.ID != 2 || len(skipped) != 1 || skipped[0].ID != 3 ||
			!errors.Is(skipped[0].Err, snapshot.ErrCorrupt) || !strings.Contains(skipped[0].Err.Error(), "chk-3/_metadata") {
			t.Fatalf("LatestWithReport with a corrupt chk-3 = %v, %+v, %v", cp, skipped, err)
		}
	}
	replaceFile(t, st, snapshot.MetadataPath(3), good)
	if cp, skipped, err := snapshot.LatestWithReport(ctx, st); err != nil || cp.ID != 3 || len(skipped) != 0 {
		t.Fatalf("LatestWithReport = %v, %v, %v", cp, skipped, err)
	}

	// All corrupt: no checkpoint, and the error names each one passed over.
	st2 := newLocal(t)
	putFile(t, st2, snapshot.MetadataPath(1), []byte("x"))
	putFile(t, st2, snapshot.MetadataPath(2), good[:10])
	_, skipped, err := snapshot.LatestWithReport(ctx, st2)
	if !errors.Is(err, snapshot.ErrNoCheckpoint) || len(skipped) != 2 || skipped[0].ID != 2 ||
		!strings.Contains(err.Error(), "chk-1/_metadata") || !strings.Contains(err.Error(), "chk-2/_metadata") {
		t.Fatalf("LatestWithReport with only corrupt metadata = %+v, %v", skipped, err)
	}
}

// faultyStorage wraps a Storage, failing Open, Delete or List of the
// names a predicate picks, and recording every Delete.
type faultyStorage struct {
	snapshot.Storage
	failOpen   func(name string) bool
	failDelete func(name string) bool
	failList   func(prefix string) bool

	mu      sync.Mutex
	deleted []string
}

var errInjected = errors.New("injected storage failure")

func (f *faultyStorage) Open(ctx context.Context, name string) (snapshot.File, error) {
	if f.failOpen != nil && f.failOpen(name) {
		return nil, fmt.Errorf("open %s: %w", name, errInjected)
	}
	return f.Storage.Open(ctx, name)
}

func (f *faultyStorage) Delete(ctx context.Context, name string) error {
	if f.failDelete != nil && f.failDelete(name) {
		return fmt.Errorf("delete %s: %w", name, errInjected)
	}
	f.mu.Lock()
	f.deleted = append(f.deleted, name)
	f.mu.Unlock()
	return f.Storage.Delete(ctx, name)
}

func (f *faultyStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if f.failList != nil && f.failList(prefix) {
		return nil, fmt.Errorf("list %s: %w", prefix, errInjected)
	}
	return f.Storage.List(ctx, prefix)
}

func TestCheckpointLatestDoesNotHideIOErrors(t *testing.T) {
	ctx := context.Background()
	local := newLocal(t)
	commitCheckpoint(t, local, 1)
	commitCheckpoint(t, local, 2)
	st := &faultyStorage{Storage: local, failOpen: func(n string) bool { return n == snapshot.MetadataPath(2) }}
	// An unreadable newest checkpoint is not skipped as if it were corrupt:
	// restoring an older one would silently lose progress.
	if cp, err := snapshot.Latest(ctx, st); !errors.Is(err, errInjected) {
		t.Fatalf("Latest = %v, %v; want the I/O error", cp, err)
	}
	st.failOpen = nil
	st.failList = func(string) bool { return true }
	if _, err := snapshot.Latest(ctx, st); !errors.Is(err, errInjected) {
		t.Fatalf("Latest with List failing = %v", err)
	}
	if err := snapshot.Retain(ctx, st, 1); !errors.Is(err, errInjected) {
		t.Fatalf("Retain with List failing = %v", err)
	}
	if err := snapshot.Recover(ctx, st); !errors.Is(err, errInjected) {
		t.Fatalf("Recover with List failing = %v", err)
	}
	// Recover does not discard a checkpoint it could not read.
	st.failList = nil
	st.failOpen = func(n string) bool { return n == snapshot.MetadataPath(2) }
	if err := snapshot.Recover(ctx, st); !errors.Is(err, errInjected) {
		t.Fatalf("Recover with Open failing = %v", err)
	}
	if ids := completed(t, local); !slices.Equal(ids, []int64{1, 2}) {
		t.Fatalf("after a failed Recover, Completed = %v", ids)
	}
}

func TestCheckpointDiscard(t *testing.T) {
	ctx := context.Background()
	local := newLocal(t)
	commitCheckpoint(t, local, 4)
	putFile(t, local, "shared/a.sst", []byte("shared"))
	st := &faultyStorage{Storage: local}
	if err := snapshot.Discard(ctx, st, 4); err != nil {
		t.Fatal(err)
	}
	// The metadata goes first, so the checkpoint stops existing at once.
	if len(st.deleted) != 3 || st.deleted[0] != "chk-4/_metadata" {
		t.Fatalf("deleted %v; want the metadata first, then two data files", st.deleted)
	}
	if got := walkRoot(t, local.Root()); !slices.Equal(got, []string{"shared/", "shared/a.sst"}) {
		t.Fatalf("after Discard: %v", got)
	}
	// Discarding a missing checkpoint is fine.
	if err := snapshot.Discard(ctx, st, 99); err != nil {
		t.Fatal(err)
	}
	// A failure to delete the metadata stops Discard before the data.
	commitCheckpoint(t, local, 5)
	st.failDelete = func(n string) bool { return n == "chk-5/_metadata" }
	if err := snapshot.Discard(ctx, st, 5); !errors.Is(err, errInjected) {
		t.Fatalf("Discard = %v", err)
	}
	if got, _ := local.List(ctx, "chk-5/"); len(got) != 3 {
		t.Fatalf("a failed Discard deleted data of a checkpoint that still exists: %v", got)
	}
}

func TestCheckpointRetain(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	putFile(t, st, "chk-0/full-crashed.dat", []byte("debris, older than newest"))
	for id := int64(1); id <= 5; id++ {
		commitCheckpoint(t, st, id)
	}
	putFile(t, st, "chk-3/extra.dat", []byte("extra file of 3"))
	putFile(t, st, "chk-4/full-late.dat", []byte("kept with 4"))
	putFile(t, st, "chk-6/full-inflight.dat", []byte("in flight, newer than newest"))
	putFile(t, st, "shared/x.sst", []byte("shared"))
	if err := snapshot.Retain(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	if ids := completed(t, st); !slices.Equal(ids, []int64{4, 5}) {
		t.Fatalf("Completed after Retain(2) = %v", ids)
	}
	names := listAll(t, st)
	for _, n := range names {
		if strings.HasPrefix(n, "chk-0/") || strings.HasPrefix(n, "chk-1/") ||
			strings.HasPrefix(n, "chk-2/") || strings.HasPrefix(n, "chk-3/") {
			t.Errorf("Retain left %s", n)
		}
	}
	for _, want := range []string{"chk-4/full-late.dat", "chk-6/full-inflight.dat", "shared/x.sst", "chk-5/full-aaaa.dat"} {
		if !slices.Contains(names, want) {
			t.Errorf("Retain removed %s", want)
		}
	}
	for _, p := range walkRoot(t, st.Root()) {
		if p == "chk-0/" || p == "chk-1/" || p == "chk-2/" || p == "chk-3/" {
			t.Errorf("Retain left the directory %s", p)
		}
	}
	// keep < 1 counts as 1.
	if err := snapshot.Retain(ctx, st, 0); err != nil {
		t.Fatal(err)
	}
	if ids := completed(t, st); !slices.Equal(ids, []int64{5}) {
		t.Fatalf("Completed after Retain(0) = %v", ids)
	}
	if err := snapshot.Retain(ctx, st, -3); err != nil {
		t.Fatal(err)
	}
	if ids := completed(t, st); !slices.Equal(ids, []int64{5}) {
		t.Fatalf("Completed after Retain(-3) = %v", ids)
	}
	// Nothing completed: nothing to do, debris stays (it may be in flight).
	st2 := newLocal(t)
	putFile(t, st2, "chk-1/full-x.dat", []byte("x"))
	if err := snapshot.Retain(ctx, st2, 1); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, st2); !slices.Equal(got, []string{"chk-1/full-x.dat"}) {
		t.Fatalf("Retain with nothing completed: %v", got)
	}
}

func TestCheckpointRetainCorruptNewest(t *testing.T) {
	// A newest metadata that does not verify still counts for Retain (it
	// lists, it does not verify); the point here is that Retain never
	// deletes the newest verifiable checkpoint while keeping a corrupt one.
	ctx := context.Background()
	st := newLocal(t)
	commitCheckpoint(t, st, 1)
	commitCheckpoint(t, st, 2)
	putFile(t, st, snapshot.MetadataPath(3), []byte("corrupt"))
	rerr := snapshot.Retain(ctx, st, 1)
	if !errors.Is(rerr, snapshot.ErrUnreadable) {
		t.Errorf("Retain with a corrupt newest metadata = %v, want ErrUnreadable", rerr)
	}
	cp, err := snapshot.Latest(ctx, st)
	if err != nil {
		t.Fatalf("BUG: Retain(1) with a corrupt newest metadata (Retain = %v) discarded every verifiable checkpoint: Latest = %v (left %v)",
			rerr, err, listAll(t, st))
	}
	if cp.ID != 2 {
		t.Fatalf("Latest = %d", cp.ID)
	}
}

func TestCheckpointRecover(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	commitCheckpoint(t, st, 1)
	commitCheckpoint(t, st, 2)
	putFile(t, st, "chk-3/full-a.dat", []byte("no metadata"))       // crashed before commit
	putFile(t, st, snapshot.MetadataPath(4), []byte("corrupt"))     // torn metadata
	putFile(t, st, "chk-4/full-b.dat", []byte("data of corrupt 4")) //
	putFile(t, st, "shared/s.sst", []byte("shared"))
	for _, p := range []string{"chk-2/full-c.dat.0123456789ab.tmp", "chk-5/full-d.dat.0123456789ab.tmp",
		"chk-4/full-e.dat.0123456789ab.tmp", "shared/t.sst.0123456789ab.tmp"} {
		if err := os.MkdirAll(st.Path(p[:strings.LastIndex(p, "/")]), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(st.Path(p), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Checkpoint 4's metadata exists but does not verify: Recover keeps it
	// with all its files, deletes nothing in shared/, and says so.
	rep, err := snapshot.RecoverWithReport(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unreadable) != 1 || rep.Unreadable[0].ID != 4 || !slices.Equal(rep.Discarded, []int64{3}) || rep.SharedKept == "" {
		t.Fatalf("report %+v", rep)
	}
	if err := snapshot.Recover(ctx, st); !errors.Is(err, snapshot.ErrUnreadable) || !strings.Contains(err.Error(), "chk-4/_metadata") {
		t.Fatalf("Recover = %v, want ErrUnreadable naming chk-4/_metadata", err)
	}
	want := []string{
		"chk-1/", "chk-1/_metadata", "chk-1/full-aaaa.dat", "chk-1/full-bbbb.dat",
		"chk-2/", "chk-2/_metadata", "chk-2/full-aaaa.dat", "chk-2/full-bbbb.dat",
		"chk-4/", "chk-4/_metadata", "chk-4/full-b.dat", "chk-4/full-e.dat.0123456789ab.tmp",
		"shared/", "shared/s.sst", "shared/t.sst.0123456789ab.tmp",
	}
	if got := walkRoot(t, st.Root()); !slices.Equal(got, want) {
		t.Fatalf("after Recover:\n got %v\nwant %v", got, want)
	}
	// Once a person removes it, Recover cleans up the rest.
	if err := st.Delete(ctx, snapshot.MetadataPath(4)); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Recover(ctx, st); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"chk-1/", "chk-1/_metadata", "chk-1/full-aaaa.dat", "chk-1/full-bbbb.dat",
		"chk-2/", "chk-2/_metadata", "chk-2/full-aaaa.dat", "chk-2/full-bbbb.dat",
		"shared/", "shared/s.sst",
	}
	if got := walkRoot(t, st.Root()); !slices.Equal(got, want) {
		t.Fatalf("after Recover:\n got %v\nwant %v", got, want)
	}
	if cp, err := snapshot.Latest(ctx, st); err != nil || cp.ID != 2 {
		t.Fatalf("Latest after Recover = %v, %v", cp, err)
	}
	// Idempotent.
	if err := snapshot.Recover(ctx, st); err != nil {
		t.Fatal(err)
	}
	if got := walkRoot(t, st.Root()); !slices.Equal(got, want) {
		t.Fatalf("after a second Recover: %v", got)
	}
}

func TestCheckpointComplete(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	for id := int64(1); id <= 4; id++ {
		cp := sampleCheckpoint(id)
		putHandleFiles(t, st, cp)
		if err := snapshot.Complete(ctx, st, cp, 2); err != nil {
			t.Fatal(err)
		}
		want := []int64{id}
		if id > 1 {
			want = []int64{id - 1, id}
		}
		if ids := completed(t, st); !slices.Equal(ids, want) {
			t.Fatalf("after Complete(%d): %v", id, ids)
		}
	}
	// Completing an existing id fails and changes nothing.
	if err := snapshot.Complete(ctx, st, sampleCheckpoint(4), 1); err == nil {
		t.Fatal("Complete of an existing id succeeded")
	}
	if ids := completed(t, st); !slices.Equal(ids, []int64{3, 4}) {
		t.Fatalf("after a failed Complete: %v", ids)
	}
	if got := listAll(t, st); len(got) != 6 {
		t.Fatalf("files: %v", got)
	}
}
