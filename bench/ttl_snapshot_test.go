package bench

import (
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// BenchmarkSnapshotSyncAfterTTLReads times the synchronous part of a
// snapshot (Backend.Snapshot) of the TTL value fixture after 1% of its
// keys were read under OnReadAndWrite since the last one. Each read wrote
// its refreshed stamp through to Pebble, so nothing is left for the
// snapshot to settle: a full snapshot pins a Pebble snapshot, an
// incremental one flushes the restamps and takes a native checkpoint.
// An op is the reads and the snapshot; sync-ns/op is the snapshot's
// synchronous part alone, the figure of the targets: Full under 1 ms,
// Incremental under 20 ms (as BenchmarkFullSnapshotSync and
// BenchmarkIncrementalSnapshotSync/changed=1%). The reads stay in ns/op so
// that the benchmark's op count follows the work done, not only the
// microseconds a full snapshot takes.
func BenchmarkSnapshotSyncAfterTTLReads(b *testing.B) {
	for _, incremental := range []bool{false, true} {
		name := map[bool]string{false: "Full", true: "Incremental"}[incremental]
		b.Run(name, func(b *testing.B) { benchSyncAfterReads(b, incremental) })
	}
}

func benchSyncAfterReads(b *testing.B, incremental bool) {
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
	per := max(1, w.setupCount()/100)
	next := 0
	id := int64(0)
	var sync time.Duration
	b.ReportAllocs()
	for b.Loop() {
		clock.Advance(time.Millisecond) // every read restamps
		for range per {
			if err := be.SetCurrentKey(w.setupKey(next % w.setupCount())); err != nil {
				b.Fatal(err)
			}
			if _, _, err := v.Get(); err != nil {
				b.Fatal(err)
			}
			next++
		}
		id++
		t0 := time.Now()
		s, err := be.Snapshot(id, st)
		if err != nil {
			b.Fatal(err)
		}
		sync += time.Since(t0)
		s.Release()
	}
	b.ReportMetric(float64(sync.Nanoseconds())/float64(id), "sync-ns/op")
}
