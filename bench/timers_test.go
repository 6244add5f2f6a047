package bench

import (
	"encoding/binary"
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
)

// Timer benchmarks. BenchmarkTimerRegister and BenchmarkTimerDelete run on
// the value fixture, as BenchmarkRawPebbleSet, their baseline, does; one op
// is SetCurrentKey plus one call. BenchmarkTimerFire and its baseline
// BenchmarkRawPebbleScanDelete time a batch of -timers due timers (one per
// setup key, at random timestamps, flushed to disk before the timed part)
// and report ns/timer: advancing the watermark over all of them, against
// iterating over the same entries with raw Pebble and deleting each.

var timersFlag = flag.Int("timers", 0, "timers per BenchmarkTimerFire batch (0: 100,000, or -keys if fewer)")

func timerCount(tb testing.TB) int {
	n := *timersFlag
	if n <= 0 {
		n = min(100_000, getWorkload(tb).setupCount())
	}
	return n
}

var timerDesc = backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: "timers", NamespaceCodec: backend.Void}

func openTimers(tb testing.TB, be *backend.Backend[int64]) *backend.TimerService[int64, backend.VoidNamespace] {
	tb.Helper()
	svc, err := backend.GetTimerService(be, timerDesc)
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

// timerTS is the timestamp of the i-th timer: spread over [0, n).
func timerTS(w *workload, i, n int) int64 {
	v := w.value(i) % int64(n)
	if v < 0 {
		v += int64(n)
	}
	return v
}

// BenchmarkTimerRegister registers an event-time timer for an existing key.
func BenchmarkTimerRegister(b *testing.B) {
	w := getWorkload(b)
	be := openBackend(b, valueFixture, false)
	svc := openTimers(b, be)
	stop := start(b)
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		if err := svc.RegisterEventTimeTimer(backend.VoidNamespace{}, w.value(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkTimerDelete deletes registered event-time timers (-timers of
// them, flushed; once every one is deleted, deletes repeat, as blind
// deletes of absent timers).
func BenchmarkTimerDelete(b *testing.B) {
	w, n := getWorkload(b), timerCount(b)
	be := openBackend(b, valueFixture, false)
	svc := openTimers(b, be)
	for i := range n {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		if err := svc.RegisterEventTimeTimer(backend.VoidNamespace{}, timerTS(w, i, n)); err != nil {
			b.Fatal(err)
		}
	}
	if err := be.Flush(); err != nil {
		b.Fatal(err)
	}
	stop := start(b)
	i := 0
	for b.Loop() {
		j := i % n
		if err := be.SetCurrentKey(w.setupKey(j)); err != nil {
			b.Fatal(err)
		}
		if err := svc.DeleteEventTimeTimer(backend.VoidNamespace{}, timerTS(w, j, n)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkTimerFire advances the watermark over -timers due timers.
func BenchmarkTimerFire(b *testing.B) {
	w, n := getWorkload(b), timerCount(b)
	be, err := backend.Open(backend.Int64, stateOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := be.Close(); err != nil {
			b.Error(err)
		}
	}()
	svc := openTimers(b, be)
	fired := 0
	fire := func(int64, backend.VoidNamespace, int64) error { fired++; return nil }
	stop := start(b)
	for b.Loop() {
		b.StopTimer()
		for i := range n {
			if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
				b.Fatal(err)
			}
			if err := svc.RegisterEventTimeTimer(backend.VoidNamespace{}, timerTS(w, i, n)); err != nil {
				b.Fatal(err)
			}
		}
		if err := be.Flush(); err != nil {
			b.Fatal(err)
		}
		fired = 0
		b.StartTimer()
		if err := svc.AdvanceWatermark(int64(n), fire); err != nil {
			b.Fatal(err)
		}
		if fired != n {
			b.Fatalf("fired %d timers, want %d", fired, n)
		}
	}
	stop()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/timer")
}

// BenchmarkRawPebbleScanDelete is the baseline of BenchmarkTimerFire: the
// same entries, written the same way under the timer layout, iterated over
// in key order and deleted one by one.
func BenchmarkRawPebbleScanDelete(b *testing.B) {
	w, n := getWorkload(b), timerCount(b)
	db, err := openRawDir(b.TempDir(), false)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := db.close(); err != nil {
			b.Error(err)
		}
	}()
	entries := rawTimerEntries(w, n)
	lo, hi := keys.StateBounds(1)
	stop := start(b)
	for b.Loop() {
		b.StopTimer()
		for _, e := range entries {
			if err := db.Set(e, nil, pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		deleted := scanDelete(b, db, lo, hi)
		if deleted != n {
			b.Fatalf("deleted %d entries, want %d", deleted, n)
		}
	}
	stop()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/timer")
}

// BenchmarkTimerFirePaired runs BenchmarkTimerFire's and
// BenchmarkRawPebbleScanDelete's timed parts alternately in one loop, each
// op one batch of each, and reports their times per timer and the median
// of the per-op ratios of wall time (fire/raw-med) and of the process's
// CPU time (fire/raw-cpu-med, background work included): on a shared
// machine, the ratio of two benchmarks run one after the other moves with
// the load, the ratio of interleaved batches less, and that of CPU time
// least.
func BenchmarkTimerFirePaired(b *testing.B) {
	w, n := getWorkload(b), timerCount(b)
	be, err := backend.Open(backend.Int64, stateOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := be.Close(); err != nil {
			b.Error(err)
		}
	}()
	svc := openTimers(b, be)
	db, err := openRawDir(b.TempDir(), false)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := db.close(); err != nil {
			b.Error(err)
		}
	}()
	entries := rawTimerEntries(w, n)
	lo, hi := keys.StateBounds(1)
	fired := 0
	fire := func(int64, backend.VoidNamespace, int64) error { fired++; return nil }
	var ours, raw time.Duration
	round := 0
	var ratios, cpuRatios []float64
	for b.Loop() {
		b.StopTimer()
		for i := range n {
			if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
				b.Fatal(err)
			}
			if err := svc.RegisterEventTimeTimer(backend.VoidNamespace{}, timerTS(w, i, n)); err != nil {
				b.Fatal(err)
			}
		}
		for _, e := range entries {
			if err := db.Set(e, nil, pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		if err := be.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		firePart := func() {
			fired = 0
			if err := svc.AdvanceWatermark(int64(n), fire); err != nil || fired != n {
				b.Fatalf("fired %d of %d timers: %v", fired, n, err)
			}
		}
		rawPart := func() {
			if got := scanDelete(b, db, lo, hi); got != n {
				b.Fatalf("deleted %d entries, want %d", got, n)
			}
		}
		// Alternate which runs first, so that neither always meets the
		// background work the flushes above started.
		var fw, fc, rw, rc time.Duration
		if round%2 == 0 {
			fw, fc = timed(firePart)
			rw, rc = timed(rawPart)
		} else {
			rw, rc = timed(rawPart)
			fw, fc = timed(firePart)
		}
		round++
		ours += fw
		raw += rw
		ratios = append(ratios, float64(fw)/float64(rw))
		if rc > 0 {
			cpuRatios = append(cpuRatios, float64(fc)/float64(rc))
		}
	}
	slices.Sort(ratios)
	slices.Sort(cpuRatios)
	if len(cpuRatios) > 0 {
		b.ReportMetric(cpuRatios[len(cpuRatios)/2], "fire/raw-cpu-med")
	}
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N*n), "fire-ns/timer")
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N*n), "raw-ns/timer")
	b.ReportMetric(ratios[len(ratios)/2], "fire/raw-med")
}

// rawTimerEntries returns the keys BenchmarkTimerFire's timers are stored
// under in a new backend (timer service id 1, default max parallelism).
func rawTimerEntries(w *workload, n int) [][]byte {
	const id, maxPar = 1, backend.DefaultMaxParallelism
	entries := make([][]byte, n)
	for i := range entries {
		k := binary.BigEndian.AppendUint64(nil, uint64(w.setupKey(i))^(1<<63))
		e := keys.AppendStateID(nil, id)
		e = keys.AppendKeyGroup(e, keygroup.AssignUnchecked(k, maxPar), keys.KeyGroupBytes(maxPar))
		e = append(e, 0)
		e = binary.BigEndian.AppendUint64(e, uint64(timerTS(w, i, n))^(1<<63))
		entries[i] = append(e, k...)
	}
	return entries
}

// scanDelete iterates over [lo, hi) and deletes every key, one by one.
func scanDelete(b *testing.B, db *rawDB, lo, hi []byte) int {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		b.Fatal(err)
	}
	deleted := 0
	for valid := it.First(); valid; valid = it.Next() {
		if err := db.Delete(it.Key(), pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		deleted++
	}
	if err := it.Close(); err != nil {
		b.Fatal(err)
	}
	return deleted
}

// timed runs f and returns the wall time and the process's CPU time it
// took.
func timed(f func()) (wall, cpu time.Duration) {
	c0, _ := processCPU()
	t0 := time.Now()
	f()
	wall = time.Since(t0)
	c1, _ := processCPU()
	return wall, c1 - c0
}

// BenchmarkTimerWritePaired runs TimerRegister, TimerDelete and their
// baseline RawPebbleSet in one loop, in alternating blocks of 256 ops
// each (one op is a block of each), over the same keys (the raw set on the
// raw value fixture, the timers on the value fixture), and reports each
// one's ns per single call and the
// median of the per-block ratios to the baseline (register/raw-med,
// delete/raw-med). The deletes remove the timers the registers of the
// same block wrote.
func BenchmarkTimerWritePaired(b *testing.B) {
	const block = 256
	w, t := getWorkload(b), getRawKeys(b)
	db := openRaw(b, rawValueFixture, false)
	be := openBackend(b, valueFixture, false)
	svc := openTimers(b, be)
	var v [valueLen]byte
	var reg, del, raw time.Duration
	var regRatios, delRatios []float64
	i := 0
	for b.Loop() {
		// One op is a block of each.
		t0 := time.Now()
		for j := range block {
			if err := db.Set(t.key(w.setupKey(i+j)), appendInt64(v[:0], w.value(i+j)), pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for j := range block {
			if err := be.SetCurrentKey(w.setupKey(i + j)); err != nil {
				b.Fatal(err)
			}
			if err := svc.RegisterEventTimeTimer(backend.VoidNamespace{}, w.value(i+j)); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		for j := range block {
			if err := be.SetCurrentKey(w.setupKey(i + j)); err != nil {
				b.Fatal(err)
			}
			if err := svc.DeleteEventTimeTimer(backend.VoidNamespace{}, w.value(i+j)); err != nil {
				b.Fatal(err)
			}
		}
		t3 := time.Now()
		i += block
		raw += t1.Sub(t0)
		reg += t2.Sub(t1)
		del += t3.Sub(t2)
		regRatios = append(regRatios, float64(t2.Sub(t1))/float64(t1.Sub(t0)))
		delRatios = append(delRatios, float64(t3.Sub(t2))/float64(t1.Sub(t0)))
	}
	slices.Sort(regRatios)
	slices.Sort(delRatios)
	b.ReportMetric(float64(raw.Nanoseconds())/float64(i), "raw-ns/op")
	b.ReportMetric(float64(reg.Nanoseconds())/float64(i), "register-ns/op")
	b.ReportMetric(float64(del.Nanoseconds())/float64(i), "delete-ns/op")
	b.ReportMetric(regRatios[len(regRatios)/2], "register/raw-med")
	b.ReportMetric(delRatios[len(delRatios)/2], "delete/raw-med")
}

// BenchmarkTimerDeletePaired is BenchmarkTimerDelete paired with its
// baseline: -timers timers registered and flushed first, then blocks of
// 256 raw sets and 256 deletes of those timers in turn (one op is a block
// of each), reporting ns per call and the median per-block ratio.
func BenchmarkTimerDeletePaired(b *testing.B) {
	const block = 256
	w, t, n := getWorkload(b), getRawKeys(b), timerCount(b)
	db := openRaw(b, rawValueFixture, false)
	be := openBackend(b, valueFixture, false)
	svc := openTimers(b, be)
	for i := range n {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		if err := svc.RegisterEventTimeTimer(backend.VoidNamespace{}, timerTS(w, i, n)); err != nil {
			b.Fatal(err)
		}
	}
	if err := be.Flush(); err != nil {
		b.Fatal(err)
	}
	var v [valueLen]byte
	var del, raw time.Duration
	var ratios []float64
	i := 0
	for b.Loop() {
		t0 := time.Now()
		for j := range block {
			if err := db.Set(t.key(w.setupKey(i+j)), appendInt64(v[:0], w.value(i+j)), pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for j := range block {
			k := (i + j) % n
			if err := be.SetCurrentKey(w.setupKey(k)); err != nil {
				b.Fatal(err)
			}
			if err := svc.DeleteEventTimeTimer(backend.VoidNamespace{}, timerTS(w, k, n)); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		i += block
		raw += t1.Sub(t0)
		del += t2.Sub(t1)
		ratios = append(ratios, float64(t2.Sub(t1))/float64(t1.Sub(t0)))
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(raw.Nanoseconds())/float64(i), "raw-ns/op")
	b.ReportMetric(float64(del.Nanoseconds())/float64(i), "delete-ns/op")
	b.ReportMetric(ratios[len(ratios)/2], "delete/raw-med")
}
