package retention_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/storagetest"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// Tests of the garbage collection of shared files that Retain and Recover
// do, with sequences of checkpoints shaped like incremental ones (each
// uploads its new SSTs to shared/ under snapshot.SharedName and reuses
// the previous completed checkpoint's).

// incSim drives a simulated incremental job: a set of live SSTs per
// instance that changes between checkpoints, checkpoints that reuse the
// uploads of the last completed one, some completed, some aborted, some
// left in flight.
type incSim struct {
	t     *testing.T
	r     *rand.Rand
	st    *snapshot.Local
	keep  int
	next  int   // next local file number
	live  []int // live local file numbers (one instance)
	prev  map[string]snapshot.SharedFile
	newer map[int64]bool // checkpoints in flight, newer than the newest completed
}

// take uploads checkpoint id: the live SSTs, reusing prev.
func (s *incSim) take(id int64) *snapshot.Checkpoint {
	// The state changes: some files compacted away, some new.
	s.live = slices.DeleteFunc(s.live, func(int) bool { return s.r.IntN(4) == 0 })
	for range 1 + s.r.IntN(3) {
		s.next++
		s.live = append(s.live, s.next)
	}
	var files []snapshot.SharedFile
	for _, n := range s.live {
		local := fmt.Sprintf("%06d.sst", n)
		if f, ok := s.prev[local]; ok {
			files = append(files, f)
		} else {
			files = append(files, storagetest.UploadShared(s.t, s.st, incInst, id, local))
		}
	}
	return storagetest.IncrementalCheckpoint(s.t, s.st, id, map[string][]snapshot.SharedFile{incInst: files})
}

// check verifies shared/ holds exactly the files the retained checkpoints
// reference plus the uploads of checkpoints in flight.
func (s *incSim) check(step string) {
	s.t.Helper()
	ids := storagetest.Completed(s.t, s.st)
	if len(ids) > s.keep {
		s.t.Fatalf("%s: %d checkpoints retained (%v), keep %d", step, len(ids), ids, s.keep)
	}
	want := incRefNames(s.t, s.st, ids)
	for _, n := range storagetest.List(s.t, s.st, snapshot.SharedDir+"/") {
		for id := range s.newer {
			if strings.Contains(n, fmt.Sprintf("-c%d-", id)) && !slices.Contains(want, n) {
				want = append(want, n)
			}
		}
	}
	slices.Sort(want)
	if got := storagetest.List(s.t, s.st, snapshot.SharedDir+"/"); !slices.Equal(got, want) {
		s.t.Fatalf("%s: shared/ holds\n%v\nwant (referenced by %v, or in flight %v)\n%v", step, got, ids, s.newer, want)
	}
	// Checkpoint directories: the retained ones and those in flight.
	dirs := map[string]bool{}
	for _, n := range storagetest.List(s.t, s.st, "chk-") {
		dirs[strings.SplitN(n, "/", 2)[0]] = true
	}
	for _, id := range ids {
		delete(dirs, snapshot.Dir(id))
	}
	for id := range s.newer {
		delete(dirs, snapshot.Dir(id))
	}
	if len(dirs) > 0 {
		s.t.Fatalf("%s: stray checkpoint directories %v", step, dirs)
	}
}

func TestSharedRetain(t *testing.T) {
	for _, keep := range []int{1, 3} {
		for seed := uint64(1); seed <= 2; seed++ {
			t.Run(fmt.Sprintf("keep=%d/seed=%d", keep, seed), func(t *testing.T) {
				ctx := context.Background()
				s := &incSim{t: t, r: rand.New(rand.NewPCG(seed, 99)), st: storagetest.NewLocal(t), keep: keep, newer: map[int64]bool{}}
				var refused, subsumedN int
				var pending []*snapshot.Checkpoint // in flight, completed later or subsumed
				completed := func(cp *snapshot.Checkpoint) {
					s.prev = sharedMap(cp)
					for n := range s.newer {
						if n <= cp.ID {
							delete(s.newer, n)
						}
					}
					s.check(fmt.Sprintf("after checkpoint %d", cp.ID))
				}
				// complete completes cp, which may be refused if retention
				// dropped a file it reuses since it took its base (its base
				// is then no longer retained): never committed then.
				complete := func(cp *snapshot.Checkpoint) {
					err := retention.Complete(ctx, s.st, cp, keep)
					switch {
					case err == nil:
						completed(cp)
					case strings.Contains(err.Error(), "missing"):
						refused++
						if slices.Contains(storagetest.Completed(t, s.st), cp.ID) {
							t.Fatalf("checkpoint %d refused but committed", cp.ID)
						}
					default:
						t.Fatalf("Complete(%d): %v", cp.ID, err)
					}
				}
				for id := int64(1); id <= 30; id++ {
					cp := s.take(id)
					s.newer[id] = true // its uploads are in flight
					switch x := s.r.IntN(10); {
					case x < 2 && len(pending) < 2:
						pending = append(pending, cp)
						continue
					case x < 3: // aborted after uploading: debris
						continue
					}
					// Some in-flight checkpoints complete before this one;
					// the rest are subsumed by it.
					var subsumed []*snapshot.Checkpoint
					for _, old := range pending {
						if s.r.IntN(2) == 0 {
							complete(old)
						} else {
							subsumed = append(subsumed, old)
						}
					}
					pending = nil
					complete(cp)
					for _, old := range subsumed {
						if ids := storagetest.Completed(t, s.st); len(ids) > 0 && ids[len(ids)-1] > old.ID {
							subsumedN++
							if err := retention.Complete(ctx, s.st, old, keep); !errors.Is(err, snapshot.ErrSubsumed) {
								t.Fatalf("Complete(%d) after %d = %v, want ErrSubsumed", old.ID, ids[len(ids)-1], err)
							}
						}
					}
					s.check(fmt.Sprintf("after subsumed ones of %d", id))
				}
				t.Logf("%d refused for a missing shared file, %d subsumed", refused, subsumedN)
				// Recover: nothing is in flight any more.
				if err := retention.Recover(ctx, s.st); err != nil {
					t.Fatal(err)
				}
				s.newer = map[int64]bool{}
				s.check("after Recover")
			})
		}
	}
}

