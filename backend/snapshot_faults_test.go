package backend_test

// The snapshot conformance suite, part three: storage that fails, and
// metadata damaged on disk. Every failure must be a clear error naming the
// file, never a panic, and never a half-restored backend. Every test runs
// in both modes; damaged data files, which differ by mode, are in
// snapshot_damage_test.go.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// TestSnapshotFaultsStorage: a checkpoint whose storage fails returns the
// error and leaves nothing behind; the next one succeeds.
func TestSnapshotFaultsStorage(t *testing.T) {
	isData := func(name string) bool { return !isMetadata(name) }
	limit := func(pick func(string) bool, n int) func(string) int {
		return func(name string) int {
			if pick(name) {
				return n
			}
			return -1
		}
	}
	cases := []struct {
		name  string
		setup func(s *faultStorage)
	}{
		{"create data", func(s *faultStorage) { s.createErr = isData }},
		{"first write of data", func(s *faultStorage) { s.writeLimit = limit(isData, 0) }},
		{"write of data after 100 bytes", func(s *faultStorage) { s.writeLimit = limit(isData, 100) }},
		{"write of data after 20000 bytes", func(s *faultStorage) { s.writeLimit = limit(isData, 20000) }},
		{"commit data", func(s *faultStorage) { s.commitErr = isData }},
		{"create metadata", func(s *faultStorage) { s.createErr = isMetadata }},
		{"write metadata", func(s *faultStorage) { s.writeLimit = limit(isMetadata, 10) }},
		{"commit metadata", func(s *faultStorage) { s.commitErr = isMetadata }},
	}
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				local := newStorage(t)
				st := &faultStorage{Storage: local}
				c.setup(st)
				j := newJob(t, st, 1, m.each(), func(o *backend.Options) { o.SnapshotCompression = "none" })
				j.bigState(1000)
				_, err := j.b().Checkpoint(ctx, st, 1)
				if !errors.Is(err, errInjected) {
					t.Fatalf("Checkpoint = %v; want the injected fault", err)
				}
				m.emptyRoot(t, local.Root(), "after a failed checkpoint")
				// The backend still works, and the next checkpoint succeeds.
				cp := must(j.b().Checkpoint(ctx, local, 2)).in(t)
				restoreJob(t, local, cp.Handles, 1, m.each(), j.model).verify(j.model, "checkpoint 2")
			})
		}
	})
}

// TestSnapshotFaultsRetentionFails: the checkpoint is committed, then
// retention fails to delete an old one. The checkpoint exists (its
// metadata is written, and Checkpoint may report the retention error), so
// its files must not be deleted as if it had been aborted.
func TestSnapshotFaultsRetentionFails(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		local := newStorage(t)
		st := &faultStorage{Storage: local}
		j := newJob(t, st, 1, m.each())
		j.apply(rand.New(rand.NewPCG(8, 8)), 500, 100, "one")
		must(j.b().Checkpoint(ctx, st, 1)).in(t)
		j.apply(rand.New(rand.NewPCG(9, 9)), 500, 100, "two")
		st.hook(func() { st.deleteErr = func(n string) bool { return strings.HasPrefix(n, snapshot.Dir(1)+"/") } })
		_, err := j.b().Checkpoint(ctx, st, 2)
		t.Logf("Checkpoint(2) with retention failing = %v", err)
		cp := must(snapshot.Latest(ctx, local)).in(t)
		if cp.ID != 2 {
			t.Fatalf("latest checkpoint %d; checkpoint 2 was committed before retention ran", cp.ID)
		}
		dir := filepath.Join(t.TempDir(), "r")
		r, rerr := backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir}, local, cp.Handles)
		if rerr != nil {
			t.Fatalf("BUG: checkpoint %d was committed, but after retention failed (%v) Checkpoint deleted its data as aborted: restore = %v; storage: %v",
				cp.ID, err, rerr, tree(t, local.Root()))
		}
		closeAtEnd(t, r, dir)
		fxEqual(t, fmt.Sprint("latest checkpoint ", cp.ID), fxRead(t, r), j.model)
	})
}

