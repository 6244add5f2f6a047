package backend

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/ttl"
)

// TestDeferredTableModel runs seeded random puts, raises, gets and removes on a
// deferredTable and on a Go map, and compares them after every step. Keys
// come from a small space so that they collide, probe runs form and
// removals shift them back; the table grows from its smallest size and its
// arena is compacted along the way.
func TestDeferredTableModel(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 3))
		tab := newDeferredTable()
		model := map[string]deferredEntry{}
		space := 50 + rng.IntN(5000)
		for step := range 40_000 {
			// Long keys fill the arena fast, so compaction runs too.
			key := func() []byte { n := rng.IntN(space); return []byte(fmt.Sprintf("key-%d-%0*d", n, n*7%600, 0)) }
			k := key()
			// Look k up first, then change the table elsewhere: the op on
			// k must not trust the lookup's memo once slots moved.
			tab.get(k)
			if rng.IntN(2) == 0 {
				k2 := key()
				if string(k2) != string(k) {
					_, had := model[string(k2)]
					if got := tab.remove(k2); got != had {
						t.Fatalf("seed %d step %d: remove(%s) = %v; want %v", seed, step, k2, got, had)
					}
					delete(model, string(k2))
				}
			}
			switch r := rng.IntN(11); {
			case r < 5:
				e := deferredEntry{at: rng.Int64N(1000)}
				if rng.IntN(4) == 0 {
					e = deferredEntry{at: ttl.NoFloor, removed: true}
				}
				_, had := model[string(k)]
				if isNew := tab.put(k, e); isNew == had {
					t.Fatalf("seed %d step %d: put(%s) reported new=%v; the model had it: %v", seed, step, k, isNew, had)
				}
				model[string(k)] = e
			case r < 8:
				_, had := model[string(k)]
				if got := tab.remove(k); got != had {
					t.Fatalf("seed %d step %d: remove(%s) = %v; want %v", seed, step, k, got, had)
				}
				delete(model, string(k))
			case r < 9:
				now, add := rng.Int64N(1000), rng.IntN(2) == 0
				e, had := model[string(k)]
				covered, isNew := tab.raise(k, now, add)
				if covered != (had || add) || isNew != (!had && add) {
					t.Fatalf("seed %d step %d: raise(%s, add %v) = %v, %v; the model had it: %v", seed, step, k, add, covered, isNew, had)
				}
				switch {
				case had && !e.removed && e.at < now:
					model[string(k)] = deferredEntry{at: now}
				case !had && add:
					model[string(k)] = deferredEntry{at: now}
				}
			default:
				want, had := model[string(k)]
				if got, ok := tab.get(k); ok != had || got != want {
					t.Fatalf("seed %d step %d: get(%s) = %v, %v; want %v, %v", seed, step, k, got, ok, want, had)
				}
				if got, ok := tab.lookup(k); ok != had || got != want {
					t.Fatalf("seed %d step %d: lookup(%s) = %v, %v; want %v, %v", seed, step, k, got, ok, want, had)
				}
			}
			if tab.n != len(model) {
				t.Fatalf("seed %d step %d: table holds %d keys; want %d", seed, step, tab.n, len(model))
			}
		}
		// Every key the model has is reachable, and keys lists each once.
		for k, want := range model {
			if got, ok := tab.get([]byte(k)); !ok || got != want {
				t.Fatalf("seed %d: get(%s) = %v, %v at the end; want %v", seed, k, got, ok, want)
			}
		}
		var got []string
		sorted, _ := tab.sorted(nil, nil)
		for _, k := range sorted {
			got = append(got, string(k.key))
			if want := model[string(k.key)]; k.e != want {
				t.Fatalf("seed %d: sorted gives %s with %v; the model has %v", seed, k.key, k.e, want)
			}
		}
		if !slices.IsSorted(got) {
			t.Fatalf("seed %d: sorted lists keys out of order", seed)
		}
		want := make([]string, 0, len(model))
		for k := range model {
			want = append(want, k)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: keys lists %d keys; want the model's %d", seed, len(got), len(want))
		}
		if tab.garbage > len(tab.arena) {
			t.Fatalf("seed %d: %d bytes of garbage in an arena of %d", seed, tab.garbage, len(tab.arena))
		}
	}
}

// TestDeferredTableAllocs checks that updating a key the table holds, and
// adding one once the table has grown, allocate nothing: the read path
// calls them for every read under OnReadAndWrite.
func TestDeferredTableAllocs(t *testing.T) {
	tab := newDeferredTable()
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("k%06d", i))
		tab.put(keys[i], deferredEntry{at: 1})
	}
	for _, k := range keys {
		tab.remove(k)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		tab.put(keys[i%len(keys)], deferredEntry{at: int64(i)})
		tab.get(keys[(i*7)%len(keys)])
		i++
	}); n != 0 {
		t.Errorf("put and get allocate %v times; want 0", n)
	}
}

