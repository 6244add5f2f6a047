package incremental_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

// Tests of the shared-file registry: naming, reference counts from the
// metadata, collection and the presence check before reuse. Retention's
// use of it is tested in package snapshot/retention.

// regPut stores a committed file.
func regPut(t testing.TB, st snapshot.Storage, name, data string) snapshot.FileRef {
	t.Helper()
	w, err := st.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return snapshot.FileRef{Name: name, Size: int64(len(data))}
}

// regUploadShared stores an SST uploaded by checkpoint creator.
func regUploadShared(t testing.TB, st snapshot.Storage, inst string, creator int64, local string) snapshot.SharedFile {
	t.Helper()
	name := snapshot.SharedName(inst, creator, local)
	return snapshot.SharedFile{FileRef: regPut(t, st, name, "sst "+name), LocalName: local}
}

// regCheckpointOf builds the metadata of an incremental checkpoint with one
// handle per instance, writing each handle's private MANIFEST.
func regCheckpointOf(t testing.TB, st snapshot.Storage, id int64, shared map[string][]snapshot.SharedFile) *snapshot.Checkpoint {
	t.Helper()
	cp := &snapshot.Checkpoint{ID: id, CreatedUnixMillis: time.Now().UnixMilli()}
	insts := make([]string, 0, len(shared))
	for inst := range shared {
		insts = append(insts, inst)
	}
	slices.Sort(insts)
	for i, inst := range insts {
		priv := regPut(t, st, fmt.Sprintf("%s/inc-%s/MANIFEST-000001", snapshot.Dir(id), inst), "manifest")
		cp.Handles = append(cp.Handles, snapshot.Handle{
			Operator: "op", InstanceID: inst, CheckpointID: id, Kind: snapshot.KindIncremental,
			MaxParallelism: 128, KeyGroupStart: i * 128 / len(insts), KeyGroupEnd: (i + 1) * 128 / len(insts),
			KeyCodec: "int64", Files: []snapshot.FileRef{priv}, Shared: shared[inst],
		})
	}
	return cp
}

func TestSharedRefsCounts(t *testing.T) {
	ctx := context.Background()
	st := incLocal(t)
	a := regUploadShared(t, st, "aa", 1, "000001.sst")
	b := regUploadShared(t, st, "bb", 1, "000001.sst") // same local name, other instance
	c := regUploadShared(t, st, "aa", 2, "000005.sst")
	if a.Name == b.Name {
		t.Fatalf("two instances' 000001.sst share the name %s", a.Name)
	}
	cp1 := regCheckpointOf(t, st, 1, map[string][]snapshot.SharedFile{"aa": {a}, "bb": {b}})
	if err := snapshot.Commit(ctx, st, cp1); err != nil {
		t.Fatal(err)
	}
	cp2 := regCheckpointOf(t, st, 2, map[string][]snapshot.SharedFile{"aa": {a, c}, "bb": {b}})
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
	kept := regUploadShared(t, st, "aa", 1, "000001.sst")
	dropped := regUploadShared(t, st, "aa", 1, "000002.sst")
	debris := regUploadShared(t, st, "aa", 2, "000003.sst")
	inFlight := regUploadShared(t, st, "aa", 4, "000004.sst")
	regPut(t, st, "shared/README", "foreign")
	cp := regCheckpointOf(t, st, 3, map[string][]snapshot.SharedFile{"aa": {kept}})
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
	a := regUploadShared(t, st, "aa", 1, "000001.sst")
	b := regUploadShared(t, st, "aa", 1, "000002.sst")
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
