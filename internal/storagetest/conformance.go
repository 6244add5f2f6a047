package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Conformance checks that storage keeps the snapshot.Storage contract:
// commits visible whole and only then, exclusive creates, aborts that
// leave nothing, listing by prefix, deletion, refused names, reads at any
// offset, and one winner among concurrent writers of one name. It runs
// each case as a subtest on storage from open, new for each; large is a
// size of file big enough to take the storage's slow path (a multipart
// upload), or 0.
func Conformance(t *testing.T, open func(t *testing.T) snapshot.Storage, large int) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, st snapshot.Storage)
	}{
		{"CommitVisible", confCommitVisible},
		{"NeverReplaces", confNeverReplaces},
		{"Abort", func(t *testing.T, st snapshot.Storage) { confAbort(t, st, large) }},
		{"ListPrefix", confList},
		{"Delete", confDelete},
		{"BadNames", confBadNames},
		{"OpenMissing", confOpenMissing},
		{"ReadAt", func(t *testing.T, st snapshot.Storage) { confReadAt(t, st, 10000) }},
		{"Large", func(t *testing.T, st snapshot.Storage) { confReadAt(t, st, large) }},
		{"OneWinner", func(t *testing.T, st snapshot.Storage) { confOneWinner(t, st, 0) }},
		{"OneWinnerLarge", func(t *testing.T, st snapshot.Storage) { confOneWinner(t, st, large) }},
		{"Cancelled", confCancelled},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

var ctx = context.Background()

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed + i>>12)
	}
	return b
}

