package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Tests of Commit's check of the files a checkpoint references: each
// handle's own files and the shared files it uploaded with their sizes,
// the shared files it reuses by listing.

// incTwo commits checkpoint 1, which uploads shared file f1, and returns
// checkpoint 2 of the same instance, which reuses f1, uploads f2 and has
// its own MANIFEST; every file is in st.
// incInst is the instance (and writer) id of the incremental sample checkpoints.
const incInst = "00c0ffee"

func incTwo(t *testing.T, st snapshot.Storage) (cp2 *snapshot.Checkpoint, f1, f2 snapshot.SharedFile) {
	t.Helper()
	f1 = storagetest.UploadShared(t, st, incInst, 1, "000004.sst")
	if err := snapshot.Commit(context.Background(), st, storagetest.IncrementalCheckpoint(t, st, 1, map[string][]snapshot.SharedFile{incInst: {f1}})); err != nil {
		t.Fatal(err)
	}
	f2 = storagetest.UploadShared(t, st, incInst, 2, "000007.sst")
	return storagetest.IncrementalCheckpoint(t, st, 2, map[string][]snapshot.SharedFile{incInst: {f1, f2}}), f1, f2
}

// spoiled is a checkpoint one of whose files a test spoils.
type spoiled struct {
	cp   *snapshot.Checkpoint
	name string // the file spoiled
	keys string // the key groups of its handle
}

// TestCommitChecksHandleFiles: a checkpoint one of whose files is missing,
// or, for a file it wrote, of another size than its reference records, does
// not commit; the error wraps ErrNotExist or ErrCorrupt and names the
// operator, the key groups and the file (once); nothing is written.
func TestCommitChecksHandleFiles(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(t *testing.T, st snapshot.Storage) spoiled
		how   string // "remove", "truncate" or "extend"
		want  error
	}{
		{"full data file missing", fullCase, "remove", snapshot.ErrNotExist},
		{"full data file truncated", fullCase, "truncate", snapshot.ErrCorrupt},
		{"private file missing", func(t *testing.T, st snapshot.Storage) spoiled {
			cp, _, _ := incTwo(t, st)
			return spoiled{cp, cp.Handles[0].Files[0].Name, "[0, 128)"}
		}, "remove", snapshot.ErrNotExist},
		{"private file truncated", func(t *testing.T, st snapshot.Storage) spoiled {
			cp, _, _ := incTwo(t, st)
			return spoiled{cp, cp.Handles[0].Files[0].Name, "[0, 128)"}
		}, "truncate", snapshot.ErrCorrupt},
		{"new shared file missing", func(t *testing.T, st snapshot.Storage) spoiled {
			cp, _, f2 := incTwo(t, st)
			return spoiled{cp, f2.Name, "[0, 128)"}
		}, "remove", snapshot.ErrNotExist},
		{"new shared file of another size", func(t *testing.T, st snapshot.Storage) spoiled {
			cp, _, f2 := incTwo(t, st)
			return spoiled{cp, f2.Name, "[0, 128)"}
		}, "extend", snapshot.ErrCorrupt},
		{"reused shared file missing", func(t *testing.T, st snapshot.Storage) spoiled {
			cp, f1, _ := incTwo(t, st)
			return spoiled{cp, f1.Name, "[0, 128)"}
		}, "remove", snapshot.ErrNotExist},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := storagetest.NewLocal(t)
			s := c.setup(t, st)
			p := filepath.Join(st.Root(), filepath.FromSlash(s.name))
			var err error
			switch c.how {
			case "remove":
				err = os.Remove(p)
			case "truncate":
				err = os.Truncate(p, 1)
			case "extend":
				var b []byte
				if b, err = os.ReadFile(p); err == nil {
					err = os.WriteFile(p, append(b, '!'), 0o644)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			before := storagetest.List(t, st, "")
			err = snapshot.Commit(ctx, st, s.cp)
			switch {
			case err == nil:
				t.Fatalf("Commit of a checkpoint whose file %s was spoiled (%s) succeeded", s.name, c.how)
			case !errors.Is(err, c.want):
				t.Fatalf("Commit = %v; want %v", err, c.want)
			case strings.Count(err.Error(), filepath.Base(s.name)) != 1 || !strings.Contains(err.Error(), p):
				t.Fatalf("Commit = %v; want the error to name %s once", err, p)
			case !strings.Contains(err.Error(), `operator "op" key groups `+s.keys):
				t.Fatalf("Commit = %v; want the error to name the operator and key groups %s", err, s.keys)
			}
			if after := storagetest.List(t, st, ""); !slices.Equal(after, before) {
				t.Fatalf("a refused commit changed the storage: %q to %q", before, after)
			}
			if _, err := st.Open(ctx, snapshot.MetadataPath(s.cp.ID)); !errors.Is(err, snapshot.ErrNotExist) {
				t.Fatalf("metadata of the refused checkpoint: %v", err)
			}
		})
	}
}