func sharedMap(cp *snapshot.Checkpoint) map[string]snapshot.SharedFile {
	m := map[string]snapshot.SharedFile{}
	for _, h := range cp.Handles {
		for _, f := range h.Shared {
			m[f.LocalName] = f
		}
	}
	return m
}

func TestSharedRetainExact(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	f1 := storagetest.UploadShared(t, st, incInst, 1, "000001.sst")
	f2 := storagetest.UploadShared(t, st, incInst, 1, "000002.sst")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(retention.Complete(ctx, st, storagetest.IncrementalCheckpoint(t, st, 1, map[string][]snapshot.SharedFile{incInst: {f1, f2}}), 3))
	f3 := storagetest.UploadShared(t, st, incInst, 2, "000003.sst")
	must(retention.Complete(ctx, st, storagetest.IncrementalCheckpoint(t, st, 2, map[string][]snapshot.SharedFile{incInst: {f2, f3}}), 3))
	// Checkpoint 3 aborted after uploading; 4 in flight; 5 completes.
	aborted := storagetest.UploadShared(t, st, incInst, 3, "000004.sst")
	storagetest.Put(t, st, snapshot.Dir(3)+"/inc-x/MANIFEST-000001", []byte("m"))
	f5 := storagetest.UploadShared(t, st, incInst, 5, "000005.sst")
	flight6 := storagetest.UploadShared(t, st, incInst, 6, "000006.sst")
	storagetest.Put(t, st, snapshot.Dir(6)+"/inc-x/MANIFEST-000001", []byte("m"))
	// A file not named by SharedName: not ours to delete.
	storagetest.Put(t, st, "shared/README", []byte("foreign"))
	must(retention.Complete(ctx, st, storagetest.IncrementalCheckpoint(t, st, 5, map[string][]snapshot.SharedFile{incInst: {f3, f5}}), 3))

	want := []string{f1.Name, f2.Name, f3.Name, f5.Name, flight6.Name, "shared/README"}
	slices.Sort(want)
	if got := storagetest.List(t, st, "shared/"); !slices.Equal(got, want) {
		t.Errorf("keep 3: shared/ = %v\nwant %v (aborted %s deleted)", got, want, aborted.Name)
	}
	if got := storagetest.List(t, st, snapshot.Dir(3)+"/"); len(got) != 0 {
		t.Errorf("aborted checkpoint 3's directory survived: %v", got)
	}
	if got := storagetest.List(t, st, snapshot.Dir(6)+"/"); len(got) != 1 {
		t.Errorf("in-flight checkpoint 6's directory: %v", got)
	}
	// keep 1: only checkpoint 5's files and 6's uploads.
	must(retention.Retain(ctx, st, 1))
	want = []string{f3.Name, f5.Name, flight6.Name, "shared/README"}
	slices.Sort(want)
	if got := storagetest.List(t, st, "shared/"); !slices.Equal(got, want) {
		t.Errorf("keep 1: shared/ = %v\nwant %v", got, want)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{5}) {
		t.Errorf("keep 1: completed %v", ids)
	}
	// Recover: no checkpoint in flight, every unreferenced upload goes.
	must(retention.Recover(ctx, st))
	want = []string{f3.Name, f5.Name, "shared/README"}
	slices.Sort(want)
	if got := storagetest.List(t, st, "shared/"); !slices.Equal(got, want) {
		t.Errorf("Recover: shared/ = %v\nwant %v", got, want)
	}
	if got := storagetest.List(t, st, snapshot.Dir(6)+"/"); len(got) != 0 {
		t.Errorf("Recover kept checkpoint 6's debris: %v", got)
	}
}

