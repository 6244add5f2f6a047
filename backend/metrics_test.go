package backend_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
)

var metricsValue = backend.ValueDescriptor[string]{Name: "v", Codec: backend.String}

// fillValues writes n values of about 100 bytes under keys 0..n-1.
func fillValues(t testing.TB, b *backend.Backend[int64], n int) {
	t.Helper()
	v := must(backend.GetValue(b, metricsValue)).in(t)
	for i := range n {
		setKey(t, b, int64(i))
		noErr(t, v.Update(fmt.Sprintf("%0100d", i)))
	}
}

// TestMetricsTimersPending registers 3 timers (one twice), deletes one and
// fires one: one is pending; reopening counts it again from the database.
func TestMetricsTimersPending(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	desc := backend.TimerServiceDescriptor[string]{Name: "t", NamespaceCodec: backend.String}
	svc := must(backend.GetTimerService(b, desc)).in(t)
	setKey(t, b, "a")
	noErr(t, svc.RegisterEventTimeTimer("w", 10))
	noErr(t, svc.RegisterEventTimeTimer("w", 20))
	noErr(t, svc.RegisterEventTimeTimer("w", 20)) // the same timer again
	noErr(t, svc.RegisterProcessingTimeTimer("w", 30))
	noErr(t, svc.DeleteEventTimeTimer("w", 20))
	noErr(t, svc.DeleteEventTimeTimer("w", 99)) // none there
	noErr(t, svc.AdvanceWatermark(15, func(string, string, int64) error { return nil }))
	want := backend.TimerStats{Registered: 4, Deleted: 2, Fired: 1, Pending: 1, PendingExact: true}
	if got := svc.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
	m := b.Metrics()
	if len(m.Timers) != 1 || m.Timers[0].Name != "t" || m.Timers[0].TimerStats != want {
		t.Fatalf("Metrics().Timers = %+v", m.Timers)
	}
	b = reopen(t, b, inDir(dir))
	svc = must(backend.GetTimerService(b, desc)).in(t)
	if got := svc.Stats(); got != (backend.TimerStats{Pending: 1, PendingExact: true}) {
		t.Fatalf("after reopening, Stats() = %+v, want 1 pending", got)
	}
}

// TestMetricsTimersBeyondCache checks the count where the cache does not
// know: registers and deletes beyond a key group's cache are counted as
// new and existing, PendingExact says so, and once the timers fire the
// count is exact again.
func TestMetricsTimersBeyondCache(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir), func(o *backend.Options) { o.MaxParallelism = 1 })
	desc := backend.TimerServiceDescriptor[string]{Name: "t", NamespaceCodec: backend.String, CacheSize: 2}
	svc := must(backend.GetTimerService(b, desc)).in(t)
	setKey(t, b, "a")
	for ts := range int64(5) {
		noErr(t, svc.RegisterEventTimeTimer("w", ts))
	}
	// Timers 0 and 1 are cached; 2, 3 and 4 are beyond the cache.
	if got := svc.Stats(); got.Pending != 5 || got.PendingExact {
		t.Fatalf("after 5 registers, Stats() = %+v, want 5 pending, not known exact", got)
	}
	noErr(t, svc.RegisterEventTimeTimer("w", 4)) // a duplicate the cache cannot see
	if got := svc.Stats(); got.Pending != 6 || got.PendingExact {
		t.Fatalf("after a duplicate beyond the cache, Stats() = %+v, want 6 (counted as new), not exact", got)
	}
	noErr(t, svc.RegisterEventTimeTimer("w", 1)) // a duplicate the cache sees
	if got := svc.Stats(); got.Pending != 6 {
		t.Fatalf("after a duplicate in the cache, Stats() = %+v, want 6", got)
	}
	var fired int
	noErr(t, svc.AdvanceWatermark(3, func(string, string, int64) error { fired++; return nil }))
	// 0 to 3 fired; the last reload found 4, all that is left: exact again.
	if got := svc.Stats(); fired != 4 || got.Pending != 1 || !got.PendingExact {
		t.Fatalf("after firing %d, Stats() = %+v, want 1 pending, exact", fired, got)
	}
	// Reopening counts exactly, beyond the cache too.
	for ts := int64(10); ts < 20; ts++ {
		noErr(t, svc.RegisterEventTimeTimer("w", ts))
	}
	b = reopen(t, b, inDir(dir), func(o *backend.Options) { o.MaxParallelism = 1 })
	svc = must(backend.GetTimerService(b, desc)).in(t)
	if got := svc.Stats(); got.Pending != 11 || !got.PendingExact {
		t.Fatalf("after reopening, Stats() = %+v, want 11 pending, exact", got)
	}
}

