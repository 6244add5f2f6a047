package snapshot_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// TestLocalSymlinkedRoot guards issue 12's eighth complaint: a root
// reached through a symbolic link looked empty, retention deleted
// nothing, and a checkpoint older than the newest overwrote a completed
// one.
func TestLocalSymlinkedRoot(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	target := filepath.Join(parent, "target")
	link := filepath.Join(parent, "link")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewLocal(link)
	if err != nil {
		t.Fatal(err)
	}
	if real, _ := filepath.EvalSymlinks(target); st.Root() != real {
		t.Errorf("Root() = %s, want %s", st.Root(), real)
	}
	for id := int64(1); id <= 5; id++ {
		cp := sampleCheckpoint(id)
		storagetest.PutHandleFiles(t, st, cp)
		if err := retention.Complete(ctx, st, cp, 2); err != nil {
			t.Fatal(err)
		}
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{4, 5}) {
		t.Fatalf("completed through the link: %v, want retention to keep 4 and 5", ids)
	}
	// A second Local on the link sees the same checkpoints.
	again, err := snapshot.NewLocal(link)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := snapshot.Latest(ctx, again); err != nil || cp.ID != 5 {
		t.Fatalf("Latest through the link = %v, %v", cp, err)
	}
	if err := snapshot.Commit(ctx, again, sampleCheckpoint(3)); !errors.Is(err, snapshot.ErrSubsumed) {
		t.Fatalf("Commit(3) after 5 = %v, want ErrSubsumed", err)
	}
	if err := snapshot.Commit(ctx, again, sampleCheckpoint(5)); !errors.Is(err, snapshot.ErrExist) {
		t.Fatalf("Commit(5) again = %v, want ErrExist", err)
	}
}

// TestLocalZeroValue guards issue 12's tenth complaint: a zero Local
// wrote chk-1/ into the working directory. Every method fails instead.
func TestLocalZeroValue(t *testing.T) {
	ctx := context.Background()
	wd := t.TempDir()
	t.Chdir(wd)
	for _, st := range []*snapshot.Local{{}, nil} {
		if w, err := st.Create(ctx, "chk-1/_metadata"); err == nil {
			_ = w.Abort()
			t.Error("Create succeeded")
		}
		if _, err := st.Open(ctx, "chk-1/_metadata"); err == nil {
			t.Error("Open succeeded")
		}
		if _, err := st.List(ctx, ""); err == nil {
			t.Error("List succeeded")
		}
		if err := st.Delete(ctx, "chk-1/_metadata"); err == nil {
			t.Error("Delete succeeded")
		}
		if err := st.RemoveTemp(ctx, func(string) bool { return true }); err == nil {
			t.Error("RemoveTemp succeeded")
		}
		if err := st.Sweep(); err == nil {
			t.Error("Sweep succeeded")
		}
		if _, err := st.LocalPath("chk-1/_metadata"); err == nil {
			t.Error("LocalPath succeeded")
		}
		if err := snapshot.Commit(ctx, st, sampleCheckpoint(1)); err == nil || !strings.Contains(err.Error(), "NewLocal") {
			t.Errorf("Commit = %v", err)
		}
		if err := retention.Retain(ctx, st, 1); err == nil {
			t.Error("Retain succeeded")
		}
		if err := retention.Recover(ctx, st); err == nil {
			t.Error("Recover succeeded")
		}
	}
	if _, err := snapshot.NewLocal(""); err == nil {
		t.Error(`NewLocal("") succeeded`)
	}
	if got := storagetest.WalkRoot(t, wd); len(got) != 0 {
		t.Fatalf("the working directory holds %v", got)
	}
}
