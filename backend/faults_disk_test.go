package backend_test

// Faults of the filesystem under the backend's own directory (a full disk,
// failing writes), injected with Pebble's errorfs at every write of a
// flush, a close, the synchronous part of an incremental checkpoint and a
// restore. Every operation must return a clear error (errors.Is finds the
// errno) within its deadline, never panic, log a repeated error once, and
// once the fault clears the backend must work and hold what it was
// promised. Faults of the checkpoint storage are in snapshot_faults_test.go.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// faultDeadline is the deadline every faulted operation must meet.
const faultDeadline = 2 * time.Second

// faultErrnos are the errors injected: a full disk and a failing device.
var faultErrnos = []syscall.Errno{syscall.ENOSPC, syscall.EIO}

// wantFault checks that err is the injected errno, returned within the
// deadline since start.
func wantFault(t testing.TB, what string, err error, errno syscall.Errno, start time.Time) {
	t.Helper()
	if took := time.Since(start); took > faultDeadline {
		t.Fatalf("%s took %v with the disk failing; the deadline is %v (err %v)", what, took, faultDeadline, err)
	}
	if !errors.Is(err, errno) {
		t.Fatalf("%s with the disk failing (%v) = %v; want an error wrapping it", what, errno, err)
	}
}

// faultJob opens a one-instance job in dir with the fault installed.
func faultJob(t testing.TB, dir string, m mode, f *diskFault, logs *recordLogger) *job {
	t.Helper()
	return newJob(t, newStorage(t), 1, m.each(), inDir(dir), f.tweak(), func(o *backend.Options) { o.Logger = logs.logger() })
}

// reopenJob closes j (whose Close may fail) and opens its directory again
// without faults, holding model.
func reopenJob(t testing.TB, dir string, m mode, model *fxModel) *job {
	t.Helper()
	b := MustOpenK(t, backend.Int64, fxOptions(backend.KeyGroupRange{Start: 0, End: fxMaxPar}, m.incremental), inDir(dir))
	return &job{t: t, st: newStorage(t), insts: []*fxInstance{{b: b, s: fxRegister(t, b)}}, model: model}
}

// countWrites runs op with the fault armed but never failing and returns
// how many writes it counted.
func countWrites(f *diskFault, op func()) int {
	f.arm(1<<30, false, syscall.ENOSPC)
	op()
	n, _ := f.clear()
	return n
}

// TestFaultsFlush: a flush failing at any of its writes, persistently (a
// full disk) or once, returns the error at once, logs it once however
// often Pebble retries, and succeeds after the fault clears; the data is
// all there after a reopen.
func TestFaultsFlush(t *testing.T) {
	m := mode{}
	var writes int
	{
		f := &diskFault{}
		j := faultJob(t, filepath.Join(t.TempDir(), "db"), m, f, &recordLogger{})
		j.apply(rand.New(rand.NewPCG(1, 1)), 300, 100, "a")
		writes = countWrites(f, func() { noErr(t, j.b().Flush()) })
		j.close()
	}
	if writes == 0 {
		t.Fatal("a flush made no write")
	}
	for _, errno := range faultErrnos {
		for n := range writes {
			for _, once := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/write %d/once %v", errno, n, once), func(t *testing.T) {
					dir := filepath.Join(t.TempDir(), "db")
					f, logs := &diskFault{}, &recordLogger{}
					j := faultJob(t, dir, m, f, logs)
					j.apply(rand.New(rand.NewPCG(1, 1)), 300, 100, "a")
					f.arm(n, once, errno)
					start := time.Now()
					err := j.b().Flush()
					if once && err == nil {
						// The retry won the race with the report; fine.
					} else {
						wantFault(t, "Flush", err, errno, start)
					}
					if !once {
						// Pebble retries the failing flush in the
						// background, at once and forever.
						time.Sleep(100 * time.Millisecond)
						// The store paces the retries (store.pace).
						c, hits := f.clear()
						if hits < 2 || hits > 50 || logs.lines() > 2 {
							t.Errorf("in 100 ms, %d flush writes failed (of %d) and %d lines were logged; want a few paced retries, 1 or 2 lines", hits, c, logs.lines())
						}
						t.Logf("in 100 ms, %d of %d flush writes failed", hits, c)
					}
					f.clear()
					if !once && !errors.Is(j.b().BackgroundError(), errno) {
						t.Errorf("BackgroundError = %v; want the flush's %v", j.b().BackgroundError(), errno)
					}
					noErr(t, j.b().Flush())
					noErr(t, j.b().Close())
					reopenJob(t, dir, m, j.model).verify(j.model, "after the fault cleared")
				})
			}
		}
	}
}