// TestMetricsCheckpoint checks a checkpoint's figures against its handle,
// and that progress callbacks never go back and end at their totals.
func TestMetricsCheckpoint(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		st := newStorage(t)
		var mu sync.Mutex
		var calls []snapshot.Progress
		b := m.open(t, func(o *backend.Options) {
			o.CheckpointProgress = func(id int64, p snapshot.Progress) {
				mu.Lock()
				defer mu.Unlock()
				if id != 1 && id != 2 {
					t.Errorf("progress of checkpoint %d", id)
				}
				calls = append(calls, p)
			}
		})
		fillValues(t, b, 2000)
		cp := must(b.Checkpoint(context.Background(), st, 1)).in(t)
		h := cp.Handles[0]
		mt := b.Metrics().Checkpoints
		if mt.SnapshotsTotal != 1 || mt.WrittenTotal != 1 || mt.FailedTotal != 0 || mt.CompletedTotal != 1 || mt.LastCompletedID != 1 {
			t.Fatalf("Checkpoints = %+v", mt)
		}
		last := mt.Last
		if last == nil || last.CheckpointID != 1 || last.Incremental != m.incremental ||
			last.UploadedBytes != h.CheckpointedSize || last.FullSizeBytes != h.StateSize || last.UploadedBytes <= 0 ||
			last.AsyncDuration <= 0 || mt.UploadedBytesTotal != h.CheckpointedSize || mt.AsyncTimeTotal != last.AsyncDuration {
			t.Fatalf("Last = %+v, handle sizes %d / %d", last, h.CheckpointedSize, h.StateSize)
		}
		wantFiles := 1
		if m.incremental {
			wantFiles = len(h.Files) + len(h.Shared)
		}
		if last.UploadedFiles != wantFiles {
			t.Fatalf("UploadedFiles = %d, want %d", last.UploadedFiles, wantFiles)
		}
		checkProgress(t, calls, wantFiles, h.CheckpointedSize)

		// A second checkpoint with nothing new: an incremental one uploads
		// only the private files.
		calls = nil
		s := must(b.Snapshot(2, st)).in(t)
		h2 := must(s.Run(context.Background())).in(t)
		stats, ok := s.Stats()
		if !ok || stats.CheckpointID != 2 || stats.UploadedBytes != h2.CheckpointedSize || stats.FullSizeBytes != h2.StateSize {
			t.Fatalf("AsyncSnapshot.Stats() = %+v, %v; handle %d / %d", stats, ok, h2.CheckpointedSize, h2.StateSize)
		}
		if m.incremental && stats.UploadedBytes >= stats.FullSizeBytes {
			t.Fatalf("the second incremental checkpoint uploaded %d of %d bytes", stats.UploadedBytes, stats.FullSizeBytes)
		}
		checkProgress(t, calls, stats.UploadedFiles, stats.UploadedBytes)
		noErr(t, b.NotifyCheckpointAborted(context.Background(), 2, st))
		mt = b.Metrics().Checkpoints
		if mt.SnapshotsTotal != 2 || mt.WrittenTotal != 2 || mt.AbortedTotal != 1 || mt.CompletedTotal != 1 ||
			mt.UploadedBytesTotal != h.CheckpointedSize+h2.CheckpointedSize {
			t.Fatalf("after the second, Checkpoints = %+v", mt)
		}
	})
}

// checkProgress checks progress reports: done never decreases, totals are
// set from the first call on (a full snapshot's bytes excepted), and the
// last call has everything done.
func checkProgress(t *testing.T, calls []snapshot.Progress, files int, bytes int64) {
	t.Helper()
	if len(calls) == 0 {
		t.Fatal("no progress reported")
	}
	for i := 1; i < len(calls); i++ {
		a, b := calls[i-1], calls[i]
		if b.Files < a.Files || b.Bytes < a.Bytes || b.FilesTotal < a.FilesTotal || b.BytesTotal < a.BytesTotal {
			t.Fatalf("progress went back: %+v after %+v", b, a)
		}
	}
	last := calls[len(calls)-1]
	want := snapshot.Progress{Files: files, FilesTotal: files, Bytes: bytes, BytesTotal: bytes}
	if last != want {
		t.Fatalf("last progress %+v, want %+v (calls %v)", last, want, calls)
	}
	if f := last.Fraction(); f != 1 && bytes+int64(files) > 0 {
		t.Fatalf("last Fraction() = %v", f)
	}
}

