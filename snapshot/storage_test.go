package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
)

func TestStorageLocalCommitVisible(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	w, err := st.Create(ctx, "chk-1/data")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	// Not visible before Commit.
	if names := storagetest.List(t, st, ""); len(names) != 0 {
		t.Fatalf("before Commit, List = %v", names)
	}
	if _, err := st.Open(ctx, "chk-1/data"); !errors.Is(err, snapshot.ErrNotExist) {
		t.Fatalf("Open before Commit: %v, want ErrNotExist", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if names := storagetest.List(t, st, ""); !slices.Equal(names, []string{"chk-1/data"}) {
		t.Fatalf("after Commit, List = %v", names)
	}
	f, err := st.Open(ctx, "chk-1/data")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != 11 {
		t.Fatalf("Size = %d", f.Size())
	}
	got, err := snapshot.ReadFile(ctx, st, "chk-1/data")
	if err != nil || string(got) != "hello world" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	// Only the committed file is on disk, no temporary.
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, []string{"chk-1/", "chk-1/data"}) {
		t.Fatalf("on disk: %v", got)
	}
	if st.Path("chk-1/data") != filepath.Join(st.Root(), "chk-1", "data") {
		t.Fatalf("Path = %s", st.Path("chk-1/data"))
	}
	// A second Commit, or a Write... Commit fails; Abort after Commit is a no-op.
	if err := w.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	if _, err := st.Open(ctx, "chk-1/data"); err != nil {
		t.Fatalf("Abort after Commit removed the file: %v", err)
	}
}

// TestStorageLocalCommitNeverReplaces guards that a committed file is
// never replaced: Create of an existing name fails at once, and of two
// writers of one name, the second to commit fails; both with ErrExist,
// leaving the first file whole and no temporary file.
// Guards issue 12 case 2 (one writer overwrote the other's files).
func TestStorageLocalCommitNeverReplaces(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	storagetest.Put(t, st, "a", []byte("first"))
	if w, err := st.Create(ctx, "a"); !errors.Is(err, snapshot.ErrExist) || !strings.Contains(err.Error(), st.Path("a")) {
		if w != nil {
			_ = w.Abort()
		}
		t.Fatalf("Create of an existing name = %v, want ErrExist naming %s", err, st.Path("a"))
	}
	w1, err := st.Create(ctx, "chk-1/b")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := st.Create(ctx, "chk-1/b")
	if err != nil {
		t.Fatal(err)
	}
	w1.Write([]byte("one"))
	w2.Write([]byte("two, longer"))
	if err := w2.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w1.Commit(); !errors.Is(err, snapshot.ErrExist) {
		t.Fatalf("second Commit of one name = %v, want ErrExist", err)
	}
	for name, want := range map[string]string{"a": "first", "chk-1/b": "two, longer"} {
		if got, err := snapshot.ReadFile(ctx, st, name); err != nil || string(got) != want {
			t.Fatalf("%s holds %q, %v; want %q", name, got, err, want)
		}
	}
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, []string{"a", "chk-1/", "chk-1/b"}) {
		t.Fatalf("on disk: %v", got)
	}
}

func TestStorageLocalAbortLeavesNothing(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	w, err := st.Create(ctx, "chk-3/full-x.dat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 100<<10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	for _, p := range storagetest.WalkRoot(t, st.Root()) {
		if !strings.HasSuffix(p, "/") {
			t.Errorf("Abort left file %s", p)
		}
	}
	if names := storagetest.List(t, st, ""); len(names) != 0 {
		t.Fatalf("List = %v", names)
	}
	// The directory Create made is empty; Sweep removes it.
	if err := st.Sweep(); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.WalkRoot(t, st.Root()); len(got) != 0 {
		t.Fatalf("after Sweep: %v", got)
	}
}

