package bench

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Incremental checkpoints and their restore, on the -snapkeys database
// (see snapshot_setup_test.go):
//
//	IncrementalSnapshotSync/changed=1%     Backend.Snapshot (flush + native checkpoint) after 1% of the keys changed
//	IncrementalSnapshotSync/changed=1%,settled  the same once the compactions the last op started have ended
//	IncrementalSnapshotSync/unflushed=all  the same right after writing the whole state into a fresh backend
//	IncrementalSecondCheckpoint            Checkpoint 2 after checkpoint 1 and 1% of the keys changed;
//	                                       reports both checkpointed sizes and their ratio
//	IncrementalRestore                     backend.Restore of an incremental checkpoint (local storage:
//	                                       hard links, every file checksummed)
//	CopyFiles                              baseline: io.Copy of the same files into a fresh directory
//
// Targets: IncrementalSnapshotSync (changed=1%) < 20 ms; second-bytes <
// 10% of first-bytes; IncrementalRestore/CopyFiles <= 1.3.

var snapIncRootOnce snapOnce[snapRoot]

// snapIncRoot is an incremental checkpoint (id 1) of the -snapkeys
// database.
func snapIncRoot(tb testing.TB) snapRoot {
	src := snapDB(tb)
	return snapIncRootOnce.get(tb, "incremental checkpoint", func() (snapRoot, error) {
		return snapCheckpointOf(src, "snap-inc", snapAll, true)
	})
}

// incChanged is the number of keys an op changes between checkpoints: 1%
// of the state, at least one.
func incChanged(n int) int { return max(1, n/100) }

// BenchmarkIncrementalSnapshotSync is the synchronous part of an
// incremental snapshot, which the task's thread waits for: Backend.Snapshot
// flushes the memtable (the WAL is off, so what is only in memory must
// reach an SST) and takes a native Pebble checkpoint (hard links, a copy
// of the MANIFEST, fsyncs). Release (which removes the native checkpoint)
// is untimed. Its cost grows with the unflushed data, so two scenarios:
//
// changed=1%: the realistic one. The state was written and settled
// (compacted, a clone of the -snapkeys database); before each op, untimed,
// 1% of the keys (10,000 of 1M, 2.3 MB) get new values, as a checkpoint
// interval's worth of updates, and the op snapshots them. Successive ops
// update the next 1% of the keys (in counter order, so random key groups).
//
// changed=1%,settled: the same, but before each op, untimed, it waits
// until no compaction has run for 20 ms. In changed=1% the ops follow each
// other within about 30 ms, so each op's flush meets the compaction
// (hundreds of ms) that the previous flushes started, which competes for
// the two cores and the disk (its writes make the flush's fsyncs wait);
// between the checkpoints of a job, seconds apart, compactions usually
// end. The two show the cost with and without that competition.
//
// unflushed=all: the worst case. Before each op, untimed, the whole state
// is written into a fresh backend; the op snapshots it at once, so its
// flush waits for every memtable still queued or filling (up to 64 MiB
// each) after 230 MB of writes.
//
// All report flushed-bytes (memtable bytes flushed during the op, from
// Pebble's FlushEnd events) and ssts (tables linked into the native
// checkpoint); the changed ones also compacting (compactions running
// when the op began, on average).
func BenchmarkIncrementalSnapshotSync(b *testing.B) {
	b.Run("changed=1%", func(b *testing.B) { benchIncSyncChanged(b, false) })
	b.Run("changed=1%,settled", func(b *testing.B) { benchIncSyncChanged(b, true) })
	b.Run("unflushed=all", benchIncSyncUnflushed)
}

func benchIncSyncChanged(b *testing.B, settle bool) {
	n := snapKeys(b)
	dir := snapClone(b, snapDB(b))
	var fl snapFlushes
	opts := snapOptions(dir, snapAll, true)
	fl.install(&opts)
	be, v := snapOpen(b, opts)
	defer be.Close()
	st := snapStorage(b)
	k := incChanged(n)
	clk := snapStart(b, true)
	var flushed, compacting int64
	var ssts, ops int
	for b.Loop() {
		clk.pause()
		if err := snapWrite(be, v, snapAll, n, ops*k, (ops+1)*k, uint64(ops+1)); err != nil {
			b.Fatal(err)
		}
		ops++
		if settle {
			fl.settle(b)
		}
		f0 := fl.bytes.Load()
		compacting += fl.compacting.Load()
		clk.resume()
		s, err := be.Snapshot(int64(ops), st)
		if err != nil {
			b.Fatal(err)
		}
		clk.pause()
		flushed += fl.bytes.Load() - f0
		ssts += snapCountSSTs(b, filepath.Join(dir, "checkpoints", snapshot.Dir(int64(ops))))
		s.Release()
		clk.resume()
	}
	clk.stop()
	b.ReportMetric(float64(flushed)/float64(ops), "flushed-bytes")
	b.ReportMetric(float64(ssts)/float64(ops), "ssts")
	b.ReportMetric(float64(compacting)/float64(ops), "compacting")
}

