package bench

import (
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// MapStateBenchmark: SETUP_KEY_COUNT keys with MAP_KEY_COUNT (10) entries
// each, map keys 0..9 and float64 values. One op is SetCurrentKey plus one
// call; the map key and value come from the same rolling index.

func openMap(b *testing.B) (*backend.Backend[int64], *backend.Map[int64, backend.VoidNamespace, int64, float64]) {
	be := openBackend(b, mapFixture, false)
	m, err := backend.GetMap(be, mapDesc)
	if err != nil {
		b.Fatal(err)
	}
	warm(b, m.KeysInNamespace(voidNS()))
	return be, m
}

// BenchmarkMapGet is mapGet: read one existing entry.
func BenchmarkMapGet(b *testing.B) {
	w := getWorkload(b)
	be, m := openMap(b)
	stop := start(b)
	var sum float64
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		x, ok, err := m.Get(w.mapKey(i))
		if err != nil || !ok {
			b.Fatalf("get key %d map key %d: %v, %v", w.setupKey(i), w.mapKey(i), ok, err)
		}
		sum += x
		i++
	}
	stop()
}

// BenchmarkMapUpdate is mapUpdate: overwrite one existing entry.
func BenchmarkMapUpdate(b *testing.B) {
	w := getWorkload(b)
	be, m := openMap(b)
	stop := start(b)
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		if err := m.Put(w.mapKey(i), w.mapValue(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkMapContains is mapContains: look up map key mapKey<<1, which
// is present for mapKey 0..4 and absent for 5..9, so half the calls miss
// (bloom filters answer most misses).
func BenchmarkMapContains(b *testing.B) {
	w := getWorkload(b)
	be, m := openMap(b)
	stop := start(b)
	hits := 0
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		ok, err := m.Contains(w.mapKey(i) << 1)
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			hits++
		}
		i++
	}
	stop()
}

// BenchmarkMapIterate is flink's mapIterator: walk all 10 entries of an
// existing key. ns/op is per call (one key, 10 entries); the extra
// ns/entry metric divides by the 10 entries, which is what flink reports
// (@OperationsPerInvocation(MAP_KEY_COUNT)).
func BenchmarkMapIterate(b *testing.B) {
	w := getWorkload(b)
	be, m := openMap(b)
	stop := start(b)
	var sum float64
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		n := 0
		for e, err := range m.Entries() {
			if err != nil {
				b.Fatal(err)
			}
			sum += e.Value
			n++
		}
		if n != mapKeyCount {
			b.Fatalf("key %d has %d entries, want %d", w.setupKey(i), n, mapKeyCount)
		}
		i++
	}
	stop()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*mapKeyCount), "ns/entry")
}