// TestMetricsRestore checks the restore's stats and progress, restoring
// at the same and at another parallelism.
func TestMetricsRestore(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		st := newStorage(t)
		b := m.open(t, func(o *backend.Options) { o.MaxParallelism = 8 })
		fillValues(t, b, 2000)
		cp := must(b.Checkpoint(context.Background(), st, 1)).in(t)
		if b.Metrics().Restore != nil {
			t.Fatal("an opened backend reports a restore")
		}
		// Storage that is not a local directory makes the restore copy
		// files rather than link them, as from a remote store.
		for _, kgs := range []backend.KeyGroupRange{{Start: 0, End: 8}, {Start: 2, End: 5}} {
			for name, from := range map[string]snapshot.Storage{"local": st, "copied": hiddenStorage{st}} {
				t.Run(kgs.String()+"/"+name, func(t *testing.T) {
					var calls []snapshot.Progress
					r := m.restore(t, from, cp.Handles, func(o *backend.Options) {
						o.MaxParallelism, o.KeyGroups = 8, kgs
						o.RestoreProgress = func(p snapshot.Progress) { calls = append(calls, p) }
					})
					files, bytes := restore.Totals(cp.Handles, kgs)
					rs := r.Metrics().Restore
					if rs == nil || rs.CheckpointID != 1 || rs.Handles != 1 || rs.Files != files || rs.Bytes != bytes || rs.Duration <= 0 {
						t.Fatalf("Restore = %+v, want %d files, %d bytes", rs, files, bytes)
					}
					if bytes <= 0 || (kgs.Len() < 8 && !m.incremental && bytes >= cp.Handles[0].StateSize) {
						t.Fatalf("restore of %v reads %d bytes of %d", kgs, bytes, cp.Handles[0].StateSize)
					}
					checkProgress(t, calls, files, bytes)
				})
			}
		}
		// RestoreFromPath reports them too.
		dir := filepath.Join(t.TempDir(), "r")
		o := backend.Options{Dir: dir, MaxParallelism: 8}
		m.set(&o)
		r, rep, err := backend.RestoreFromPath(context.Background(), backend.Int64, o, st.Root())
		noErr(t, err)
		defer r.Close()
		if rep.Stats == nil || *rep.Stats != *r.Metrics().Restore {
			t.Fatalf("report stats %+v, metrics %+v", rep.Stats, r.Metrics().Restore)
		}
	})
}

// TestMetricsPebbleAndStates checks Pebble's figures and state sizes after
// known work, and Metrics after Close.
func TestMetricsPebbleAndStates(t *testing.T) {
	b := MustOpenK(t, backend.Int64)
	fillValues(t, b, 5000)
	if m := b.Metrics(); m.Pebble.MemTableBytes == 0 || m.Pebble.MemTables < 1 {
		t.Fatalf("after writes, memtable %d bytes in %d", m.Pebble.MemTableBytes, m.Pebble.MemTables)
	}
	noErr(t, b.Flush())
	timers := must(backend.GetTimerService(b, backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: "timers", NamespaceCodec: backend.Void})).in(t)
	_ = timers
	v := must(backend.GetValue(b, metricsValue)).in(t)
	for i := range 100 {
		setKey(t, b, int64(i))
		must2(v.Get()).in(t)
	}
	m := b.Metrics()
	p := m.Pebble
	var files, size int64
	for _, l := range p.Levels {
		files += l.Files
		size += l.Bytes
	}
	if p.FlushesTotal < 1 || files < 1 || size <= 0 || p.FlushedBytesTotal == 0 || p.DiskUsageBytes < uint64(size) {
		t.Fatalf("after a flush: %+v", p)
	}
	if p.BlockCacheHitsTotal+p.BlockCacheMissesTotal == 0 || p.BlockCacheBytes <= 0 {
		t.Fatalf("after reads, block cache %+v", p)
	}
	if len(m.States) != 2 || m.States[0].Name != "timers" || m.States[0].Kind != "timers" || m.States[1].Name != "v" || m.States[1].Kind != "value" {
		t.Fatalf("States = %+v", m.States)
	}
	// 5000 values of 100 bytes, compressed: well over 10 KB, under the
	// database.
	if est := m.States[1].DiskBytesEstimate; est < 10_000 || est > uint64(size) {
		t.Fatalf("state v estimated at %d bytes, tables hold %d", est, size)
	}
	if m.States[0].DiskBytesEstimate != 0 {
		t.Fatalf("the empty timer service is estimated at %d bytes", m.States[0].DiskBytesEstimate)
	}
	noErr(t, b.Close())
	after := b.Metrics()
	if !after.Closed || after.Pebble != (backend.PebbleMetrics{}) || after.States != nil || len(after.Timers) != 1 {
		t.Fatalf("after Close: %+v", after)
	}
}