// TestSnapshotFaultsCorruptRetainedMetadata: with two checkpoints
// retained, the older one's metadata rots. Taking the next checkpoint must
// leave a restorable latest checkpoint (retention reads the retained
// metadata, fails on the corrupt one, and Checkpoint must not then delete
// the data of the checkpoint it has just committed).
func TestSnapshotFaultsCorruptRetainedMetadata(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		j := newJob(t, st, 1, m.each(), func(o *backend.Options) { o.RetainedCheckpoints = 2 })
		j.apply(rand.New(rand.NewPCG(10, 10)), 500, 100, "one")
		must(j.b().Checkpoint(ctx, st, 1)).in(t)
		rewrite(t, st.Path(snapshot.MetadataPath(1)), func(b []byte) []byte { b[30] ^= 4; return b })
		j.apply(rand.New(rand.NewPCG(11, 11)), 500, 100, "two")
		_, err := j.b().Checkpoint(ctx, st, 2)
		t.Logf("Checkpoint(2) with checkpoint 1's metadata corrupt = %v", err)
		cp, lerr := snapshot.Latest(ctx, st)
		if lerr != nil {
			t.Fatalf("no checkpoint left: %v (storage %v)", lerr, tree(t, st.Root()))
		}
		dir := filepath.Join(t.TempDir(), "r")
		r, rerr := backend.Restore(ctx, backend.Int64, backend.Options{Dir: dir}, st, cp.Handles)
		if rerr != nil {
			t.Fatalf("BUG: latest checkpoint %d cannot be restored after Checkpoint failed with %v: %v (storage %v)", cp.ID, err, rerr, tree(t, st.Root()))
		}
		closeAtEnd(t, r, dir)
		fxEqual(t, fmt.Sprint("latest checkpoint ", cp.ID), fxRead(t, r), j.model)
	})
}

// checkpointed takes checkpoints ids of a backend in mode m after random
// writes before each, retaining them all, and returns the storage, the
// model as of each and the checkpoints.
func checkpointed(t testing.TB, m mode, comp string, ids ...int64) (*snapshot.Local, []*fxModel, []*snapshot.Checkpoint) {
	t.Helper()
	st := newStorage(t)
	j := newJob(t, st, 1, m.each(), func(o *backend.Options) { o.SnapshotCompression, o.RetainedCheckpoints = comp, len(ids) })
	var models []*fxModel
	var cps []*snapshot.Checkpoint
	for _, id := range ids {
		j.apply(rand.New(rand.NewPCG(uint64(id), 77)), 800, 150, fmt.Sprint("c", id))
		cps = append(cps, must(j.b().Checkpoint(context.Background(), st, id)).in(t))
		models = append(models, j.model.clone())
	}
	return st, models, cps
}

// wantRestoreErr checks err is target, names every fragment, and that the
// restore directory is gone.
func wantRestoreErr(t testing.TB, err error, dir string, target error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("restore succeeded")
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %q is not %v", err, target)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not name %q", err, f)
		}
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
		t.Fatalf("a failed restore left %s", dir)
	}
}

// rewrite replaces the file at p by f of its content.
func rewrite(t testing.TB, p string, f func([]byte) []byte) {
	t.Helper()
	noErr(t, os.WriteFile(p, f(must(os.ReadFile(p)).in(t)), 0o644))
}