// TestSharedRecoverKeepsTornCheckpoint guards that Recover never deletes
// a checkpoint whose metadata exists but does not verify (here torn), nor
// any shared file, which it may reference.
// Guards issue 12 case 6.
func TestSharedRecoverKeepsTornCheckpoint(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	f1 := storagetest.UploadShared(t, st, incInst, 1, "000001.sst")
	f2 := storagetest.UploadShared(t, st, incInst, 2, "000002.sst")
	if err := snapshot.Commit(ctx, st, storagetest.IncrementalCheckpoint(t, st, 1, map[string][]snapshot.SharedFile{incInst: {f1}})); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Commit(ctx, st, storagetest.IncrementalCheckpoint(t, st, 2, map[string][]snapshot.SharedFile{incInst: {f1, f2}})); err != nil {
		t.Fatal(err)
	}
	// A torn metadata write: checkpoint 2 does not exist.
	p := st.Path(snapshot.MetadataPath(2))
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := retention.Recover(ctx, st); !errors.Is(err, snapshot.ErrUnreadable) {
		t.Fatalf("Recover = %v, want ErrUnreadable", err)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{1, 2}) {
		t.Errorf("checkpoints with metadata after Recover: %v", ids)
	}
	if got := storagetest.List(t, st, "shared/"); !slices.Equal(got, []string{f1.Name, f2.Name}) {
		t.Errorf("shared/ after Recover: %v, want %s and %s", got, f1.Name, f2.Name)
	}
}

func TestSharedRecoverRemovesTemporaryFiles(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	w, err := st.Create(ctx, snapshot.SharedName(incInst, 4, "000009.sst"))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half an upload"))
	// The process dies here: the writer is neither committed nor aborted.
	if err := retention.Recover(ctx, st); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.Walk(st.Root(), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("after Recover: %v", left)
	}
}

func TestSharedCommitRefusesSubsumed(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	f5 := storagetest.UploadShared(t, st, incInst, 5, "000001.sst")
	f6 := storagetest.UploadShared(t, st, incInst, 6, "000001.sst")
	cp5 := storagetest.IncrementalCheckpoint(t, st, 5, map[string][]snapshot.SharedFile{incInst: {f5}})
	cp6 := storagetest.IncrementalCheckpoint(t, st, 6, map[string][]snapshot.SharedFile{incInst: {f6}})
	if err := retention.Complete(ctx, st, cp6, 3); err != nil {
		t.Fatal(err)
	}
	err := snapshot.Commit(ctx, st, cp5)
	if !errors.Is(err, snapshot.ErrSubsumed) {
		t.Fatalf("Commit(5) after 6 = %v, want ErrSubsumed", err)
	}
	if err := retention.Complete(ctx, st, cp5, 3); !errors.Is(err, snapshot.ErrSubsumed) {
		t.Fatalf("Complete(5) after 6 = %v, want ErrSubsumed", err)
	}
	if ids := storagetest.Completed(t, st); !slices.Equal(ids, []int64{6}) {
		t.Errorf("completed: %v", ids)
	}
	// Committing the same checkpoint twice is refused too, and not as
	// subsumed.
	if err := snapshot.Commit(ctx, st, cp6); err == nil || errors.Is(err, snapshot.ErrSubsumed) {
		t.Errorf("Commit(6) again = %v", err)
	}
}

func TestSharedCommitRefusesMissingFile(t *testing.T) {
	ctx := context.Background()
	st := storagetest.NewLocal(t)
	f1 := storagetest.UploadShared(t, st, incInst, 1, "000001.sst")
	f2 := storagetest.UploadShared(t, st, incInst, 1, "000002.sst")
	cp := storagetest.IncrementalCheckpoint(t, st, 1, map[string][]snapshot.SharedFile{incInst: {f1, f2}, "other": {f1}})
	if err := st.Delete(ctx, f2.Name); err != nil {
		t.Fatal(err)
	}
	err := snapshot.Commit(ctx, st, cp)
	if err == nil || !strings.Contains(err.Error(), f2.Name) {
		t.Fatalf("Commit with %s missing = %v, want an error naming it", f2.Name, err)
	}
	if err := retention.Complete(ctx, st, cp, 1); err == nil {
		t.Fatal("Complete with a missing shared file succeeded")
	}
	if ids := storagetest.Completed(t, st); len(ids) != 0 {
		t.Errorf("completed: %v", ids)
	}
	if _, err := st.Open(ctx, snapshot.MetadataPath(1)); !errors.Is(err, snapshot.ErrNotExist) {
		t.Errorf("metadata of the refused checkpoint: %v", err)
	}
	// Complete did not run retention either: f1 is still there.
	if got := storagetest.List(t, st, "shared/"); !slices.Equal(got, []string{f1.Name}) {
		t.Errorf("shared/ = %v", got)
	}
}