func TestStorageLocalListSkipsTempAndFiltersPrefix(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	for _, n := range []string{"chk-2/_metadata", "chk-10/_metadata", "chk-1/b", "chk-1/a", "shared/s1", "other"} {
		storagetest.Put(t, st, n, []byte(n))
	}
	// A writer in progress has a temporary file on disk.
	w, err := st.Create(ctx, "chk-1/c")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write([]byte("pending")); err != nil {
		t.Fatal(err)
	}
	var tmps int
	for _, p := range storagetest.WalkRoot(t, st.Root()) {
		if strings.HasSuffix(p, ".tmp") {
			tmps++
		}
	}
	if tmps != 1 {
		t.Fatalf("expected one temporary file on disk, found %d", tmps)
	}
	// A stray temporary file of a crashed writer.
	if err := os.WriteFile(st.Path("chk-2/_metadata.0123456789ab.tmp"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{"chk-1/a", "chk-1/b", "chk-10/_metadata", "chk-2/_metadata", "other", "shared/s1"}
	if got := storagetest.List(t, st, ""); !slices.Equal(got, want) {
		t.Fatalf("List(\"\") = %v, want %v", got, want)
	}
	if got, _ := st.List(ctx, "chk-1"); !slices.Equal(got, []string{"chk-1/a", "chk-1/b", "chk-10/_metadata"}) {
		t.Fatalf("List(chk-1) = %v", got)
	}
	if got, _ := st.List(ctx, "chk-1/"); !slices.Equal(got, []string{"chk-1/a", "chk-1/b"}) {
		t.Fatalf("List(chk-1/) = %v", got)
	}
	if got, err := st.List(ctx, "nothing/"); err != nil || len(got) != 0 {
		t.Fatalf("List(nothing/) = %v, %v", got, err)
	}
	// A missing root lists nothing rather than failing.
	gone, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "gone"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone.Root()); err != nil {
		t.Fatal(err)
	}
	if got, err := gone.List(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("List of a missing root = %v, %v", got, err)
	}
}

func TestStorageLocalDeleteRemovesEmptyDirs(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	storagetest.Put(t, st, "chk-1/a", []byte("a"))
	storagetest.Put(t, st, "chk-1/b", []byte("b"))
	storagetest.Put(t, st, "top", []byte("t"))
	if err := st.Delete(ctx, "chk-1/a"); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, []string{"chk-1/", "chk-1/b", "top"}) {
		t.Fatalf("after one delete: %v", got)
	}
	if err := st.Delete(ctx, "chk-1/b"); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, []string{"top"}) {
		t.Fatalf("deleting the last file left: %v", got)
	}
	// Deleting a missing file is not an error.
	if err := st.Delete(ctx, "chk-1/b"); err != nil {
		t.Fatalf("Delete of a missing file: %v", err)
	}
	if err := st.Delete(ctx, "chk-9/nothing"); err != nil {
		t.Fatalf("Delete in a missing directory: %v", err)
	}
	// Deleting a file at the top never removes the root.
	if err := st.Delete(ctx, "top"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(st.Root()); err != nil || !fi.IsDir() {
		t.Fatalf("root removed: %v", err)
	}
}

