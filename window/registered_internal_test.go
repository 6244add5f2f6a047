package window

import (
	"math/rand/v2"
	"testing"
)

// TestRegisteredAgainstMap drives registered with random adds, forgets
// and watermarks, many more forgets than the heap's slack so that it
// compacts, and checks it against a plain map of the timers above the
// watermark.
func TestRegisteredAgainstMap(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	r := newRegistered[string]()
	r.limit = 5000
	want := map[regEntry]bool{}
	wm := int64(-1)
	keys := []string{"a", "b", "c", "d"}
	for step := range 200_000 {
		k := keys[rng.IntN(len(keys))]
		start := wm + 1 + rng.Int64N(50)
		w := Window{Start: start, End: start + 1 + rng.Int64N(5)}
		ts := w.MaxTimestamp() + rng.Int64N(2)*3
		r.setKey(k)
		e, ok := r.entry(w)
		if !ok {
			t.Fatal("string keys are not remembered")
		}
		key := regEntry{key: k, w: w, ts: ts}
		switch p := rng.IntN(100); {
		case p < 60:
			isNew := r.add(e, ts)
			if isNew == want[key] {
				t.Fatalf("seed %d, step %d: add %v reported new %t, want %t", seed, step, key, isNew, !want[key])
			}
			if !isNew || len(want) >= r.limit {
				break
			}
			want[key] = true
			// Forgotten entries linger in the heap until the watermark
			// passes them, but an add that stores compacts it beyond this.
			if len(r.heap) > 2*len(r.m)+1024 {
				t.Fatalf("seed %d, step %d: the heap holds %d for %d entries", seed, step, len(r.heap), len(r.m))
			}
		case p < 99:
			r.forget(e, ts)
			delete(want, key)
		case rng.IntN(20) == 0: // rarely, so that forgotten entries pile up
			wm += rng.Int64N(10)
			r.expire(wm)
			for e := range want {
				if e.ts <= wm {
					delete(want, e)
				}
			}
		}
		if len(r.m) != len(want) {
			t.Fatalf("seed %d, step %d: %d remembered, want %d", seed, step, len(r.m), len(want))
		}
	}
}
