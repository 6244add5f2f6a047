package bench

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// Rescaling from incremental checkpoints, after flink-benchmarks'
// RocksdbStateBackendRescalingBenchmarkExecutor (rescaleRocksDB): one
// ValueState<byte[]> of -rescalekeys (2M) entries, 96-byte keys whose
// first 4 bytes are a counter, 128-byte values, max parallelism 128, local
// checkpoint storage. Like flink's, each op restores subtask 0 of the new
// parallelism:
//
//	RescaleBaselineRestore  parallelism 1 -> 1: restore the one handle as it is (IncrementalRestore
//	                        on this data set); the ratios below are against it
//	RescaleIn               2 -> 1 (RESCALE_IN): the handles of key groups [0, 64) and [64, 128) into
//	                        one instance of all 128; one handle becomes the database, the other's
//	                        tables are ingested whole where Pebble can take them (sequence numbers
//	                        zero); the tables compaction moved down with their sequence numbers are
//	                        read from their files and rewritten, so this one's time grows with the
//	                        bytes in moved tables. The fixtures have none: Backend.Compact compacts
//	                        each level in one compaction, which rewrites every table (with
//	                        Pebble's split of a parallelized manual compaction, about half of each
//	                        handle at 1M keys was moved, and almost none at 2M)
//	RescaleOut              1 -> 2 (RESCALE_OUT): the one handle into subtask 0, key groups [0, 64):
//	                        the database is linked, the tables it keeps checksummed and the other
//	                        half excised. The other subtask's restore, [64, 128), is timed
//	                        separately and reported as upper-ns
//
// Targets: RescaleIn/RescaleBaselineRestore <= 2.5,
// RescaleOut/RescaleBaselineRestore <= 1.2, at -rescalekeys 1M and 2M.
//
// The two checkpoints were written by a job at parallelism 1 (one
// instance, all keys) and one at parallelism 2 (two instances, each
// holding the keys of its key groups), each instance's database compacted
// before its checkpoint, as a settled job's would be.

var (
	rescaleOneOnce snapOnce[snapRoot]
	rescaleTwoOnce snapOnce[snapRoot]
)

// rescaleOneRoot is an incremental checkpoint of one instance of all key
// groups.
func rescaleOneRoot(tb testing.TB) snapRoot {
	n := rescaleKeys(tb)
	return rescaleOneOnce.get(tb, "rescale checkpoint at parallelism 1", func() (snapRoot, error) {
		db := filepath.Join(rootDir, "rescale-one-db")
		defer os.RemoveAll(db)
		if err := snapBuild([]string{db}, []backend.KeyGroupRange{snapAll}, n); err != nil {
			return snapRoot{}, err
		}
		return snapCheckpointOf(db, "rescale-one", snapAll, true)
	})
}

// rescaleTwoRoot is an incremental checkpoint of two instances, of key
// groups [0, 64) and [64, 128), committed as one checkpoint.
func rescaleTwoRoot(tb testing.TB) snapRoot {
	n := rescaleKeys(tb)
	return rescaleTwoOnce.get(tb, "rescale checkpoint at parallelism 2", func() (snapRoot, error) {
		kgs := []backend.KeyGroupRange{snapLower, snapUpper}
		dbs := []string{filepath.Join(rootDir, "rescale-two-db0"), filepath.Join(rootDir, "rescale-two-db1")}
		defer func() {
			for _, d := range dbs {
				os.RemoveAll(d)
			}
		}()
		if err := snapBuild(dbs, kgs, n); err != nil {
			return snapRoot{}, err
		}
		st, err := snapshot.NewLocal(filepath.Join(rootDir, "rescale-two"))
		if err != nil {
			return snapRoot{}, err
		}
		return rescaleCheckpoint(st, dbs, kgs)
	})
}

// rescaleCheckpoint takes checkpoint 1 of the instances in dbs as one
// checkpoint, as a job's coordinator would: a snapshot of each, then one
// commit of all their handles.
func rescaleCheckpoint(st *snapshot.Local, dbs []string, kgs []backend.KeyGroupRange) (r snapRoot, err error) {
	ctx := context.Background()
	var bes []*backend.Backend[[]byte]
	defer func() {
		for _, be := range bes {
			if cerr := be.Close(); err == nil {
				err = cerr
			}
		}
	}()
	cp := &snapshot.Checkpoint{ID: 1, CreatedUnixMillis: time.Now().UnixMilli()}
	for i, dir := range dbs {
		be, err := backend.Open(backend.Bytes, snapOptions(dir, kgs[i], true))
		if err != nil {
			return snapRoot{}, err
		}
		bes = append(bes, be)
		s, err := be.Snapshot(cp.ID, st)
		if err != nil {
			return snapRoot{}, err
		}
		h, err := s.Run(ctx)
		if err != nil {
			return snapRoot{}, err
		}
		cp.Handles = append(cp.Handles, h)
	}
	if err := retention.Complete(ctx, st, cp, 1); err != nil {
		return snapRoot{}, err
	}
	for _, be := range bes {
		if err := be.NotifyCheckpointComplete(cp.ID); err != nil {
			return snapRoot{}, err
		}
	}
	return snapRoot{st: st, cp: cp}, nil
}

// BenchmarkRescaleBaselineRestore restores the parallelism-1 checkpoint
// at parallelism 1: BenchmarkIncrementalRestore on the rescaling data set,
// the reference of RescaleIn and RescaleOut.
func BenchmarkRescaleBaselineRestore(b *testing.B) {
	benchIncRestore(b, rescaleOneRoot(b), snapAll, rescaleKeys(b))
}

// BenchmarkRescaleIn restores the parallelism-2 checkpoint at parallelism
// 1 (flink's RESCALE_IN, 2 -> 1).
func BenchmarkRescaleIn(b *testing.B) {
	benchIncRestore(b, rescaleTwoRoot(b), snapAll, rescaleKeys(b))
}

// BenchmarkRescaleOut restores the parallelism-1 checkpoint as subtask 0
// of parallelism 2, key groups [0, 64) (flink's RESCALE_OUT, 1 -> 2, which
// also times subtask 0 alone). After each op, untimed, it restores
// subtask 1, [64, 128), too and reports that restore's wall time as
// upper-ns, so that both halves are on record; the sum of ns/op and
// upper-ns is what rescaling out costs in all.
func BenchmarkRescaleOut(b *testing.B) {
	n := rescaleKeys(b)
	root := rescaleOneRoot(b)
	wantLower := snapCountIn(n, snapLower)
	snapWarmRoot(b, root)
	clk := snapStart(b, true)
	first := true
	var upper time.Duration
	ops := 0
	for b.Loop() {
		be, dir := snapRestore(b, clk, root.st, root.cp, snapOptions("", snapLower, true))
		clk.pause()
		if first {
			snapCheckCount(b, be, wantLower)
		}
		snapDiscard(b, be, dir)

		opts := snapOptions(snapFreshDir(b), snapUpper, true)
		runtime.GC()
		t0 := time.Now()
		be, err := backend.Restore(context.Background(), backend.Bytes, opts, root.st, root.cp.Handles)
		upper += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if first {
			snapCheckCount(b, be, n-wantLower)
			first = false
		}
		snapDiscard(b, be, opts.Dir)
		ops++
		clk.resume()
	}
	clk.stop()
	b.ReportMetric(float64(upper.Nanoseconds())/float64(ops), "upper-ns")
}
