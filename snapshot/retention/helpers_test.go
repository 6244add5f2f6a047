package retention_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

// Helpers of the retention tests: storage, full checkpoints whose files
// are written, and incremental ones whose SSTs are uploaded to shared/.

// newLocal returns Local storage in a new temporary directory.
func newLocal(t testing.TB) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// putFile writes and commits a file.
func putFile(t testing.TB, st snapshot.Storage, name string, data []byte) {
	t.Helper()
	w, err := st.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%s): %v", name, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit(%s): %v", name, err)
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

// listAll lists every committed file.
func listAll(t testing.TB, st snapshot.Storage) []string {
	t.Helper()
	names, err := st.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// walkRoot returns every path under root (files and directories, relative,
// slash-separated, directories with a trailing slash), sorted.
func walkRoot(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// sampleData is what the tests write into each data file of a
// sampleCheckpoint; the handles' file references describe it.
const sampleData = "data"

// sampleCheckpoint returns a full checkpoint id of two handles (instances
// aaaa and bbbb, key groups [0, 64) and [64, 128) of 128), each with one
// data file in chk-<id>/ that holds sampleData. The files are not written.
func sampleCheckpoint(id int64) *snapshot.Checkpoint {
	cp := &snapshot.Checkpoint{ID: id, CreatedUnixMillis: 1_700_000_000_123}
	for i, inst := range []string{"aaaa", "bbbb"} {
		f := snapshot.FileRef{Name: snapshot.Dir(id) + "/full-" + inst + ".dat", Size: int64(len(sampleData)),
			CRC32C: crc32.Checksum([]byte(sampleData), snapshot.Castagnoli)}
		cp.Handles = append(cp.Handles, snapshot.Handle{
			Operator: "op", InstanceID: inst, CheckpointID: id, Kind: snapshot.KindFull,
			MaxParallelism: 128, KeyGroupStart: i * 64, KeyGroupEnd: (i + 1) * 64, KeyCodec: "int64",
			States: []snapshot.State{
				{FormatVersion: 1, Name: "v", ID: 1, Kind: snapshot.StateKindValue, KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "string"},
			},
			Files:     []snapshot.FileRef{f},
			StateSize: f.Size, CheckpointedSize: f.Size,
		})
	}
	return cp
}

// commitCheckpoint writes the data files of sampleCheckpoint(id) and
// commits its metadata.
func commitCheckpoint(t testing.TB, st snapshot.Storage, id int64) *snapshot.Checkpoint {
	t.Helper()
	cp := sampleCheckpoint(id)
	for _, h := range cp.Handles {
		putFile(t, st, h.Files[0].Name, []byte(sampleData))
	}
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

const incInst = "00c0ffee"

func incLocalStorage(t testing.TB) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func incPut(t testing.TB, st snapshot.Storage, name, data string) snapshot.FileRef {
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

// incUploadShared stores an SST uploaded by checkpoint creator.
func incUploadShared(t testing.TB, st snapshot.Storage, inst string, creator int64, local string) snapshot.SharedFile {
	t.Helper()
	name := incremental.SharedName(inst, creator, local)
	return snapshot.SharedFile{FileRef: incPut(t, st, name, "sst "+name), LocalName: local}
}

// incCheckpointOf builds the metadata of an incremental checkpoint with one
// handle per instance, writing each handle's private MANIFEST.
func incCheckpointOf(t testing.TB, st snapshot.Storage, id int64, shared map[string][]snapshot.SharedFile) *snapshot.Checkpoint {
	t.Helper()
	cp := &snapshot.Checkpoint{ID: id, CreatedUnixMillis: time.Now().UnixMilli()}
	insts := make([]string, 0, len(shared))
	for inst := range shared {
		insts = append(insts, inst)
	}
	slices.Sort(insts)
	for i, inst := range insts {
		priv := incPut(t, st, fmt.Sprintf("%s/inc-%s/MANIFEST-000001", snapshot.Dir(id), inst), "manifest")
		cp.Handles = append(cp.Handles, snapshot.Handle{
			Operator: "op", InstanceID: inst, CheckpointID: id, Kind: snapshot.KindIncremental,
			MaxParallelism: 128, KeyGroupStart: i * 128 / len(insts), KeyGroupEnd: (i + 1) * 128 / len(insts),
			KeyCodec: "int64", Files: []snapshot.FileRef{priv}, Shared: shared[inst],
		})
	}
	return cp
}

func incListNames(t testing.TB, st snapshot.Storage, prefix string) []string {
	t.Helper()
	names, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func incRefNames(t testing.TB, st snapshot.Storage, ids []int64) []string {
	t.Helper()
	refs, err := incremental.SharedRefs(context.Background(), st, ids)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range refs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func incCompleted(t testing.TB, st snapshot.Storage) []int64 {
	t.Helper()
	ids, err := snapshot.Completed(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
