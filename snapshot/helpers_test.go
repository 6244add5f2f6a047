package snapshot_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pebblestate/pebblestate/snapshot"
)

// Storage helpers of the operator-state tests: a new root, a committed
// file, a listing.

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

func incListNames(t testing.TB, st snapshot.Storage, prefix string) []string {
	t.Helper()
	names, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return names
}