// fullCase is a full checkpoint 7 whose files are written; the file to
// spoil is the data file of its second handle.
func fullCase(t *testing.T, st snapshot.Storage) spoiled {
	t.Helper()
	cp := sampleCheckpoint(7)
	storagetest.PutHandleFiles(t, st, cp)
	return spoiled{cp, cp.Handles[1].Files[0].Name, "[64, 128)"}
}

// TestCommitChecksHandleFilesHappyPath: with every file in place, a full
// and an incremental checkpoint (reusing a shared file) commit and load.
func TestCommitChecksHandleFilesHappyPath(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	cp2, _, _ := incTwo(t, st)
	if err := snapshot.Commit(ctx, st, cp2); err != nil {
		t.Fatal(err)
	}
	cp3 := withOperatorState(sampleCheckpoint(5))
	storagetest.PutHandleFiles(t, st, cp3)
	for _, r := range cp3.OperatorStates {
		storagetest.Put(t, st, r.Name, make([]byte, r.Size))
	}
	if err := snapshot.Commit(ctx, st, cp3); err != nil {
		t.Fatal(err)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{1, 2, 5}) {
		t.Fatalf("completed = %v", ids)
	}
}

// openCounting is storage that records the names it opens and, if
// cancel is set, cancels a context at every Open.
type openCounting struct {
	snapshot.Storage
	mu     sync.Mutex
	opened []string
	cancel context.CancelFunc
}

func (s *openCounting) Open(ctx context.Context, name string) (snapshot.File, error) {
	s.mu.Lock()
	s.opened = append(s.opened, name)
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	return s.Storage.Open(ctx, name)
}

// TestCommitOpensOnlyNewFiles: Commit opens the files the checkpoint
// wrote (its own files and the shared files it uploaded), each once, and
// not the shared files it reuses, which were checked when their
// checkpoint committed: on an object store each open is a request.
func TestCommitOpensOnlyNewFiles(t *testing.T) {
	st := storagetest.NewLocal(t)
	cp2, f1, f2 := incTwo(t, st)
	// A second handle of another instance reuses f1 too.
	cp2.Handles[0].KeyGroupEnd = 64
	priv := storagetest.Put(t, st, snapshot.Dir(2)+"/inc-0bad/MANIFEST-000002", []byte("manifest of 0bad"))
	h := cp2.Handles[0]
	h.InstanceID, h.KeyGroupStart, h.KeyGroupEnd = "0bad", 64, 128
	h.Files, h.Shared = []snapshot.FileRef{priv}, []snapshot.SharedFile{f1}
	cp2.Handles = append(cp2.Handles, h)
	counting := &openCounting{Storage: st}
	if err := snapshot.Commit(context.Background(), counting, cp2); err != nil {
		t.Fatal(err)
	}
	slices.Sort(counting.opened)
	want := []string{cp2.Handles[0].Files[0].Name, priv.Name, f2.Name}
	slices.Sort(want)
	if !slices.Equal(counting.opened, want) {
		t.Fatalf("Commit opened %q; want %q", counting.opened, want)
	}
}

// TestCommitCheckStopsWhenCancelled: once its context is cancelled, the
// check of a checkpoint's files opens no more and Commit fails with the
// context's error, writing nothing.
func TestCommitCheckStopsWhenCancelled(t *testing.T) {
	st := storagetest.NewLocal(t)
	cp := sampleCheckpoint(7)
	h := &cp.Handles[0]
	for i := range 100 {
		h.Files = append(h.Files, snapshot.FileRef{Name: fmt.Sprintf("%s/extra-%03d", snapshot.Dir(7), i), Size: 1})
	}
	storagetest.PutHandleFiles(t, st, cp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counting := &openCounting{Storage: st, cancel: cancel}
	err := snapshot.Commit(ctx, counting, cp)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit = %v; want context.Canceled", err)
	}
	if n, total := len(counting.opened), len(snapshot.Files(cp)); n >= total {
		t.Fatalf("Commit opened %d of %d files after its context was cancelled", n, total)
	}
	if ids := storagetest.Completed(t, st); len(ids) != 0 {
		t.Fatalf("completed after a cancelled commit: %v", ids)
	}
}
