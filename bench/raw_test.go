package bench

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// Raw Pebble baselines: the same options, key count, key order and stored
// bytes as the state benchmarks, without the backend. Keys are precomputed
// (rawKeyTable), so one op is the Pebble call alone; the ratio of a state
// benchmark to its baseline is the backend's whole overhead, SetCurrentKey
// included.

// BenchmarkRawPebbleGet is the baseline of BenchmarkValueGet (and, by the
// targets in doc.go, of BenchmarkMapGet): get an existing 11-byte key and
// decode its 8-byte value.
func BenchmarkRawPebbleGet(b *testing.B) {
	w, t := getWorkload(b), getRawKeys(b)
	db := openRaw(b, rawValueFixture, false)
	warmRaw(b, db)
	stop := start(b)
	var sum int64
	i := 0
	for b.Loop() {
		v, closer, err := db.Get(t.key(w.setupKey(i)))
		if err != nil {
			b.Fatalf("get key %d: %v", w.setupKey(i), err)
		}
		sum += decodeInt64(v)
		if err := closer.Close(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkRawPebbleSet is the baseline of BenchmarkValueUpdate (and of
// BenchmarkMapUpdate): overwrite an existing 11-byte key with 8 bytes.
func BenchmarkRawPebbleSet(b *testing.B) { benchRawSet(b, false) }

// BenchmarkRawPebbleSetWAL is BenchmarkRawPebbleSet with the WAL on (no
// sync), the baseline of BenchmarkValueUpdateWAL.
func BenchmarkRawPebbleSetWAL(b *testing.B) { benchRawSet(b, true) }

func benchRawSet(b *testing.B, enableWAL bool) {
	w, t := getWorkload(b), getRawKeys(b)
	db := openRaw(b, rawValueFixture, enableWAL)
	stop := start(b)
	var v [valueLen]byte
	i := 0
	for b.Loop() {
		if err := db.Set(t.key(w.setupKey(i)), appendInt64(v[:0], w.value(i)), pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkRawPebbleMerge is the baseline of BenchmarkListAppend: merge a
// 9-byte list element onto an existing key whose value is one flushed
// element, with the backend's merge operator.
func BenchmarkRawPebbleMerge(b *testing.B) {
	w, t := getWorkload(b), getRawKeys(b)
	db := openRaw(b, rawListFixture, false)
	stop := start(b)
	var v [listElemLen]byte
	i := 0
	for b.Loop() {
		if err := db.Merge(t.key(w.setupKey(i)), appendListElem(v[:0], w.value(i)), pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkRawPebbleMapGet is a like-for-like baseline of BenchmarkMapGet,
// not one of the targets: get an existing 19-byte entry key from the
// 10x larger map fixture. MapGet/RawPebbleMapGet isolates the backend's
// overhead from the cost of the larger database.
func BenchmarkRawPebbleMapGet(b *testing.B) {
	w, t := getWorkload(b), getRawKeys(b)
	db := openRaw(b, rawMapFixture, false)
	warmRaw(b, db)
	stop := start(b)
	var sum float64
	var k [mapKeyLen]byte
	i := 0
	for b.Loop() {
		key := appendInt64(append(k[:0], t.key(w.setupKey(i))...), w.mapKey(i))
		v, closer, err := db.Get(key)
		if err != nil {
			b.Fatalf("get key %d map key %d: %v", w.setupKey(i), w.mapKey(i), err)
		}
		sum += float64(decodeInt64(v))
		if err := closer.Close(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkRawPebbleMapSet is the like-for-like baseline of
// BenchmarkMapUpdate: overwrite an existing 19-byte entry key of the map
// fixture with 8 bytes.
func BenchmarkRawPebbleMapSet(b *testing.B) {
	w, t := getWorkload(b), getRawKeys(b)
	db := openRaw(b, rawMapFixture, false)
	warmRaw(b, db)
	stop := start(b)
	var k [mapKeyLen]byte
	var v [valueLen]byte
	i := 0
	for b.Loop() {
		key := appendInt64(append(k[:0], t.key(w.setupKey(i))...), w.mapKey(i))
		if err := db.Set(key, appendFloat64(v[:0], w.mapValue(i)), pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}
