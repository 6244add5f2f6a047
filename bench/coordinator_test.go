package bench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/retention"
)

// The coordinator's overhead: a checkpoint of coordBackends backends (one
// operator at parallelism 8, each subtask holding -coordkeys entries of
// one value state) through checkpoint.Coordinator, against the same
// backends' Snapshot, Run (on one goroutine each, as the coordinator runs
// them) and retention.Complete and NotifyCheckpointComplete called directly:
//
//	CoordinatorCheckpoint  Coordinator.Checkpoint
//	DirectCheckpoint       Snapshot x8, Run x8 in parallel, retention.Complete (retention 1), notify x8
//	CoordinatorPaired      both, alternating op by op on the same backends, each into its own root;
//	                       coord/direct is the ratio of their total times, coord/direct-med the median
//	                       of the per-pair ratios, coord/direct-cpu the ratio of the process CPU time
//	                       each side used
//
// Target: CoordinatorCheckpoint at most 1.1x DirectCheckpoint; the paired
// figure is the one to read on a shared machine. Full snapshots (the
// default mode); every op writes the whole state again.

var coordKeysFlag = flag.Int("coordkeys", 20_000,
	"entries per backend of the coordinator benchmarks (8 backends); CI runs them with -coordkeys=100")

const coordBackends = 8

// coordJob opens the 8 backends of the coordinator benchmarks and fills
// them.
func coordJob(b *testing.B) []*backend.Backend[int64] {
	b.Helper()
	dir := b.TempDir()
	var bs []*backend.Backend[int64]
	var vs []*backend.Value[int64, backend.VoidNamespace, int64]
	for i := range coordBackends {
		kg, err := backend.KeyGroupRangeForSubtask(backend.DefaultMaxParallelism, coordBackends, i)
		if err != nil {
			b.Fatal(err)
		}
		be, err := backend.Open(backend.Int64, backend.Options{
			Dir: filepath.Join(dir, fmt.Sprint(i)), KeyGroups: kg, Operator: "op",
			TTLSweepInterval: -1, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = be.Close() })
		v, err := backend.GetValue(be, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
		if err != nil {
			b.Fatal(err)
		}
		bs, vs = append(bs, be), append(vs, v)
	}
	filled := make([]int, coordBackends)
	for k := int64(0); slices.Min(filled) < *coordKeysFlag; k++ {
		kg, err := backend.KeyGroupOf(backend.Int64, k, backend.DefaultMaxParallelism)
		if err != nil {
			b.Fatal(err)
		}
		i, err := backend.SubtaskForKeyGroup(backend.DefaultMaxParallelism, coordBackends, kg)
		if err != nil {
			b.Fatal(err)
		}
		if filled[i] >= *coordKeysFlag {
			continue
		}
		filled[i]++
		if err := bs[i].SetCurrentKey(k); err != nil {
			b.Fatal(err)
		}
		if err := vs[i].Update(k * 7); err != nil {
			b.Fatal(err)
		}
	}
	for _, be := range bs {
		if err := be.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	return bs
}

func coordRoot(b *testing.B) *snapshot.Local {
	b.Helper()
	st, err := snapshot.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// coordinatorOf returns a coordinator of bs into st.
func coordinatorOf(b *testing.B, bs []*backend.Backend[int64], st snapshot.Storage) *checkpoint.Coordinator {
	b.Helper()
	op := checkpoint.Operator{Name: "op"}
	for _, be := range bs {
		op.Subtasks = append(op.Subtasks, checkpoint.KeyedParticipant(be))
	}
	c, err := checkpoint.NewCoordinator(context.Background(), checkpoint.Options{Storage: st, Operators: []checkpoint.Operator{op}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// directCheckpoint is checkpoint id of bs into st without the coordinator.
func directCheckpoint(ctx context.Context, bs []*backend.Backend[int64], st snapshot.Storage, id int64) error {
	snaps := make([]*backend.AsyncSnapshot, len(bs))
	for i, be := range bs {
		s, err := be.Snapshot(id, st)
		if err != nil {
			for _, t := range snaps[:i] {
				t.Release()
			}
			return err
		}
		snaps[i] = s
	}
	cp := &snapshot.Checkpoint{ID: id, CreatedUnixMillis: time.Now().UnixMilli(), Handles: make([]snapshot.Handle, len(bs))}
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, s := range snaps {
		wg.Go(func() { cp.Handles[i], errs[i] = s.Run(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if err := retention.Complete(ctx, st, cp, 1); err != nil {
		return err
	}
	for _, be := range bs {
		if err := be.NotifyCheckpointComplete(id); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkCoordinatorCheckpoint is one checkpoint of 8 backends through
// Coordinator.Checkpoint.
func BenchmarkCoordinatorCheckpoint(b *testing.B) {
	c := coordinatorOf(b, coordJob(b), coordRoot(b))
	ctx := context.Background()
	runtime.GC()
	for b.Loop() {
		if _, err := c.Checkpoint(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDirectCheckpoint is the same checkpoint with the backend and
// snapshot calls made directly: the coordinator's baseline.
func BenchmarkDirectCheckpoint(b *testing.B) {
	bs, st := coordJob(b), coordRoot(b)
	ctx := context.Background()
	id := int64(0)
	runtime.GC()
	for b.Loop() {
		id++
		if err := directCheckpoint(ctx, bs, st, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCoordinatorPaired runs both, alternating op by op on the same
// backends (each side into its own root, with the same ids), the side
// that goes first alternating too, and reports the ratio of their times.
func BenchmarkCoordinatorPaired(b *testing.B) {
	bs := coordJob(b)
	cst, dst := coordRoot(b), coordRoot(b)
	c := coordinatorOf(b, bs, cst)
	ctx := context.Background()
	var coordTime, directTime, coordCPU, directCPU time.Duration
	var ratios []float64
	timed := func(cpu *time.Duration, f func() error) time.Duration {
		c0, _ := processCPU()
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		c1, _ := processCPU()
		*cpu += c1 - c0
		return d
	}
	coord := func() time.Duration {
		return timed(&coordCPU, func() error { _, err := c.Checkpoint(ctx); return err })
	}
	direct := func(id int64) time.Duration {
		return timed(&directCPU, func() error { return directCheckpoint(ctx, bs, dst, id) })
	}
	runtime.GC()
	n := 0
	for b.Loop() {
		id := c.NextID()
		var ct, dt time.Duration
		if n%2 == 0 {
			ct = coord()
			dt = direct(id)
		} else {
			dt = direct(id)
			ct = coord()
		}
		coordTime += ct
		directTime += dt
		ratios = append(ratios, float64(ct)/float64(dt))
		n++
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(coordTime)/float64(directTime), "coord/direct")
	b.ReportMetric(ratios[len(ratios)/2], "coord/direct-med")
	if directCPU > 0 {
		b.ReportMetric(float64(coordCPU)/float64(directCPU), "coord/direct-cpu")
	}
	b.ReportMetric(float64(coordTime.Nanoseconds())/float64(n), "coord-ns/op")
	b.ReportMetric(float64(directTime.Nanoseconds())/float64(n), "direct-ns/op")
}