// reframe rewrites a metadata file with another version or a changed
// checkpoint, with a correct length and checksum.
func reframe(t testing.TB, p string, version uint32, mutate func(*snapshot.Checkpoint)) {
	t.Helper()
	cp := must(snapshot.DecodeMetadata(p, must(os.ReadFile(p)).in(t))).in(t)
	if mutate != nil {
		mutate(cp)
	}
	body := must(json.Marshal(cp)).in(t)
	out := append([]byte("PBSTMETA"), binary.BigEndian.AppendUint32(nil, version)...)
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	out = append(out, body...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
	noErr(t, os.WriteFile(p, out, 0o644))
}

// TestSnapshotFaultsCorruptNewestMetadata: a newest checkpoint whose
// metadata does not verify does not exist; the one before is restored,
// and Recover discards the newest one's files.
func TestSnapshotFaultsCorruptNewestMetadata(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st, models, _ := checkpointed(t, m, "snappy", 1, 2)
		rewrite(t, st.Path(snapshot.MetadataPath(2)), func(b []byte) []byte { b[len(b)/2] ^= 0x08; return b })

		restoreLatest := func(what string) {
			t.Helper()
			dir := filepath.Join(t.TempDir(), "r")
			b, report, err := backend.RestoreLatest(ctx, backend.Int64, backend.Options{Dir: dir}, st)
			noErr(t, err)
			closeAtEnd(t, b, dir)
			if report.Checkpoint.ID != 1 {
				t.Fatalf("%s: RestoreLatest used checkpoint %d", what, report.Checkpoint.ID)
			}
			fxEqual(t, what, fxRead(t, b), models[0])
		}
		restoreLatest("latest checkpoint")
		dir := filepath.Join(t.TempDir(), "r2")
		b2, _ := must2(backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, st.Root())).in(t)
		closeAtEnd(t, b2, dir)
		fxEqual(t, "checkpoint 1 from the root path", fxRead(t, b2), models[0])

		// Asked for by path, the corrupt checkpoint is an error naming its
		// metadata.
		dir3 := filepath.Join(t.TempDir(), "r3")
		_, _, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir3}, st.Path("chk-2"))
		wantRestoreErr(t, err, dir3, snapshot.ErrCorrupt, "chk-2/_metadata")
		dir4 := filepath.Join(t.TempDir(), "r4")
		b4, _ := must2(backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir4}, st.Path("chk-1"))).in(t)
		closeAtEnd(t, b4, dir4)
		fxEqual(t, "checkpoint 1 by path", fxRead(t, b4), models[0])

		// A restarted job recovers the root: Recover keeps checkpoint 2,
		// whose metadata it cannot read, and says so; once 2 is discarded
		// on purpose, its files go, and checkpoint 1 still restores.
		if err := retention.Recover(ctx, st); !errors.Is(err, snapshot.ErrUnreadable) {
			t.Fatalf("Recover with a corrupt chk-2/_metadata: %v; want ErrUnreadable", err)
		}
		noErr(t, snapshot.Discard(ctx, st, 2))
		noErr(t, retention.Recover(ctx, st))
		sharedExact(t, st)
		restoreLatest("latest checkpoint after Recover")
	})
}