// TestFaultsClose: Close on a full disk returns within the deadline,
// saying that the writes since the last flush are lost, and releases the
// directory: it opens again once the fault clears, with what was flushed.
func TestFaultsClose(t *testing.T) {
	m := mode{}
	dir := filepath.Join(t.TempDir(), "db")
	f, logs := &diskFault{}, &recordLogger{}
	j := faultJob(t, dir, m, f, logs)
	j.apply(rand.New(rand.NewPCG(2, 2)), 300, 100, "flushed")
	noErr(t, j.b().Flush())
	flushed := j.model.clone()
	j.apply(rand.New(rand.NewPCG(3, 3)), 300, 100, "lost")
	f.arm(0, false, syscall.ENOSPC)
	start := time.Now()
	err := j.b().Close()
	wantFault(t, "Close", err, syscall.ENOSPC, start)
	if !errorsContains(err, "lost") {
		t.Errorf("Close = %v; want it to say the unflushed writes are lost", err)
	}
	f.clear()
	reopenJob(t, dir, m, flushed).verify(flushed, "reopened after a failed Close")
}

// TestFaultsCheckpointLocal: the synchronous part of an incremental
// checkpoint (a flush and a native checkpoint in the backend's directory)
// failing at any of its writes: Checkpoint returns the error within its
// context's deadline, commits nothing, and the next checkpoint after the
// fault clears restores exactly.
func TestFaultsCheckpointLocal(t *testing.T) {
	m := mode{incremental: true}
	ctx := context.Background()
	prepare := func(t *testing.T, f *diskFault) (*job, *snapshot.Local, *fxModel) {
		st := newStorage(t)
		j := newJob(t, st, 1, m.each(), f.tweak(), func(o *backend.Options) { o.Logger = (&recordLogger{}).logger() })
		j.apply(rand.New(rand.NewPCG(4, 4)), 300, 100, "one")
		must(j.b().Checkpoint(ctx, st, 1)).in(t)
		one := j.model.clone()
		j.apply(rand.New(rand.NewPCG(5, 5)), 300, 100, "two")
		return j, st, one
	}
	var points []int
	{
		f := &diskFault{record: true}
		j, st, _ := prepare(t, f)
		countWrites(f, func() { must(j.b().Checkpoint(ctx, st, 2)).in(t) })
		points = spread(faultPoints(f.ops), 12)
		t.Logf("the writes of a checkpoint: %q", f.ops)
	}
	failed := 0
	for i, n := range points {
		errno := faultErrnos[i%len(faultErrnos)] // alternately
		{
			t.Run(fmt.Sprintf("%v/write %d", errno, n), func(t *testing.T) {
				f := &diskFault{}
				j, st, one := prepare(t, f)
				t.Cleanup(func() { f.clear() }) // before the job closes
				f.arm(n, false, errno)
				cctx, cancel := context.WithTimeout(ctx, faultDeadline)
				defer cancel()
				start := time.Now()
				cp2, err := j.b().Checkpoint(cctx, st, 2)
				if err == nil {
					// The write that fails is background work (a
					// compaction, a deletion) the checkpoint did not need:
					// it is complete.
					restoreJob(t, st, cp2.Handles, 1, m.each(), j.model).verify(j.model, "checkpoint 2, complete while the disk fails")
				} else {
					failed++
					wantFault(t, "Checkpoint", err, errno, start)
					cp := must(snapshot.Latest(ctx, st)).in(t)
					if cp.ID != 1 {
						t.Fatalf("latest checkpoint %d after checkpoint 2 failed", cp.ID)
					}
					restoreJob(t, st, cp.Handles, 1, m.each(), one).verify(one, "checkpoint 1 while the disk fails")
				}
				f.clear()
				cp := must(j.b().Checkpoint(ctx, st, 3)).in(t)
				restoreJob(t, st, cp.Handles, 1, m.each(), j.model).verify(j.model, "checkpoint 3 after the fault cleared")
			})
		}
	}
	if failed == 0 {
		t.Errorf("no injected fault of %v failed a checkpoint", points)
	}
}