// TestMetricsConcurrent calls Metrics from another goroutine while the
// task writes, checkpoints and closes (run with -race).
func TestMetricsConcurrent(t *testing.T) {
	st := newStorage(t)
	b := MustOpenK(t, backend.Int64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = b.Metrics()
			}
		}
	})
	svc := must(backend.GetTimerService(b, backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: "timers", NamespaceCodec: backend.Void})).in(t)
	v := must(backend.GetValue(b, metricsValue)).in(t)
	for i := range 3000 {
		setKey(t, b, int64(i))
		noErr(t, v.Update("x"))
		noErr(t, svc.RegisterEventTimeTimer(backend.VoidNamespace{}, int64(i)))
		if i%1000 == 999 {
			must(b.Checkpoint(context.Background(), st, int64(i/1000+1))).in(t)
		}
	}
	noErr(t, b.Close())
	close(stop)
	wg.Wait()
	if m := b.Metrics(); !m.Closed || m.Checkpoints.CompletedTotal != 3 || m.Timers[0].Pending != 3000 {
		t.Fatalf("at the end: %+v", m)
	}
}

// BenchmarkMetrics measures a Metrics call on a backend with a few states
// and a flushed database.
func BenchmarkMetrics(b *testing.B) {
	be := MustOpenK(b, backend.Int64)
	for i := range 4 {
		v := must(backend.GetValue(be, backend.ValueDescriptor[string]{Name: fmt.Sprint("v", i), Codec: backend.String})).in(b)
		for k := range 5000 {
			setKey(b, be, int64(k))
			noErr(b, v.Update("value"))
		}
		noErr(b, be.Flush())
	}
	must(backend.GetTimerService(be, backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: "timers", NamespaceCodec: backend.Void})).in(b)
	for b.Loop() {
		_ = be.Metrics()
	}
}

// TestMetricsRestoreMerging restores one backend from a checkpoint of two
// (parallelism 2 to 1): the progress covers both handles, the one the
// database is opened from and the one read into it.
func TestMetricsRestoreMerging(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		st := newStorage(t)
		var handles []snapshot.Handle
		for _, kgs := range []backend.KeyGroupRange{{Start: 0, End: 4}, {Start: 4, End: 8}} {
			b := m.open(t, func(o *backend.Options) { o.MaxParallelism, o.KeyGroups = 8, kgs })
			v := must(backend.GetValue(b, metricsValue)).in(t)
			for i := range int64(4000) {
				if b.SetCurrentKey(i) == nil {
					noErr(t, v.Update(fmt.Sprintf("%0100d", i)))
				}
			}
			s := must(b.Snapshot(1, st)).in(t)
			handles = append(handles, must(s.Run(context.Background())).in(t))
		}
		commitCP(t, st, 1, handles...)
		var calls []snapshot.Progress
		r := m.restore(t, hiddenStorage{st}, handles, func(o *backend.Options) {
			o.MaxParallelism = 8
			o.RestoreProgress = func(p snapshot.Progress) { calls = append(calls, p) }
		})
		files, bytes := restore.Totals(handles, backend.KeyGroupRange{Start: 0, End: 8})
		rs := r.Metrics().Restore
		if rs.Handles != 2 || rs.Files != files || rs.Bytes != bytes || rs.Entries == 0 {
			t.Fatalf("Restore = %+v, want 2 handles, %d files, %d bytes", rs, files, bytes)
		}
		checkProgress(t, calls, files, bytes)
	})
}