func TestSnapshotFaultsMetadata(t *testing.T) {
	cases := []struct {
		name     string
		fullOnly bool // the damage is to what only full handles have
		damage   func(t testing.TB, p string)
		target   error
		message  []string
	}{
		{"unknown version", false, func(t testing.TB, p string) { reframe(t, p, snapshot.MetadataVersion+1, nil) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata", fmt.Sprintf("version %d", snapshot.MetadataVersion+1)}},
		{"bad magic", false, func(t testing.TB, p string) { rewrite(t, p, func(b []byte) []byte { b[0] = 'X'; return b }) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata", "magic"}},
		{"truncated", false, func(t testing.TB, p string) { rewrite(t, p, func(b []byte) []byte { return b[:len(b)-3] }) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata"}},
		{"empty", false, func(t testing.TB, p string) { rewrite(t, p, func([]byte) []byte { return nil }) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata"}},
		{"bit flip", false, func(t testing.TB, p string) { rewrite(t, p, func(b []byte) []byte { b[40] ^= 1; return b }) },
			snapshot.ErrCorrupt, []string{"chk-1/_metadata"}},
		{"block key group outside the handle's range", true, func(t testing.TB, p string) {
			reframe(t, p, 1, func(cp *snapshot.Checkpoint) {
				h := &cp.Handles[0]
				h.Blocks[len(h.Blocks)-1].KeyGroup = h.KeyGroupEnd + 3
			})
		}, snapshot.ErrCorrupt, []string{"chk-1/_metadata", "outside the handle's range"}},
		{"holds another checkpoint", false, func(t testing.TB, p string) {
			reframe(t, p, 1, func(cp *snapshot.Checkpoint) { cp.ID = 5 })
		}, snapshot.ErrCorrupt, []string{"chk-1/_metadata", "holds checkpoint 5"}},
		{"missing", false, func(t testing.TB, p string) { noErr(t, os.Remove(p)) }, snapshot.ErrNotExist, []string{"chk-1/_metadata"}},
	}
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		for _, c := range cases {
			if c.fullOnly && m.incremental {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				st, _, _ := checkpointed(t, m, "snappy", 1)
				c.damage(t, st.Path(snapshot.MetadataPath(1)))
				dir := filepath.Join(t.TempDir(), "r")
				_, _, err := backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, st.Path("chk-1"))
				wantRestoreErr(t, err, dir, c.target, c.message...)
				_, _, err = backend.RestoreLatest(ctx, backend.Int64, backend.Options{Dir: dir}, st)
				wantRestoreErr(t, err, dir, snapshot.ErrNoCheckpoint)
				_, _, err = backend.RestoreFromPath(ctx, backend.Int64, backend.Options{Dir: dir}, st.Root())
				wantRestoreErr(t, err, dir, snapshot.ErrNoCheckpoint)
				// Recover never deletes a checkpoint whose metadata exists
				// but does not verify: it keeps it and says so. One whose
				// metadata is missing never completed, and goes.
				err = retention.Recover(ctx, st)
				if c.target == snapshot.ErrNotExist {
					noErr(t, err)
					emptyRoot(t, st.Root(), "after Recover")
					return
				}
				if !errors.Is(err, snapshot.ErrUnreadable) {
					t.Fatalf("Recover with a damaged chk-1/_metadata: %v; want ErrUnreadable", err)
				}
				if _, err := os.Stat(st.Path(snapshot.MetadataPath(1))); err != nil {
					t.Fatalf("Recover deleted the damaged metadata: %v", err)
				}
			})
		}
	})
}

// TestSnapshotFaultsRestoreIntoNonEmptyDir: restore refuses a directory
// that holds anything, and leaves what it holds alone.
func TestSnapshotFaultsRestoreIntoNonEmptyDir(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		st, _, cps := checkpointed(t, m, "snappy", 1)
		dir := t.TempDir()
		keep := filepath.Join(dir, "precious")
		noErr(t, os.WriteFile(keep, []byte("x"), 0o644))
		opts := backend.Options{Dir: dir}
		m.set(&opts)
		_, err := backend.Restore(context.Background(), backend.Int64, opts, st, cps[0].Handles)
		if !errors.Is(err, backend.ErrInvalidArgument) {
			t.Fatalf("restore into a non-empty directory: %v", err)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("restore into a non-empty directory removed its content: %v", err)
		}
	})
}

// TestFaultsStorageEveryWrite: checkpoint 2 (full, or incremental on top
// of 1) fails at each write of its storage in turn, persistently (a full
// disk): upload, metadata commit, retention (of a file's many writes, the
// first, the middle and the last: faultPoints). Checkpoint returns the error
// within its context's deadline; the latest completed checkpoint (1, or 2
// if the failure came after its commit) restores exactly; and once the
// fault clears, checkpoint 3 succeeds, restores exactly, and its
// retention leaves nothing of 1 and 2 behind.
func TestFaultsStorageEveryWrite(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		prepare := func(t *testing.T) (*job, *snapshot.Local, *nthStorage, *fxModel) {
			local := newStorage(t)
			st := &nthStorage{Storage: local}
			j := newJob(t, st, 1, m.each(), func(o *backend.Options) {
				o.SnapshotCompression = "none"
				// The fault points are counted on one database and
				// applied to others: a compaction that ran in one and
				// not in another (it depends on timing) would change
				// which tables checkpoint 2 uploads and retention
				// deletes, and so the number of writes.
				o.Pebble = func(po *pebble.Options) { po.DisableAutomaticCompactions = true }
			})
			j.apply(rand.New(rand.NewPCG(12, 12)), 300, 100, "one")
			must(j.b().Checkpoint(ctx, st, 1)).in(t)
			one := j.model.clone()
			j.apply(rand.New(rand.NewPCG(13, 13)), 300, 100, "two")
			return j, local, st, one
		}
		var points []int
		{
			j, _, st, _ := prepare(t)
			st.arm(1 << 30)
			must(j.b().Checkpoint(ctx, st, 2)).in(t)
			st.clear()
			points = spread(faultPoints(st.ops), 10)
			t.Logf("%d writes of checkpoint 2, faults at %v: %q", len(st.ops), points, st.ops)
		}
		for _, n := range points {
			t.Run(fmt.Sprintf("write %d", n), func(t *testing.T) {
				j, local, st, one := prepare(t)
				st.arm(n)
				cctx, cancel := context.WithTimeout(ctx, faultDeadline)
				defer cancel()
				start := time.Now()
				_, err := j.b().Checkpoint(cctx, st, 2)
				wantFault(t, "Checkpoint", err, syscall.ENOSPC, start)
				st.clear()
				cp := must(snapshot.Latest(ctx, local)).in(t)
				want := one
				if cp.ID == 2 {
					want = j.model // committed; retention failed
				}
				restoreJob(t, local, cp.Handles, 1, m.each(), want).verify(want, fmt.Sprint("latest checkpoint ", cp.ID))
				cp = must(j.b().Checkpoint(ctx, st, 3)).in(t)
				restoreJob(t, local, cp.Handles, 1, m.each(), j.model).verify(j.model, "checkpoint 3 after the fault cleared")
				if ids := must(snapshot.Completed(ctx, local)).in(t); !slices.Equal(ids, []int64{3}) {
					t.Fatalf("completed checkpoints %v after checkpoint 3 keeping 1", ids)
				}
				sharedExact(t, local)
				noTempFiles(t, local.Root(), "after checkpoint 3")
			})
		}
	})
}