func TestStorageLocalSweep(t *testing.T) {
	st := storagetest.NewLocal(t)
	storagetest.Put(t, st, "chk-1/_metadata", []byte("m"))
	storagetest.Put(t, st, "shared/a.sst", []byte("s"))
	for _, p := range []string{
		"chk-1/full-x.dat.aaaaaaaaaaaa.tmp",
		"chk-2/full-y.dat.bbbbbbbbbbbb.tmp",
		"shared/b.sst.cccccccccccc.tmp",
		"top.dddddddddddd.tmp",
	} {
		full := st.Path(p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(st.Path("chk-3/deeper/still"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := st.Sweep(); err != nil {
		t.Fatal(err)
	}
	want := []string{"chk-1/", "chk-1/_metadata", "shared/", "shared/a.sst"}
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, want) {
		t.Fatalf("after Sweep: %v, want %v", got, want)
	}
	// Idempotent.
	if err := st.Sweep(); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.WalkRoot(t, st.Root()); !slices.Equal(got, want) {
		t.Fatalf("after second Sweep: %v", got)
	}
}

func TestStorageLocalBadNames(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	for _, name := range []string{"", "/abs", "../escape", "..", "a/../b", "a//b", "./a", "a/", "chk-1/../../x"} {
		if w, err := st.Create(ctx, name); err == nil {
			_ = w.Abort()
			t.Errorf("Create(%q) succeeded", name)
		}
		if f, err := st.Open(ctx, name); err == nil {
			f.Close()
			t.Errorf("Open(%q) succeeded", name)
		}
		if err := st.Delete(ctx, name); err == nil {
			t.Errorf("Delete(%q) succeeded", name)
		}
	}
	if got := storagetest.WalkRoot(t, st.Root()); len(got) != 0 {
		t.Fatalf("bad names wrote %v", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(st.Root()), "escape")); err == nil {
		t.Fatal("a file escaped the root")
	}
}

func TestStorageLocalCreateCancelled(t *testing.T) {
	st := storagetest.NewLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if w, err := st.Create(ctx, "chk-1/x"); !errors.Is(err, context.Canceled) {
		if w != nil {
			_ = w.Abort()
		}
		t.Fatalf("Create with a cancelled context: %v", err)
	}
	if got := storagetest.WalkRoot(t, st.Root()); len(got) != 0 {
		t.Fatalf("cancelled Create wrote %v", got)
	}
}

func TestStorageLocalOpenMissing(t *testing.T) {
	st := storagetest.NewLocal(t)
	_, err := st.Open(context.Background(), "chk-1/_metadata")
	if !errors.Is(err, snapshot.ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open missing: %v", err)
	}
	if !strings.Contains(err.Error(), "chk-1/_metadata") {
		t.Fatalf("error does not name the file: %v", err)
	}
	if _, err := snapshot.ReadFile(context.Background(), st, "nope"); !errors.Is(err, snapshot.ErrNotExist) {
		t.Fatalf("ReadFile missing: %v", err)
	}
}

// TestStorageLocalConcurrent writes, lists and deletes from several
// goroutines at once (run it under -race).
func TestStorageLocalConcurrent(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				name := fmt.Sprintf("chk-%d/f-%d-%d", i%3, g, i)
				w, err := st.Create(ctx, name)
				if err != nil {
					errs <- err
					return
				}
				if _, err := w.Write([]byte(name)); err != nil {
					errs <- err
					return
				}
				if i%4 == 3 {
					if err := w.Abort(); err != nil {
						errs <- err
					}
					continue
				}
				if err := w.Commit(); err != nil {
					errs <- err
					return
				}
				if _, err := st.List(ctx, "chk-"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	names := storagetest.List(t, st, "")
	if len(names) != 8*15 {
		t.Fatalf("%d files committed, want %d", len(names), 8*15)
	}
	for _, n := range names {
		got, err := snapshot.ReadFile(ctx, st, n)
		if err != nil || string(got) != n {
			t.Fatalf("%s holds %q, %v", n, got, err)
		}
	}
}

// TestStorageLocalCreateRacesDelete has one goroutine create and commit
// files in a checkpoint directory while another deletes the last file of
// that directory, which removes the directory when it is empty. Creating a
// file must not fail because a concurrent Delete removed its directory
// between Create's MkdirAll and its OpenFile (as happens when one backend
// instance's snapshot fails and cleans up while another instance starts
// writing into the same chk-<id>).
func TestStorageLocalCreateRacesDelete(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	deadline := time.Now().Add(time.Second)
	if testing.Short() {
		deadline = time.Now().Add(200 * time.Millisecond)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("chk-1/file-%d", g)
			for time.Now().Before(deadline) {
				w, err := st.Create(ctx, name)
				if err != nil {
					fail(fmt.Errorf("Create: %w", err))
					return
				}
				if err := w.Commit(); err != nil {
					fail(fmt.Errorf("Commit: %w", err))
					return
				}
				if err := st.Delete(ctx, name); err != nil {
					fail(fmt.Errorf("Delete: %w", err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("BUG: Local.Create/Commit fail when a concurrent Delete removes the (empty) directory: %v", failures)
	}
}

// TestStorageLocalListPrefixes checks List finds exactly the names with
// the prefix however it cuts across directory names, now that it skips
// directories that cannot hold them.
func TestStorageLocalListPrefixes(t *testing.T) {
	ctx := context.Background()
	st, err := snapshot.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"chk-1/_metadata", "chk-12/data", "chk-12/inc-a/MANIFEST", "shared/a.sst", "shared/sub/b.sst", "top"}
	for _, name := range all {
		w, err := st.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, prefix := range []string{"", "c", "chk-", "chk-1", "chk-1/", "chk-12/inc", "chk-12/inc-a/", "shared/", "shared/s", "sh", "t", "x", "chk-12/data"} {
		var want []string
		for _, n := range all {
			if strings.HasPrefix(n, prefix) {
				want = append(want, n)
			}
		}
		got, err := st.List(ctx, prefix)
		if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("List(%q) = %v, %v; want %v", prefix, got, err, want)
		}
	}
}

// TestStorageConformanceLocal runs the storage contract's suite on Local;
// snapshot/s3store runs it on S3.
func TestStorageConformanceLocal(t *testing.T) {
	storagetest.Conformance(t, func(t *testing.T) snapshot.Storage { return storagetest.NewLocal(t) }, 3<<20)
}
