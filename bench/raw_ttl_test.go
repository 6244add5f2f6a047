package bench

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// Raw Pebble baselines of the TTL reads that write. They are not targets:
// they measure what raw Pebble itself pays for the reads and writes those
// TTL benchmarks must do, on the raw fixtures, so that a TTL read's ratio
// to its non-TTL read splits into Pebble's cost of the extra writes
// (RawPebbleGetSet / RawPebbleGet) and the backend's own overhead
// (TtlValueGet / RawPebbleGetSet).
//
//   - An OnReadAndWrite read writes the entry back with a new stamp, as
//     flink's does: BenchmarkRawPebble{,List,Map}GetSet get a key and set
//     it to the value read plus 8 bytes (the stamp).
//   - An Expire3PercentPerIteration read deletes the entries that expired,
//     3% of the keys per pass: BenchmarkRawPebbleGetExpire3Percent gets a
//     key and deletes it if its (hashed) rank falls in the 3% of keys
//     "expired" by the current pass, the first pass included, so that it
//     deletes and misses as often as TtlValueGet does.

func BenchmarkRawPebbleGetSet(b *testing.B) {
	t := getRawKeys(b)
	benchRawGetSet(b, rawValueFixture, func(dst []byte, k, _ int64) []byte { return append(dst, t.key(k)...) })
}

func BenchmarkRawPebbleListGetSet(b *testing.B) {
	t := getRawKeys(b)
	benchRawGetSet(b, rawListFixture, func(dst []byte, k, _ int64) []byte { return append(dst, t.key(k)...) })
}

func BenchmarkRawPebbleMapGetSet(b *testing.B) {
	t := getRawKeys(b)
	benchRawGetSet(b, rawMapFixture, func(dst []byte, k, uk int64) []byte { return appendInt64(append(dst, t.key(k)...), uk) })
}

// benchRawGetSet gets key(setup key, map key) and sets it to an 8-byte
// stamp followed by the value read.
func benchRawGetSet(b *testing.B, f *fixture, key func(dst []byte, k, uk int64) []byte) {
	w := getWorkload(b)
	db := openRaw(b, f, false)
	warmRaw(b, db)
	stop := start(b)
	var kb [mapKeyLen]byte
	var vb [64]byte
	var sum int64
	i := 0
	for b.Loop() {
		k := key(kb[:0], w.setupKey(i), w.mapKey(i))
		v, closer, err := db.Get(k)
		if err != nil {
			b.Fatalf("get key %d: %v", w.setupKey(i), err)
		}
		sum += decodeInt64(v[len(v)-valueLen:])
		out := append(appendInt64(vb[:0], int64(i)), v...)
		if err := closer.Close(); err != nil {
			b.Fatal(err)
		}
		if err := db.Set(k, out, pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// expireRank maps a key to [0, 1<<20), uniformly: the order in which the
// 3%-per-pass baseline lets keys "expire".
func expireRank(k int64) uint64 { return (uint64(k) * 0x9E3779B97F4A7C15) >> 44 }

// BenchmarkRawPebbleGetExpire3Percent is the baseline above for
// TtlValueGet/Expire3PercentPerIteration/OnCreateAndWrite: RawPebbleGet
// that deletes the key it read if the key has "expired". In pass p over
// the keys (p from 0), the keys whose expireRank is below 3% times p+1 of
// its range have expired; each is deleted on its first read and missed
// after.
func BenchmarkRawPebbleGetExpire3Percent(b *testing.B) {
	w, t := getWorkload(b), getRawKeys(b)
	db := openRaw(b, rawValueFixture, false)
	warmRaw(b, db)
	stop := start(b)
	n := w.setupCount()
	var sum int64
	var expired uint64 // rank bound of the current pass
	misses, left := 0, 0
	i := 0
	for b.Loop() {
		if left--; left < 0 {
			expired += (1 << 20) * 3 / 100
			if expired > 1<<20 {
				expired = 1 << 20
			}
			left = n - 1
		}
		k := w.setupKey(i)
		hit, err := rawGetExpire(db, t.key(k), expireRank(k) < expired, &sum)
		if err != nil {
			b.Fatalf("get key %d: %v", k, err)
		}
		if !hit {
			misses++
		}
		i++
	}
	stop()
	ttlReportMisses(b, misses)
}

// rawGetExpire gets key, adds its value to sum, and deletes it if expired.
// It reports whether the key was there and not expired. (Written out of
// the b.Loop body: inline there, this code crashed Go 1.26.8's escape
// analysis.)
func rawGetExpire(db *rawDB, key []byte, expired bool, sum *int64) (bool, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	*sum += decodeInt64(v)
	if err := closer.Close(); err != nil {
		return false, err
	}
	if !expired {
		return true, nil
	}
	// TtlValueGet does not return an expired value either.
	return false, db.Delete(key, pebble.NoSync)
}