// TestDeferredTableCompacts checks that removing most keys compacts the
// arena and leaves the rest reachable.
func TestDeferredTableCompacts(t *testing.T) {
	tab := newDeferredTable()
	key := func(i int) []byte { return []byte(fmt.Sprintf("%01000d", i)) }
	for i := range 3000 {
		tab.put(key(i), deferredEntry{at: int64(i)})
	}
	grown := len(tab.arena)
	for i := range 3000 {
		if i%30 != 0 {
			tab.remove(key(i))
		}
	}
	if len(tab.arena) >= grown/2 {
		t.Fatalf("arena holds %d bytes after removing 29 keys in 30 of %d bytes; want it compacted", len(tab.arena), grown)
	}
	for i := 0; i < 3000; i += 30 {
		if e, ok := tab.get(key(i)); !ok || e.at != int64(i) {
			t.Fatalf("get(%d) = %v, %v after compaction; want at %d", i, e, ok, i)
		}
	}
}

// TestDeferredTableSorted checks the order of sorted where the 16-byte
// prefixes it compares first cannot decide: keys longer than 16 bytes
// that share them, and keys that differ from each other only by trailing
// zero bytes, which the zero-padded prefixes make equal.
func TestDeferredTableSorted(t *testing.T) {
	keys := []string{
		"", "\x00", "\x00\x00", "a", "a\x00", "a\x00\x00b", "ab",
		"0123456789abcdef", "0123456789abcdef\x00", "0123456789abcdef0", "0123456789abcdef01",
		"0123456789abcdeg", "0123456789abcdef\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		tab := newDeferredTable()
		for _, i := range rng.Perm(len(keys)) {
			tab.put([]byte(keys[i]), deferredEntry{at: int64(i)})
		}
		sorted, _ := tab.sorted(nil, nil)
		var got []string
		for _, k := range sorted {
			got = append(got, string(k.key))
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("sorted = %q; want %q", got, want)
		}
	}
}

// TestDeferredTableEpochs checks flip, clone and dropOld against a model:
// dropOld must forget exactly the keys whose last change was in the other
// epoch, keep the rest with their entries, and a clone must keep the
// entries it was taken with whatever the table does afterwards. (With one
// bit, a key unchanged over two flips counts as changed in the current
// epoch: the backend drops after every flip, before the next.)
func TestDeferredTableEpochs(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 9))
		tab := newDeferredTable()
		model := map[string]deferredEntry{}
		epoch := map[string]bool{} // of each key's last change
		cur := false
		var cl *deferredTable
		var clModel map[string]deferredEntry
		for step := range 20_000 {
			k := fmt.Sprintf("k%d", rng.IntN(700))
			switch r := rng.IntN(100); {
			case r < 40:
				now := rng.Int64N(1000)
				e, had := model[k]
				tab.raise([]byte(k), now, true)
				if !had || !e.removed && e.at < now {
					model[k], epoch[k] = deferredEntry{at: now}, cur
				}
			case r < 55:
				e := deferredEntry{at: rng.Int64N(1000)}
				if rng.IntN(3) == 0 {
					e = deferredEntry{at: ttl.NoFloor, removed: true}
				}
				tab.put([]byte(k), e)
				model[k], epoch[k] = e, cur
			case r < 70:
				tab.remove([]byte(k))
				delete(model, k)
				delete(epoch, k)
			case r < 72:
				tab.flip()
				cur = !cur
			case r < 74:
				kept := tab.dropOld()
				for mk := range model {
					if epoch[mk] != cur {
						delete(model, mk)
						delete(epoch, mk)
					}
				}
				if len(kept) != len(model) {
					t.Fatalf("seed %d step %d: dropOld kept %d keys; want %d", seed, step, len(kept), len(model))
				}
			case r < 75:
				cl, clModel = tab.clone(), maps.Clone(model)
			default:
				want, had := model[k]
				if got, ok := tab.get([]byte(k)); ok != had || got != want {
					t.Fatalf("seed %d step %d: get(%s) = %v, %v; want %v, %v", seed, step, k, got, ok, want, had)
				}
			}
			if tab.n != len(model) {
				t.Fatalf("seed %d step %d: %d keys; want %d", seed, step, tab.n, len(model))
			}
		}
		for k, want := range model {
			if got, ok := tab.lookup([]byte(k)); !ok || got != want {
				t.Fatalf("seed %d: lookup(%s) = %v, %v at the end; want %v", seed, k, got, ok, want)
			}
		}
		if cl == nil {
			continue
		}
		sorted, _ := cl.sorted(nil, nil)
		if len(sorted) != len(clModel) {
			t.Fatalf("seed %d: the clone holds %d keys; want the %d it was taken with", seed, len(sorted), len(clModel))
		}
		for _, k := range sorted {
			if want, ok := clModel[string(k.key)]; !ok || k.e != want {
				t.Fatalf("seed %d: the clone has %s = %v; want %v, %v", seed, k.key, k.e, want, ok)
			}
		}
	}
}
