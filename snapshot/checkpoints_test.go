package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// commitCheckpoint writes a data file for each handle of a sample
// checkpoint id and commits its metadata.
func commitCheckpoint(t testing.TB, st snapshot.Storage, id int64) *snapshot.Checkpoint {
	t.Helper()
	cp := sampleCheckpoint(id)
	storagetest.PutHandleFiles(t, st, cp)
	if err := snapshot.Commit(context.Background(), st, cp); err != nil {
		t.Fatalf("Commit(%d): %v", id, err)
	}
	return cp
}

func TestCheckpointNames(t *testing.T) {
	if snapshot.Dir(12) != "chk-12" || snapshot.MetadataPath(12) != "chk-12/_metadata" || snapshot.MetadataName != "_metadata" {
		t.Fatalf("names: %s %s", snapshot.Dir(12), snapshot.MetadataPath(12))
	}
}

func TestCheckpointCommitLoad(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
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
	st := storagetest.NewLocal(t)
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
	st := storagetest.NewLocal(t)
	cp := sampleCheckpoint(3)
	cp.Handles[1].Blocks[0].KeyGroup = 0 // outside [64, 128)
	err := snapshot.Commit(ctx, st, cp)
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("Commit = %v", err)
	}
	if got := storagetest.WalkRoot(t, st.Root()); len(got) != 0 {
		t.Fatalf("a failed Commit wrote %v", got)
	}
}

func TestCheckpointLoadWrongID(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	storagetest.Put(t, st, snapshot.MetadataPath(6), mustEncode(t, sampleCheckpoint(5)))
	_, err := snapshot.Load(ctx, st, 6)
	wantCorrupt(t, err, "chk-6/_metadata", "holds checkpoint 5")
}

func TestCheckpointCompletedSkipsDebris(t *testing.T) {
	st := storagetest.NewLocal(t)
	commitCheckpoint(t, st, 1)
	commitCheckpoint(t, st, 2)
	commitCheckpoint(t, st, 10)
	storagetest.Put(t, st, "chk-3/full-x.dat", []byte("no metadata"))
	storagetest.Put(t, st, "chk-4/sub/_metadata", []byte("not the metadata"))
	storagetest.Put(t, st, "chk-x/_metadata", []byte("not a checkpoint"))
	storagetest.Put(t, st, "chk--1/_metadata", []byte("negative"))
	storagetest.Put(t, st, "chk-5_metadata", []byte("no directory"))
	storagetest.Put(t, st, "shared/_metadata", []byte("shared"))
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{1, 2, 10}) {
		t.Fatalf("Completed = %v", ids)
	}
}

func TestCheckpointLatest(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	_, err := snapshot.Latest(ctx, st)
	if !errors.Is(err, snapshot.ErrNoCheckpoint) || !strings.Contains(err.Error(), st.Root()) {
		t.Fatalf("Latest of an empty root = %v, want ErrNoCheckpoint naming %s", err, st.Root())
	}
	commitCheckpoint(t, st, 1)
	commitCheckpoint(t, st, 2)
	storagetest.Put(t, st, "chk-9/full-x.dat", []byte("in flight, no metadata"))
	if cp, err := snapshot.Latest(ctx, st); err != nil || cp.ID != 2 {
		t.Fatalf("Latest = %v, %v", cp, err)
	}

	// A corrupt newest metadata does not exist: the one before is latest,
	// and LatestWithReport says checkpoint 3 was passed over, and why.
	good := mustEncode(t, sampleCheckpoint(3))
	storagetest.Put(t, st, snapshot.MetadataPath(3), good)
	for _, bad := range [][]byte{
		good[:len(good)-1],
		append(append([]byte(nil), good[:30]...), good[31:]...),
		[]byte("garbage"),
		{},
		mustEncode(t, sampleCheckpoint(33)), // metadata in the wrong directory
	} {
		storagetest.Replace(t, st, snapshot.MetadataPath(3), bad)
		if cp, err := snapshot.Latest(ctx, st); err != nil || cp.ID != 2 {
			t.Fatalf("Latest with a corrupt chk-3 = %v, %v", cp, err)
		}
		cp, skipped, err := snapshot.LatestWithReport(ctx, st)
		if err != nil || cp.ID != 2 || len(skipped) != 1 || skipped[0].ID != 3 ||
			!errors.Is(skipped[0].Err, snapshot.ErrCorrupt) || !strings.Contains(skipped[0].Err.Error(), "chk-3/_metadata") {
			t.Fatalf("LatestWithReport with a corrupt chk-3 = %v, %+v, %v", cp, skipped, err)
		}
	}
	storagetest.Replace(t, st, snapshot.MetadataPath(3), good)
	if cp, skipped, err := snapshot.LatestWithReport(ctx, st); err != nil || cp.ID != 3 || len(skipped) != 0 {
		t.Fatalf("LatestWithReport = %v, %v, %v", cp, skipped, err)
	}

	// All corrupt: no checkpoint, and the error names each one passed over.
	st2 := storagetest.NewLocal(t)
	storagetest.Put(t, st2, snapshot.MetadataPath(1), []byte("x"))
	storagetest.Put(t, st2, snapshot.MetadataPath(2), good[:10])
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
	local := storagetest.NewLocal(t)
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
	if err := retention.Retain(ctx, st, 1); !errors.Is(err, errInjected) {
		t.Fatalf("Retain with List failing = %v", err)
	}
	if err := retention.Recover(ctx, st); !errors.Is(err, errInjected) {
		t.Fatalf("Recover with List failing = %v", err)
	}
	// Recover does not discard a checkpoint it could not read.
	st.failList = nil
	st.failOpen = func(n string) bool { return n == snapshot.MetadataPath(2) }
	if err := retention.Recover(ctx, st); !errors.Is(err, errInjected) {
		t.Fatalf("Recover with Open failing = %v", err)
	}
	if ids := storagetest.Completed(t, local); !slices.Equal(ids, []int64{1, 2}) {
		t.Fatalf("after a failed Recover, Completed = %v", ids)
	}
}

func TestCheckpointDiscard(t *testing.T) {
	ctx := context.Background()
	local := storagetest.NewLocal(t)
	commitCheckpoint(t, local, 4)
	storagetest.Put(t, local, "shared/a.sst", []byte("shared"))
	st := &faultyStorage{Storage: local}
	if err := snapshot.Discard(ctx, st, 4); err != nil {
		t.Fatal(err)
	}
	// The metadata goes first, so the checkpoint stops existing at once.
	if len(st.deleted) != 3 || st.deleted[0] != "chk-4/_metadata" {
		t.Fatalf("deleted %v; want the metadata first, then two data files", st.deleted)
	}
	if got := storagetest.WalkRoot(t, local.Root()); !slices.Equal(got, []string{"shared/", "shared/a.sst"}) {
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