func benchIncSyncUnflushed(b *testing.B) {
	n := snapKeys(b)
	st := snapStorage(b)
	var fl snapFlushes
	clk := snapStart(b, true)
	var flushed int64
	var ssts, ops int
	for b.Loop() {
		clk.pause()
		opts := snapOptions(snapFreshDir(b), snapAll, true)
		fl.install(&opts)
		be, v := snapOpen(b, opts)
		if err := snapWrite(be, v, snapAll, n, 0, n, 0); err != nil {
			b.Fatal(err)
		}
		ops++
		f0 := fl.bytes.Load()
		clk.resume()
		s, err := be.Snapshot(int64(ops), st)
		if err != nil {
			b.Fatal(err)
		}
		clk.pause()
		flushed += fl.bytes.Load() - f0
		ssts += snapCountSSTs(b, filepath.Join(opts.Dir, "checkpoints", snapshot.Dir(int64(ops))))
		s.Release()
		snapDiscard(b, be, opts.Dir)
		clk.resume()
	}
	clk.stop()
	b.ReportMetric(float64(flushed)/float64(ops), "flushed-bytes")
	b.ReportMetric(float64(ssts)/float64(ops), "ssts")
}

// BenchmarkIncrementalSecondCheckpoint measures what the second of two
// incremental checkpoints uploads. Each op starts, untimed, from a fresh
// clone of the settled -snapkeys database: checkpoint 1 (Backend.Checkpoint,
// which uploads every file), then 1% of the keys get new values; the
// timed part is checkpoint 2 (Backend.Checkpoint: snapshot, upload of what
// checkpoint 1 did not have, metadata commit, retention). It reports the
// checkpointed sizes of both (first-bytes, second-bytes) and
// second/first, the ratio of the two.
func BenchmarkIncrementalSecondCheckpoint(b *testing.B) {
	n := snapKeys(b)
	src := snapDB(b)
	ctx := context.Background()
	clk := snapStart(b, true)
	var first, second int64
	ops := 0
	for b.Loop() {
		clk.pause()
		dir := snapFreshDir(b)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := cloneDir(src, dir); err != nil {
			b.Fatal(err)
		}
		be, v := snapOpen(b, snapOptions(dir, snapAll, true))
		st := snapStorage(b)
		cp1, err := be.Checkpoint(ctx, st, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := snapWrite(be, v, snapAll, n, 0, incChanged(n), 1); err != nil {
			b.Fatal(err)
		}
		clk.resume()
		cp2, err := be.Checkpoint(ctx, st, 2)
		if err != nil {
			b.Fatal(err)
		}
		clk.pause()
		first += cp1.Handles[0].CheckpointedSize
		second += cp2.Handles[0].CheckpointedSize
		ops++
		snapDiscard(b, be, dir)
		if err := os.RemoveAll(st.Root()); err != nil {
			b.Fatal(err)
		}
		clk.resume()
	}
	clk.stop()
	b.ReportMetric(float64(first)/float64(ops), "first-bytes")
	b.ReportMetric(float64(second)/float64(ops), "second-bytes")
	b.ReportMetric(float64(second)/float64(first), "second/first")
}

// BenchmarkIncrementalRestore is backend.Restore of an incremental
// checkpoint of the -snapkeys database, of the same key groups, from local
// storage: every file is hard-linked into the fresh directory and read
// once to check its CRC-32C, then the database is opened as it is. Close
// and removal are untimed. Compare with BenchmarkCopyFiles.
func BenchmarkIncrementalRestore(b *testing.B) {
	root := snapIncRoot(b)
	benchIncRestore(b, root, snapAll, snapKeys(b))
}

// benchIncRestore restores root's checkpoint into key groups kgs and
// checks, on the first op, that want keys came back.
func benchIncRestore(b *testing.B, root snapRoot, kgs backend.KeyGroupRange, want int) {
	snapWarmRoot(b, root)
	clk := snapStart(b, true)
	first := true
	for b.Loop() {
		be, dir := snapRestore(b, clk, root.st, root.cp, snapOptions("", kgs, true))
		clk.pause()
		if first {
			snapCheckCount(b, be, want)
			first = false
		}
		snapDiscard(b, be, dir)
		clk.resume()
	}
	clk.stop()
}

// BenchmarkCopyFiles is BenchmarkIncrementalRestore's baseline: copy the
// files of the same checkpoint's handle (its shared SSTs and its private
// files) from the checkpoint root into a fresh directory under their local
// names, each with io.Copy from one *os.File to another (which Linux does
// in the kernel with copy_file_range), without fsync. Removal is untimed.
func BenchmarkCopyFiles(b *testing.B) {
	root := snapIncRoot(b)
	snapWarmRoot(b, root)
	h := root.cp.Handles[0]
	clk := snapStart(b, true)
	var size int64
	for b.Loop() {
		clk.pause()
		dir := snapFreshDir(b)
		clk.resume()
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for _, f := range h.Shared {
			if err := copyFile(root.st.Path(f.Name), filepath.Join(dir, f.LocalName)); err != nil {
				b.Fatal(err)
			}
		}
		for _, f := range h.Files {
			if err := copyFile(root.st.Path(f.Name), filepath.Join(dir, path.Base(f.Name))); err != nil {
				b.Fatal(err)
			}
		}
		clk.pause()
		size = 0
		entries, err := os.ReadDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				b.Fatal(err)
			}
			size += fi.Size()
		}
		if size != h.StateSize {
			b.Fatalf("copied %d bytes, the handle has %d", size, h.StateSize)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		clk.resume()
	}
	clk.stop()
	b.ReportMetric(float64(size), "copied-bytes")
}
