package bench

import (
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// The TTL read buffer (backend.Options.TTLReadBuffer) moves the writes TTL
// puts on reads off the read path. These benchmarks price what it defers:
// the write-back itself, and reads whose working set outgrows the buffer.

// BenchmarkTtlReadBufferWriteBack measures what the buffer costs
// snapshots: each op is one key read under OnReadAndWrite, and a snapshot
// is taken after every pass (and after the last op), whose synchronous part
// is timed and reported per key the pass buffered (sync-ns/key); ns/op is
// the reads with their share of the timed snapshots.
//
//   - Full: full snapshots copy the buffer in their synchronous part and
//     write it back on a goroutine of their own.
//   - Incremental: incremental snapshots write it back in their
//     synchronous part, before the memtable flush and the native
//     checkpoint, which the figure includes.
//
// Compare with RawPebbleGetSet, what each read would cost the task if it
// wrote through.
func BenchmarkTtlReadBufferWriteBack(b *testing.B) {
	for _, incremental := range []bool{false, true} {
		name := map[bool]string{false: "Full", true: "Incremental"}[incremental]
		b.Run(name, func(b *testing.B) { benchWriteBack(b, incremental) })
	}
}

func benchWriteBack(b *testing.B, incremental bool) {
	w := getWorkload(b)
	clock := ttl.NewManualClock(time.UnixMilli(ttlInitialMillis))
	be := ttlOpenBackend(b, ttlValueFixture, clock, func(o *backend.Options) { o.IncrementalCheckpoints = incremental })
	cfg := ttl.Config{TTL: ttlMillis * time.Millisecond, Update: ttl.OnReadAndWrite}
	v, err := backend.GetValue(be, ttlValueDesc(cfg))
	if err != nil {
		b.Fatal(err)
	}
	ttlWarm(b, v.KeysInNamespace(voidNS()))
	st, err := snapshot.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var spent time.Duration
	keys := 0
	id := int64(0)
	snap := func() {
		id++
		t0 := time.Now()
		s, err := be.Snapshot(id, st)
		if err != nil {
			b.Fatal(err)
		}
		spent += time.Since(t0)
		s.Release()
	}
	i := 0
	for b.Loop() {
		if i == w.setupCount() { // a pass: snapshot what it read
			snap()
			clock.Advance(time.Millisecond) // the next pass restamps again
			i = 0
		}
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := v.Get(); err != nil {
			b.Fatal(err)
		}
		i++
		keys++
	}
	snap()
	b.ReportMetric(float64(spent.Nanoseconds())/float64(keys), "sync-ns/key")
	b.ReportMetric(float64(spent.Microseconds())/float64(id), "sync-us/snapshot")
}

// BenchmarkTtlValueGetSmallReadBuffer is TtlValueGet under
// NeverExpired/OnReadAndWrite with a read buffer of 4 MiB, about 55,000
// keys, a ninth of the default key set: in steady state nearly every read
// of a new key evicts one, so it shows the cost of a working set the
// buffer cannot hold, between TtlValueGet (buffer holds it) and
// TtlValueGetWriteThrough.
func BenchmarkTtlValueGetSmallReadBuffer(b *testing.B) {
	benchTTLValueGetBuffer(b, 4<<20)
}

// BenchmarkTtlValueGetWriteThrough is TtlValueGet under
// NeverExpired/OnReadAndWrite with the read buffer off, as in Flink: every
// read writes its new stamp to Pebble.
func BenchmarkTtlValueGetWriteThrough(b *testing.B) {
	benchTTLValueGetBuffer(b, -1)
}

func benchTTLValueGetBuffer(b *testing.B, size int64) {
	w := getWorkload(b)
	clock := ttl.NewManualClock(time.UnixMilli(ttlInitialMillis))
	be := ttlOpenBackend(b, ttlValueFixture, clock, func(o *backend.Options) { o.TTLReadBuffer = size })
	cfg := ttl.Config{TTL: ttlMillis * time.Millisecond, Update: ttl.OnReadAndWrite}
	v, err := backend.GetValue(be, ttlValueDesc(cfg))
	if err != nil {
		b.Fatal(err)
	}
	ttlWarm(b, v.KeysInNamespace(voidNS()))
	stop := ttlStart(b, be)
	var sum int64
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		x, _, err := v.Get()
		if err != nil {
			b.Fatal(err)
		}
		sum += x
		i++
	}
	stop()
}
