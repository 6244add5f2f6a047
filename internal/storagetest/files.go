package storagetest

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
)

// NewLocal returns Local checkpoint storage in a new temporary directory.
func NewLocal(tb testing.TB) *snapshot.Local {
	tb.Helper()
	st, err := snapshot.NewLocal(filepath.Join(tb.TempDir(), "root"))
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// Put writes and commits the file name holding data, and returns its
// reference (size and CRC-32C).
func Put(tb testing.TB, st snapshot.Storage, name string, data []byte) snapshot.FileRef {
	tb.Helper()
	w, err := st.Create(context.Background(), name)
	if err != nil {
		tb.Fatalf("Create(%s): %v", name, err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatalf("Write(%s): %v", name, err)
	}
	if err := w.Commit(); err != nil {
		tb.Fatalf("Commit(%s): %v", name, err)
	}
	return snapshot.FileRef{Name: name, Size: int64(len(data)), CRC32C: crc32.Checksum(data, snapshot.Castagnoli)}
}

// Replace deletes the file name and writes it again with data: storage
// never replaces a committed file.
func Replace(tb testing.TB, st snapshot.Storage, name string, data []byte) {
	tb.Helper()
	if err := st.Delete(context.Background(), name); err != nil {
		tb.Fatal(err)
	}
	Put(tb, st, name, data)
}

// List lists the committed files whose names start with prefix.
func List(tb testing.TB, st snapshot.Storage, prefix string) []string {
	tb.Helper()
	names, err := st.List(context.Background(), prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return names
}

// Completed returns the ids of st's completed checkpoints.
func Completed(tb testing.TB, st snapshot.Storage) []int64 {
	tb.Helper()
	ids, err := snapshot.Completed(context.Background(), st)
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// WalkRoot returns every path under root (files and directories, relative,
// slash-separated, directories with a trailing slash), sorted.
func WalkRoot(tb testing.TB, root string) []string {
	tb.Helper()
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
		tb.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// PutHandleFiles writes every file cp's handles reference (their own files
// and shared files), each of the size its reference records, so that
// Commit, which checks them, accepts the checkpoint.
func PutHandleFiles(tb testing.TB, st snapshot.Storage, cp *snapshot.Checkpoint) {
	tb.Helper()
	for _, h := range cp.Handles {
		for _, f := range h.Files {
			Put(tb, st, f.Name, make([]byte, f.Size))
		}
		for _, f := range h.Shared {
			Put(tb, st, f.Name, make([]byte, f.Size))
		}
	}
}

// UploadShared stores an SST as checkpoint creator of writer would upload
// it to shared/, and returns its reference.
func UploadShared(tb testing.TB, st snapshot.Storage, writer string, creator int64, local string) snapshot.SharedFile {
	tb.Helper()
	name := snapshot.SharedName(writer, creator, local)
	return snapshot.SharedFile{FileRef: Put(tb, st, name, []byte("sst "+name)), LocalName: local}
}

// IncrementalCheckpoint builds the metadata of incremental checkpoint id
// of operator "op", one handle per instance in shared (key groups of 128
// split evenly in the instances' order), each referencing its shared
// files and a private MANIFEST, which it writes. It does not commit.
func IncrementalCheckpoint(tb testing.TB, st snapshot.Storage, id int64, shared map[string][]snapshot.SharedFile) *snapshot.Checkpoint {
	tb.Helper()
	cp := &snapshot.Checkpoint{ID: id, CreatedUnixMillis: time.Now().UnixMilli()}
	insts := make([]string, 0, len(shared))
	for inst := range shared {
		insts = append(insts, inst)
	}
	slices.Sort(insts)
	for i, inst := range insts {
		priv := Put(tb, st, fmt.Sprintf("%s/inc-%s/MANIFEST-000001", snapshot.Dir(id), inst), []byte("manifest"))
		cp.Handles = append(cp.Handles, snapshot.Handle{
			Operator: "op", InstanceID: inst, CheckpointID: id, Kind: snapshot.KindIncremental,
			MaxParallelism: 128, KeyGroupStart: i * 128 / len(insts), KeyGroupEnd: (i + 1) * 128 / len(insts),
			KeyCodec: "int64", Files: []snapshot.FileRef{priv}, Shared: shared[inst],
		})
	}
	return cp
}
