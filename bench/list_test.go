package bench

import (
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// ListStateBenchmark: SETUP_KEY_COUNT keys whose lists hold one int64
// each, compacted (see buildListFixture). Every benchmark starts from a fresh
// copy of that fixture, which approximates flink's per-iteration reset; a
// benchmark's own appends still grow the lists during its run, as they do
// within one flink iteration. One op is SetCurrentKey plus one call.

func openList(b *testing.B) (*backend.Backend[int64], *backend.List[int64, backend.VoidNamespace, int64]) {
	be := openBackend(b, listFixture, false)
	l, err := backend.GetList(be, listDesc)
	if err != nil {
		b.Fatal(err)
	}
	return be, l
}

// BenchmarkListAppend is listAppend: add one element to an existing key's
// list (a Pebble merge).
func BenchmarkListAppend(b *testing.B) {
	w := getWorkload(b)
	be, l := openList(b)
	stop := start(b)
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		if err := l.Add(w.value(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkListGet is listGet: read an existing key's list.
func BenchmarkListGet(b *testing.B) {
	w := getWorkload(b)
	be, l := openList(b)
	warm(b, l.KeysInNamespace(voidNS()))
	stop := start(b)
	var sum int64
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		es, err := l.Get()
		if err != nil || len(es) == 0 {
			b.Fatalf("get key %d: %d elements, %v", w.setupKey(i), len(es), err)
		}
		sum += es[0]
		i++
	}
	stop()
}

// BenchmarkListUpdate is listUpdate: replace an existing key's list with a
// one-element list. flink allocates a singleton list per op; this reuses
// one slice, so the allocations reported are the backend's alone.
func BenchmarkListUpdate(b *testing.B) {
	w := getWorkload(b)
	be, l := openList(b)
	one := make([]int64, 1)
	stop := start(b)
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		one[0] = w.value(i)
		if err := l.Update(one); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

// BenchmarkListAddAll is listAddAll: append LIST_VALUE_COUNT (100)
// elements to an existing key's list in one call.
func BenchmarkListAddAll(b *testing.B) {
	w := getWorkload(b)
	be, l := openList(b)
	stop := start(b)
	i := 0
	for b.Loop() {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			b.Fatal(err)
		}
		if err := l.AddAll(w.listValues); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}