func put(t *testing.T, st snapshot.Storage, name string, data []byte) {
	t.Helper()
	w, err := st.Create(ctx, name)
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

func list(t *testing.T, st snapshot.Storage, prefix string) []string {
	t.Helper()
	names, err := st.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func holds(t *testing.T, st snapshot.Storage, name string, want []byte) {
	t.Helper()
	got, err := snapshot.ReadFile(ctx, st, name)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s holds %d bytes, %v; want %d bytes", name, len(got), err, len(want))
	}
}

func confCommitVisible(t *testing.T, st snapshot.Storage) {
	w, err := st.Create(ctx, "chk-1/a")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello "))
	w.Write([]byte("world"))
	if names := list(t, st, ""); len(names) != 0 {
		t.Fatalf("before Commit List = %v", names)
	}
	if _, err := st.Open(ctx, "chk-1/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open before Commit = %v, want ErrNotExist", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	holds(t, st, "chk-1/a", []byte("hello world"))
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Commit succeeded")
	}
	if err := w.Commit(); err == nil {
		t.Fatal("second Commit succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	holds(t, st, "chk-1/a", []byte("hello world"))
	put(t, st, "empty", nil)
	holds(t, st, "empty", []byte{})
}

func confNeverReplaces(t *testing.T, st snapshot.Storage) {
	put(t, st, "a", []byte("first"))
	if w, err := st.Create(ctx, "a"); !errors.Is(err, fs.ErrExist) {
		if w != nil {
			w.Abort()
		}
		t.Fatalf("Create of an existing name = %v, want ErrExist", err)
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
	if err := w1.Commit(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Commit of one name = %v, want ErrExist", err)
	}
	holds(t, st, "a", []byte("first"))
	holds(t, st, "chk-1/b", []byte("two, longer"))
	if got := list(t, st, ""); !slices.Equal(got, []string{"a", "chk-1/b"}) {
		t.Fatalf("List = %v", got)
	}
}

func confAbort(t *testing.T, st snapshot.Storage, large int) {
	for i, size := range []int{100 << 10, large} {
		name := fmt.Sprintf("chk-3/full-%d.dat", i)
		w, err := st.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(pattern(size, i)); err != nil {
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
		if names := list(t, st, ""); len(names) != 0 {
			t.Fatalf("after Abort List = %v", names)
		}
		// The name is free again.
		put(t, st, name, []byte("again"))
		if err := st.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
}

func confList(t *testing.T, st snapshot.Storage) {
	for _, n := range []string{"chk-2/_metadata", "chk-10/_metadata", "chk-1/b", "chk-1/a", "shared/s1", "other"} {
		put(t, st, n, []byte(n))
	}
	for prefix, want := range map[string][]string{
		"":        {"chk-1/a", "chk-1/b", "chk-10/_metadata", "chk-2/_metadata", "other", "shared/s1"},
		"chk-1/":  {"chk-1/a", "chk-1/b"},
		"chk-1":   {"chk-1/a", "chk-1/b", "chk-10/_metadata"},
		"shared/": {"shared/s1"},
		"none/":   nil,
	} {
		if got := list(t, st, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %v, want %v", prefix, got, want)
		}
	}
}

func confDelete(t *testing.T, st snapshot.Storage) {
	put(t, st, "chk-1/a", []byte("a"))
	put(t, st, "chk-1/b", []byte("b"))
	if err := st.Delete(ctx, "chk-1/a"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "chk-1/a"); err != nil {
		t.Fatalf("Delete of a missing file: %v", err)
	}
	if err := st.Delete(ctx, "never/was"); err != nil {
		t.Fatalf("Delete of a missing file: %v", err)
	}
	if got := list(t, st, ""); !slices.Equal(got, []string{"chk-1/b"}) {
		t.Fatalf("List = %v", got)
	}
	if _, err := st.Open(ctx, "chk-1/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a deleted file: %v", err)
	}
	// A deleted name can be created again.
	put(t, st, "chk-1/a", []byte("new"))
	holds(t, st, "chk-1/a", []byte("new"))
}

func confBadNames(t *testing.T, st snapshot.Storage) {
	for _, n := range []string{"", "/abs", "../up", "a/../b", "a//b", "a/./b", "a/", `a\b`} {
		if w, err := st.Create(ctx, n); !errors.Is(err, fs.ErrInvalid) {
			if w != nil {
				w.Abort()
			}
			t.Errorf("Create(%q) = %v, want ErrInvalid", n, err)
		}
		if _, err := st.Open(ctx, n); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", n, err)
		}
		if err := st.Delete(ctx, n); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Delete(%q) = %v, want ErrInvalid", n, err)
		}
	}
}

func confOpenMissing(t *testing.T, st snapshot.Storage) {
	_, err := st.Open(ctx, "chk-1/_metadata")
	if !errors.Is(err, fs.ErrNotExist) || !bytes.Contains([]byte(err.Error()), []byte("chk-1/_metadata")) {
		t.Fatalf("Open missing = %v, want ErrNotExist naming the file", err)
	}
}

func confReadAt(t *testing.T, st snapshot.Storage, size int) {
	if size == 0 {
		t.Skip("no large size given")
	}
	data := pattern(size, 3)
	put(t, st, "f", data)
	f, err := st.Open(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != int64(size) {
		t.Fatalf("Size = %d, want %d", f.Size(), size)
	}
	// Sequential, as io.Copy reads, then jumps back and forth.
	got, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("sequential read: %d bytes, %v", len(got), err)
	}
	buf := make([]byte, 100)
	for _, off := range []int{size / 2, 0, size - 100, size / 3} {
		if _, err := f.ReadAt(buf, int64(off)); err != nil || !bytes.Equal(buf, data[off:off+100]) {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
	}
	if n, err := f.ReadAt(buf, int64(size-50)); n != 50 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt past the end: %d, %v", n, err)
	}
	if n, err := f.ReadAt(buf, int64(size)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt at the end: %d, %v", n, err)
	}
}

func confOneWinner(t *testing.T, st snapshot.Storage, size int) {
	if size == 0 {
		size = 1000
	}
	const writers = 4
	for round := range 2 {
		name := fmt.Sprintf("chk-%d/_metadata", round)
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				w, err := st.Create(ctx, name)
				if err == nil {
					if _, err = w.Write(pattern(size, i)); err == nil {
						err = w.Commit()
					}
					if err != nil {
						w.Abort()
					}
				}
				errs[i] = err
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both committed", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, fs.ErrExist):
				t.Fatalf("round %d: writer %d: %v, want ErrExist", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer committed: %v", round, errs)
		}
		holds(t, st, name, pattern(size, winner))
	}
}

func confCancelled(t *testing.T, st snapshot.Storage) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if w, err := st.Create(c, "chk-1/x"); !errors.Is(err, context.Canceled) {
		if w != nil {
			w.Abort()
		}
		t.Fatalf("Create with a cancelled context: %v", err)
	}
	if names := list(t, st, ""); len(names) != 0 {
		t.Fatalf("cancelled Create wrote %v", names)
	}
}