// TestFaultsRetainEveryWrite: retention (keeping 1 of 3 checkpoints)
// fails at each of its writes in turn: Retain returns the error within the
// deadline, the newest checkpoint restores exactly, and a Retain after the
// fault clears leaves exactly the newest checkpoint's files.
func TestFaultsRetainEveryWrite(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		local, models, _ := checkpointed(t, m, "none", 1, 2, 3)
		var points []int
		{
			st := &nthStorage{Storage: newStorage(t)}
			copyTree(t, local.Root(), st.Storage.(*snapshot.Local).Root())
			st.arm(1 << 30)
			noErr(t, retention.Retain(ctx, st, 1))
			st.clear()
			points = faultPoints(st.ops)
		}
		for _, n := range points {
			t.Run(fmt.Sprintf("write %d", n), func(t *testing.T) {
				root := newStorage(t)
				copyTree(t, local.Root(), root.Root())
				st := &nthStorage{Storage: root}
				st.arm(n)
				cctx, cancel := context.WithTimeout(ctx, faultDeadline)
				defer cancel()
				start := time.Now()
				wantFault(t, "Retain", retention.Retain(cctx, st, 1), syscall.ENOSPC, start)
				st.clear()
				cp := must(snapshot.Latest(ctx, root)).in(t)
				if cp.ID != 3 {
					t.Fatalf("latest checkpoint %d after a failed retention", cp.ID)
				}
				restoreJob(t, root, cp.Handles, 1, m.each(), models[2]).verify(models[2], "checkpoint 3 after a failed retention")
				noErr(t, retention.Retain(ctx, st, 1))
				if ids := must(snapshot.Completed(ctx, root)).in(t); !slices.Equal(ids, []int64{3}) {
					t.Fatalf("completed checkpoints %v after retention keeping 1", ids)
				}
				sharedExact(t, root)
			})
		}
	})
}
