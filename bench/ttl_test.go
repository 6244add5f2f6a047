package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/ttl"
)

// TTL state benchmarks (see ttl_setup_test.go for the clock and the
// fixtures). Each is the non-TTL benchmark of the same op, on the TTL twin
// of its fixture, run for the eight combinations of flink's parameters:
// compare BenchmarkTtlValueGet/*/*/* with BenchmarkValueGet and so on, or
// better, read BenchmarkTtlPaired, which runs both in one loop. One op is
// SetCurrentKey plus one call, as there (the ops are in ttl_ops_test.go);
// ttlTime.tick, a decrement and a compare per op, is the only addition to
// the loop. The reads count their misses (miss/op) rather than failing on
// them, since under Expire3PercentPerIteration entries do expire.

// BenchmarkTtlValueGet is TtlValueStateBenchmark.valueGet.
func BenchmarkTtlValueGet(b *testing.B) { runTTL(b, ttlValueGetOp) }

// BenchmarkTtlValueUpdate is TtlValueStateBenchmark.valueUpdate.
func BenchmarkTtlValueUpdate(b *testing.B) { runTTL(b, ttlValueUpdateOp) }

// BenchmarkTtlListAppend is TtlListStateBenchmark.listAppend.
func BenchmarkTtlListAppend(b *testing.B) { runTTL(b, ttlListAppendOp) }

// BenchmarkTtlListGet is TtlListStateBenchmark.listGet.
func BenchmarkTtlListGet(b *testing.B) { runTTL(b, ttlListGetOp) }

// BenchmarkTtlMapGet is TtlMapStateBenchmark.mapGet.
func BenchmarkTtlMapGet(b *testing.B) { runTTL(b, ttlMapGetOp) }

// BenchmarkTtlMapUpdate is TtlMapStateBenchmark.mapUpdate.
func BenchmarkTtlMapUpdate(b *testing.B) { runTTL(b, ttlMapUpdateOp) }

// runTTL runs op on its TTL fixture for each of the eight parameter
// combinations.
func runTTL(b *testing.B, op ttlOp) {
	ttlMatrix(b, func(b *testing.B, c ttlCase) {
		w := getWorkload(b)
		tt := newTTLTime(w, c, ttlInitialMillis)
		be, do := op.open(b, tt.clock, c.config())
		stop := ttlStart(b, be)
		misses := 0
		i := 0
		for b.Loop() {
			tt.tick()
			hit, err := do(i)
			if err != nil {
				b.Fatalf("%s of key %d: %v", op.name, w.setupKey(i), err)
			}
			if !hit {
				misses++
			}
			i++
		}
		stop()
		if op.read {
			ttlReportMisses(b, misses)
		}
	})
}

// BenchmarkCleanupExpired is one full pass of Backend.CleanupExpired over
// the TTL value fixture, SETUP_KEY_COUNT entries of one TTL value state,
// with the clock at 999,999 ms, just before the first stamp (0) expires:
// every entry is live, so the pass reads and judges every entry and
// deletes nothing. entries/s is the scan rate; compare it with
// BenchmarkRawPebbleScan's. One op is one pass.
func BenchmarkCleanupExpired(b *testing.B) {
	w := getWorkload(b)
	clock := ttl.NewManualClock(time.UnixMilli(ttlInitialMillis - 1))
	be := ttlOpenBackend(b, ttlValueFixture, clock, nil)
	if _, err := backend.GetValue(be, ttlValueDesc(ttlDefault)); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// One untimed pass warms the block cache, as the raw scan's does.
	if err := be.CleanupExpired(ctx); err != nil {
		b.Fatal(err)
	}
	m0 := be.TTLMetrics()
	stop := start(b)
	for b.Loop() {
		if err := be.CleanupExpired(ctx); err != nil {
			b.Fatal(err)
		}
	}
	stop()
	m1 := be.TTLMetrics()
	n := w.setupCount()
	// The background worker may scan too (spans of compactions), so the
	// counter may run ahead of the passes, never behind.
	if scanned := m1.BackgroundScanned - m0.BackgroundScanned; scanned < uint64(n*b.N) {
		b.Fatalf("%d passes scanned %d entries, want at least %d", b.N, scanned, n*b.N)
	}
	if removed := m1.BackgroundRemoved - m0.BackgroundRemoved; removed != 0 {
		b.Fatalf("passes over live entries removed %d", removed)
	}
	ttlReportRate(b, n)
}

// BenchmarkCleanupExpiredHalfExpired is BenchmarkCleanupExpired with the
// clock at 1,500,000 ms, where the entries stamped before 500,000 ms (about
// half) are expired: the pass also confirms and deletes them (under the
// write lock, 32 per batch) and then compacts the state's span, all of
// which is timed. Every pass runs on a fresh clone, opened and warmed with
// the timer stopped. entries/s counts the entries scanned.
func BenchmarkCleanupExpiredHalfExpired(b *testing.B) {
	w := getWorkload(b)
	n := w.setupCount()
	ctx := context.Background()
	open := func() (*backend.Backend[int64], error) {
		clock := ttl.NewManualClock(time.UnixMilli(ttlInitialMillis + ttlMillis/2))
		opts := stateOptions(ttlValueFixture.clone(b))
		opts.Clock = clock
		be, err := backend.Open(backend.Int64, opts)
		if err != nil {
			return nil, err
		}
		v, err := backend.GetValue(be, ttlValueDesc(ttlDefault))
		if err != nil {
			_ = be.Close()
			return nil, err
		}
		for _, err := range v.KeysInNamespace(voidNS()) { // warm
			if err != nil {
				_ = be.Close()
				return nil, err
			}
		}
		return be, nil
	}
	b.ReportAllocs()
	var cpu time.Duration
	var scanned, removed uint64
	passes := 0
	for b.Loop() {
		b.StopTimer()
		be, err := open()
		if err != nil {
			b.Fatal(err)
		}
		m0 := be.TTLMetrics()
		cpu0, _ := processCPU()
		b.StartTimer()
		err = be.CleanupExpired(ctx)
		b.StopTimer()
		cpu1, _ := processCPU()
		cpu += cpu1 - cpu0
		m1 := be.TTLMetrics()
		scanned += m1.BackgroundScanned - m0.BackgroundScanned
		removed += m1.BackgroundRemoved - m0.BackgroundRemoved
		if cerr := be.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
		passes++
		b.StartTimer()
	}
	if scanned < uint64(n*passes) {
		b.Fatalf("%d passes scanned %d entries, want at least %d", passes, scanned, n*passes)
	}
	// About half the entries are expired; allow for the random stamps.
	if lo, hi := uint64(n*passes)*4/10, uint64(n*passes)*6/10; removed < lo || removed > hi {
		b.Fatalf("%d passes removed %d of %d entries, want about half", passes, removed, n*passes)
	}
	if passes > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(passes), "cpu-ns/op")
		b.ReportMetric(float64(removed)/float64(passes), "removed/op")
	}
	ttlReportRate(b, n)
}

