package bench

import (
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// ValueStateBenchmark: SETUP_KEY_COUNT keys, each holding one int64.
// One op is SetCurrentKey plus one call on the state.

func openValue(b *testing.B, enableWAL bool) (*backend.Backend[int64], *backend.Value[int64, backend.VoidNamespace, int64]) {
	be := openBackend(b, valueFixture, enableWAL)
	v, err := backend.GetValue(be, valueDesc)
	if err != nil {
		b.Fatal(err)
	}
	return be, v
}

// BenchmarkValueGet is valueGet: read the value of an existing key.
func BenchmarkValueGet(b *testing.B) {
	w := getWorkload(b)
	be, v := openValue(b, false)
	warm(b, v.KeysInNamespace(voidNS()))
	stop := start(b)
	var sum int64
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		x, ok, err := v.Get()
		if err != nil || !ok {
			b.Fatalf("get key %d: %v, %v", w.setupKey(i), ok, err)
		}
		sum += x
		i++
	}
	stop()
}

// BenchmarkValueUpdate is valueUpdate: overwrite the value of an existing
// key.
func BenchmarkValueUpdate(b *testing.B) { benchValueUpdate(b, false, false) }

// BenchmarkValueAdd is valueAdd: update on a new key.
func BenchmarkValueAdd(b *testing.B) { benchValueUpdate(b, true, false) }

// BenchmarkValueUpdateWAL is BenchmarkValueUpdate with Options.EnableWAL
// (writes still do not sync). Compare it with BenchmarkValueUpdate, and
// BenchmarkRawPebbleSetWAL with BenchmarkRawPebbleSet, for the cost of the
// WAL.
func BenchmarkValueUpdateWAL(b *testing.B) { benchValueUpdate(b, false, true) }

func benchValueUpdate(b *testing.B, newKeys, enableWAL bool) {
	w := getWorkload(b)
	be, v := openValue(b, enableWAL)
	key := w.setupKey
	if newKeys {
		key = w.newKey
	}
	stop := start(b)
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(key(i)); err != nil {
			b.Fatal(err)
		}
		if err := v.Update(w.value(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}
