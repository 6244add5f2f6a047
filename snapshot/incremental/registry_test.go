package incremental_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

// Tests of the shared-file registry: naming, reference counts from the
// metadata, collection and the presence check before reuse. Retention's
// use of it is tested in package snapshot/retention.

func TestSharedRefsCounts(t *testing.T) {
	ctx := context.Background()
	st := incLocal(t)
	a := storagetest.UploadShared(t, st, "aa", 1, "000001.sst")
	b := storagetest.UploadShared(t, st, "bb", 1, "000001.sst") // same local name, other instance
	c := storagetest.UploadShared(t, st, "aa", 2, "000005.sst")
	if a.Name == b.Name {
		t.Fatalf("two instances' 000001.sst share the name %s", a.Name)
	}
	cp1 := storagetest.IncrementalCheckpoint(t, st, 1, map[string][]snapshot.SharedFile{"aa": {a}, "bb": {b}})
	if err := snapshot.Commit(ctx, st, cp1); err != nil {
		t.Fatal(err)
	}
	cp2 := storagetest.IncrementalCheckpoint(t, st, 2, map[string][]snapshot.SharedFile{"aa": {a, c}, "bb": {b}})
	if err := snapshot.Commit(ctx, st, cp2); err != nil {
		t.Fatal(err)
	}
	refs, err := incremental.SharedRefs(ctx, st, []int64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{a.Name: 2, b.Name: 2, c.Name: 1}
	if fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("SharedRefs(1, 2) = %v, want %v", refs, want)
	}
	refs, err = incremental.SharedRefs(ctx, st, []int64{1})
	if err != nil || fmt.Sprint(refs) != fmt.Sprint(map[string]int{a.Name: 1, b.Name: 1}) {
		t.Errorf("SharedRefs(1) = %v, %v", refs, err)
	}
	if refs, err := incremental.SharedRefs(ctx, st, nil); err != nil || len(refs) != 0 {
		t.Errorf("SharedRefs() = %v, %v", refs, err)
	}
	if _, err := incremental.SharedRefs(ctx, st, []int64{3}); !errors.Is(err, snapshot.ErrNotExist) {
		t.Errorf("SharedRefs of a missing checkpoint = %v, want ErrNotExist", err)
	}
}

// TestCollectShared: CollectShared deletes exactly the files SharedName
// made, by a checkpoint no newer than newest, that no retained checkpoint
// references.
func TestCollectShared(t *testing.T) {
	ctx := context.Background()
	st := incLocal(t)
	kept := storagetest.UploadShared(t, st, "aa", 1, "000001.sst")
	dropped := storagetest.UploadShared(t, st, "aa", 1, "000002.sst")
	debris := storagetest.UploadShared(t, st, "aa", 2, "000003.sst")
	inFlight := storagetest.UploadShared(t, st, "aa", 4, "000004.sst")
	storagetest.Put(t, st, "shared/README", []byte("foreign"))
	cp := storagetest.IncrementalCheckpoint(t, st, 3, map[string][]snapshot.SharedFile{"aa": {kept}})
	n, err := incremental.CollectShared(ctx, st, []*snapshot.Checkpoint{cp}, 3)
	if err != nil || n != 2 {
		t.Fatalf("CollectShared = %d, %v; want 2 deleted (%s, %s)", n, err, dropped.Name, debris.Name)
	}
	got := incList(t, st, snapshot.SharedDir+"/")
	want := []string{kept.Name, inFlight.Name, "shared/README"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("shared/ = %v, want %v", got, want)
	}
	// Nothing retained, nothing in flight: only the foreign file stays.
	if n, err := incremental.CollectShared(ctx, st, nil, 1<<62); err != nil || n != 2 {
		t.Fatalf("CollectShared of everything = %d, %v; want 2", n, err)
	}
	if got := incList(t, st, snapshot.SharedDir+"/"); !slices.Equal(got, []string{"shared/README"}) {
		t.Errorf("shared/ = %v, want only shared/README", got)
	}
}

// TestPresent: Present keeps the reusable files storage still lists and
// drops those another writer's retention deleted.
func TestPresent(t *testing.T) {
	ctx := context.Background()
	st := incLocal(t)
	a := storagetest.UploadShared(t, st, "aa", 1, "000001.sst")
	b := storagetest.UploadShared(t, st, "aa", 1, "000002.sst")
	if err := st.Delete(ctx, b.Name); err != nil {
		t.Fatal(err)
	}
	got, err := incremental.Present(ctx, st, map[string]snapshot.SharedFile{a.LocalName: a, b.LocalName: b})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[a.LocalName] != a {
		t.Errorf("Present = %v, want only %s", got, a.Name)
	}
	if got, err := incremental.Present(ctx, st, nil); err != nil || len(got) != 0 {
		t.Errorf("Present(nil) = %v, %v", got, err)
	}
}