// BenchmarkRawPebbleScan is the baseline of BenchmarkCleanupExpired: a
// raw Pebble iteration over the same data, a clone of the TTL value
// fixture opened with rawPebbleOptions, over kvState's key range, reading
// every key and value and decoding the stamp, which is the least a cleanup
// pass must do. One op is one pass of SETUP_KEY_COUNT entries.
func BenchmarkRawPebbleScan(b *testing.B) {
	w := getWorkload(b)
	n := w.setupCount()
	db := openRaw(b, ttlValueFixture, false)
	lo, hi := keys.StateBounds(rawStateID)
	scan := func() (int, int64) {
		it, err := db.NewIter(nil)
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		var sum int64
		for valid := it.SeekGE(lo); valid && bytes.Compare(it.Key(), hi) < 0; valid = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				b.Fatal(err)
			}
			ts, _, err := ttl.SplitStamp(v)
			if err != nil {
				b.Fatal(err)
			}
			sum += ts
			count++
		}
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
		return count, sum
	}
	if got, _ := scan(); got != n { // warms the block cache
		b.Fatalf("scanned %d entries, want %d", got, n)
	}
	stop := start(b)
	for b.Loop() {
		if got, _ := scan(); got != n {
			b.Fatalf("scanned %d entries, want %d", got, n)
		}
	}
	stop()
	ttlReportRate(b, n)
}

// ttlReportRate reports the entries scanned per second of timed work, n
// entries per op.
func ttlReportRate(b *testing.B, n int) {
	if s := b.Elapsed().Seconds(); s > 0 && b.N > 0 {
		b.ReportMetric(float64(n)*float64(b.N)/s, "entries/s")
	}
}

// ttlSweepInterval is the periodic sweep's interval in
// BenchmarkValueUpdateWhileSweeping: short enough that a sweep is always
// under way, as the next starts 10 ms after the last ended.
const ttlSweepInterval = 10 * time.Millisecond

// BenchmarkValueUpdateWhileSweeping is BenchmarkValueUpdate on a TTL value
// state while background cleanup's periodic sweep runs over it and over a
// second, larger TTL state (ttlSweepFactor times SETUP_KEY_COUNT entries),
// with Options.TTLSweepInterval 10 ms and the scan rate at its default
// (1,000,000 entries/s). The clock stands at 1,500,000 ms, where about half
// of both states' setup entries are expired: the first sweep confirms and
// deletes them under the write lock the updates take too (32 per hold),
// then compacts the emptied span; later sweeps only scan. The timed loop
// starts once the sweeper is scanning. ttl-scanned/op and ttl-removed/op are
// the entries the sweeper checked and removed during the loop, per op; the
// benchmark fails if the sweeper checked nothing while the loop ran for
// more than a few sweep intervals. Compare ns/op and cpu-ns/op with
// BenchmarkValueUpdate (no TTL, no sweeping) and with
// BenchmarkTtlValueUpdate/NeverExpired/OnCreateAndWrite/NeverReturnExpired.
func BenchmarkValueUpdateWhileSweeping(b *testing.B) {
	w := getWorkload(b)
	clock := ttl.NewManualClock(time.UnixMilli(ttlInitialMillis + ttlMillis/2))
	be := ttlOpenBackend(b, ttlSweepFixture, clock, func(o *backend.Options) {
		o.TTLSweepInterval = ttlSweepInterval
	})
	v, err := backend.GetValue(be, ttlValueDesc(ttlDefault))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := backend.GetValue(be, ttlSweepDesc(ttlDefault)); err != nil {
		b.Fatal(err)
	}
	// Wait for the first sweep to start.
	base := be.TTLMetrics().BackgroundScanned
	for deadline := time.Now().Add(10 * time.Second); be.TTLMetrics().BackgroundScanned == base; {
		if time.Now().After(deadline) {
			b.Fatal("the periodic sweep did not start within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	m0 := be.TTLMetrics()
	stop := start(b)
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		if err := v.Update(w.value(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
	m1 := be.TTLMetrics()
	swept := m1.BackgroundScanned - m0.BackgroundScanned
	if swept == 0 && b.Elapsed() > 5*ttlSweepInterval {
		b.Fatalf("the sweeper checked no entry during the %v loop", b.Elapsed())
	}
	if b.N > 0 {
		b.ReportMetric(float64(swept)/float64(b.N), "ttl-scanned/op")
		b.ReportMetric(float64(m1.BackgroundRemoved-m0.BackgroundRemoved)/float64(b.N), "ttl-removed/op")
	}
}