// TestFaultsRestore: a restore failing at any write into its directory
// (fetching, opening, ingesting, flushing), at the same range and
// rescaling: an error within the deadline, nothing left in the directory,
// and the same restore succeeds exactly once the fault clears.
func TestFaultsRestore(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		ctx := context.Background()
		st := newStorage(t)
		src := newJob(t, st, 2, m.each())
		src.apply(rand.New(rand.NewPCG(6, 6)), 400, 100, "one")
		cp := src.checkpoint(1, 1)
		restoreWith := func(f *diskFault, p, i int, dir string) (*backend.Backend[int64], error) {
			o := options(t, []tweak{fxOptions(fxRanges(t, p)[i], m.incremental), inDir(dir), f.tweak(),
				func(o *backend.Options) { o.Logger = (&recordLogger{}).logger() }})
			cctx, cancel := context.WithTimeout(ctx, faultDeadline)
			defer cancel()
			return backend.Restore(cctx, backend.Int64, o, st, cp.Handles)
		}
		for _, shape := range []struct {
			name string
			p, i int // restore subtask i of parallelism p
		}{{"same range", 2, 0}, {"rescale 2 to 1", 1, 0}} {
			f := &diskFault{record: true}
			countWrites(f, func() {
				b, err := restoreWith(f, shape.p, shape.i, filepath.Join(t.TempDir(), "count"))
				noErr(t, err)
				noErr(t, b.Close())
			})
			points := spread(faultPoints(f.ops), 10)
			t.Logf("%s: %d writes, faults at %v", shape.name, len(f.ops), points)
			want := src.model.clone()
			want.keep(t, fxRanges(t, shape.p)[shape.i])
			// One errno: the paths are those of Flush and Checkpoint,
			// which try both.
			errno := syscall.ENOSPC
			for _, n := range points {
				t.Run(fmt.Sprintf("%s/write %d", shape.name, n), func(t *testing.T) {
					f := &diskFault{}
					dir := filepath.Join(t.TempDir(), "r")
					f.arm(n, false, errno)
					start := time.Now()
					b, err := restoreWith(f, shape.p, shape.i, dir)
					if err == nil {
						// The write that fails is background work the
						// restore did not need: it is complete.
						f.clear()
						closeAtEnd(t, b, dir)
						fxEqual(t, "restored while the disk fails", fxRead(t, b), want)
						return
					}
					if took := time.Since(start); took > faultDeadline {
						t.Fatalf("Restore took %v with the disk failing (err %v)", took, err)
					}
					if !errors.Is(err, errno) {
						t.Fatalf("Restore with the disk failing = %v; want it to wrap %v", err, errno)
					}
					if errors.Is(err, snapshot.ErrCorrupt) {
						t.Fatalf("Restore with the disk failing = %v; a local disk fault is not a corrupt checkpoint", err)
					}
					wantRestoreErr(t, err, dir, nil)
					f.clear()
					b, err = restoreWith(f, shape.p, shape.i, dir)
					noErr(t, err)
					closeAtEnd(t, b, dir)
					fxEqual(t, "restored after the fault cleared", fxRead(t, b), want)
				})
			}
		}
	})
}

// errorsContains reports whether err's message contains s.
func errorsContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

// keep drops from m the keys outside the key groups r.
func (m *fxModel) keep(t testing.TB, r backend.KeyGroupRange) {
	out := func(k int64) bool {
		kg := must(backend.KeyGroupOf(backend.Int64, k, fxMaxPar)).in(t)
		return kg < r.Start || kg >= r.End
	}
	maps.DeleteFunc(m.v, func(k int64, _ string) bool { return out(k) })
	maps.DeleteFunc(m.l, func(k int64, _ []int64) bool { return out(k) })
	maps.DeleteFunc(m.m, func(k int64, _ map[int64]string) bool { return out(k) })
	maps.DeleteFunc(m.w, func(k [2]int64, _ string) bool { return out(k[0]) })
}
