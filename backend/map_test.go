package backend_test

import (
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestMap_GetAbsent checks Get, Contains and IsEmpty on a map never written.
func TestMap_GetAbsent(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	setKey(t, b, "k")
	v, ok, err := m.Get(1)
	noErr(t, err)
	if ok || v != "" {
		t.Fatalf("Get = %q, %v; want \"\", false", v, ok)
	}
	if ok, err := m.Contains(1); err != nil || ok {
		t.Fatalf("Contains = %v, %v; want false, nil", ok, err)
	}
	wantMap(t, m, nil)
}

// TestMap_PutGetRemove checks Put, overwriting Put, Get, Contains, Remove
// (also of an absent key) and IsEmpty.
func TestMap_PutGetRemove(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	setKey(t, b, "k")
	noErr(t, m.Put(1, "one"))
	noErr(t, m.Put(2, "two"))
	noErr(t, m.Put(1, "uno"))
	noErr(t, m.Put(3, "")) // an empty value is a value
	wantMap(t, m, map[int64]string{1: "uno", 2: "two", 3: ""})
	noErr(t, m.Remove(2))
	noErr(t, m.Remove(42))
	wantMap(t, m, map[int64]string{1: "uno", 3: ""})
	if ok, err := m.Contains(2); err != nil || ok {
		t.Fatalf("Contains(removed) = %v, %v", ok, err)
	}
	noErr(t, m.Remove(1))
	noErr(t, m.Remove(3))
	wantMap(t, m, nil)
}

// TestMap_PutAll checks that PutAll writes every entry of a Go map and
// overwrites existing entries, and that an empty PutAll does nothing.
func TestMap_PutAll(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	setKey(t, b, "k")
	noErr(t, m.Put(1, "old"))
	noErr(t, m.Put(5, "five"))
	in := map[int64]string{1: "one", 2: "two", -3: "minus three"}
	noErr(t, m.PutAll(maps.All(in)))
	noErr(t, m.PutAll(maps.All(map[int64]string{})))
	wantMap(t, m, map[int64]string{1: "one", 2: "two", -3: "minus three", 5: "five"})
}

// TestMap_PutAllEncodeErrorWritesNothing checks that PutAll is atomic: an
// entry the codec cannot encode fails the call and no entry is written.
func TestMap_PutAllEncodeErrorWritesNothing(t *testing.T) {
	b := MustOpen(t)
	m := must(backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "m", KeyCodec: backend.Int64, ValueCodec: pickyCodec{}})).in(t)
	setKey(t, b, "k")
	entries := func(yield func(int64, int64) bool) {
		_ = yield(1, 1) && yield(2, 13) && yield(3, 3)
	}
	wantErr(t, m.PutAll(entries), errAppend)
	if empty, err := m.IsEmpty(); err != nil || !empty {
		t.Fatalf("IsEmpty = %v, %v after failed PutAll", empty, err)
	}
}

// TestMap_IterationOrderIsNumeric checks that Keys, Values and Entries run
// in ascending numeric order of int64 map keys, negatives and extremes
// included, whatever the order of the Puts.
func TestMap_IterationOrderIsNumeric(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	setKey(t, b, "k")
	want := map[int64]string{}
	for _, k := range []int64{5, -1, math.MaxInt64, 0, -256, 255, 256, math.MinInt64, 1, -2, 1 << 40, -(1 << 40)} {
		want[k] = "v"
		noErr(t, m.Put(k, "v"))
	}
	wantMap(t, m, want)
	got := collect(t, m.Keys())
	if !slices.IsSorted(got) || got[0] != math.MinInt64 || got[len(got)-1] != math.MaxInt64 {
		t.Fatalf("Keys = %v, want ascending from MinInt64 to MaxInt64", got)
	}
}

// TestMap_StringKeysSortBytewise checks map keys whose encodings are
// prefixes of each other, the empty key included.
func TestMap_StringKeysSortBytewise(t *testing.T) {
	b := MustOpen(t)
	m := must(backend.GetMap(b, backend.MapDescriptor[string, int64]{Name: "m", KeyCodec: backend.String, ValueCodec: backend.Int64})).in(t)
	setKey(t, b, "k")
	in := []string{"b", "ab", "", "a", "a\x00", "abc"}
	for i, k := range in {
		noErr(t, m.Put(k, int64(i)))
	}
	for i, k := range in {
		v, ok, err := m.Get(k)
		noErr(t, err)
		if !ok || v != int64(i) {
			t.Fatalf("Get(%q) = %d, %v; want %d", k, v, ok, i)
		}
	}
	if got, want := collect(t, m.Keys()), sorted(in); !slices.Equal(got, want) {
		t.Fatalf("Keys = %q, want %q", got, want)
	}
	noErr(t, m.Remove("a"))
	if ok, _ := m.Contains("ab"); !ok {
		t.Fatal("Remove(\"a\") removed \"ab\"")
	}
}

// TestMap_ClearRemovesAllEntries checks that Clear removes every entry of
// the current key and namespace and nothing else, even for a key whose
// encoding extends the cleared one.
func TestMap_ClearRemovesAllEntries(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	other := intMap(t, b, "other")
	fill := func(n int64) map[int64]string {
		want := map[int64]string{}
		for i := range n {
			want[i-n/2] = "x"
			noErr(t, m.Put(i-n/2, "x"))
		}
		return want
	}
	setKey(t, b, "a")
	noErr(t, m.SetCurrentNamespace(1))
	fill(200)
	noErr(t, other.Put(1, "other state"))
	noErr(t, m.SetCurrentNamespace(2))
	wantNS2 := fill(3)
	setKey(t, b, "ab")
	noErr(t, m.SetCurrentNamespace(1))
	wantAB := fill(5)

	setKey(t, b, "a")
	noErr(t, m.SetCurrentNamespace(1))
	noErr(t, m.Clear())
	wantMap(t, m, nil)
	noErr(t, m.Clear()) // clearing an empty map

	noErr(t, m.SetCurrentNamespace(2))
	wantMap(t, m, wantNS2)
	setKey(t, b, "ab")
	noErr(t, m.SetCurrentNamespace(1))
	wantMap(t, m, wantAB)
	setKey(t, b, "a")
	if v, ok, err := other.Get(1); err != nil || !ok || v != "other state" {
		t.Fatalf("other state: %q, %v, %v", v, ok, err)
	}
}

// TestMap_BreakOutOfIteration checks that leaving Keys, Values or Entries
// early is clean (the test's Close would report a leaked iterator) and
// that the map stays usable.
func TestMap_BreakOutOfIteration(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	setKey(t, b, "k")
	for i := range int64(10) {
		noErr(t, m.Put(i, "v"))
	}
	n := 0
	for _, err := range m.Entries() {
		noErr(t, err)
		if n++; n == 3 {
			break
		}
	}
	for k, err := range m.Keys() {
		noErr(t, err)
		if k == 4 {
			break
		}
	}
	for _, err := range m.Values() {
		noErr(t, err)
		break
	}
	if n != 3 {
		t.Fatalf("loop ran %d times", n)
	}
	noErr(t, m.Put(10, "v"))
	if got := len(collect(t, m.Keys())); got != 11 {
		t.Fatalf("%d keys, want 11", got)
	}
}

// TestMap_WriteDuringIteration checks that the loop body may write the map
// it iterates, and that iteration sees the map as it was when it started.
func TestMap_WriteDuringIteration(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	setKey(t, b, "k")
	for i := range int64(5) {
		noErr(t, m.Put(i*10, "old"))
	}
	var seen []int64
	for e, err := range m.Entries() {
		noErr(t, err)
		seen = append(seen, e.Key)
		if e.Value != "old" {
			t.Fatalf("entry %d = %q, want the value from before the loop", e.Key, e.Value)
		}
		noErr(t, m.Put(e.Key+10, "new"))  // overwrites the next entry
		noErr(t, m.Put(e.Key+5, "added")) // a new entry between
		noErr(t, m.Remove(e.Key))
	}
	if want := []int64{0, 10, 20, 30, 40}; !slices.Equal(seen, want) {
		t.Fatalf("iteration saw %v, want %v", seen, want)
	}
	wantMap(t, m, map[int64]string{5: "added", 15: "added", 25: "added", 35: "added", 45: "added", 50: "new"})
}

// TestMap_WriteDuringIterationWithTTL is TestMap_WriteDuringIteration
// with TTL: the loop body writes map keys the iteration has not reached
// yet. The iteration reads from a point-in-time view; when it reaches such
// a key, the removal of the expired value it saw (under either update
// type) or the restamp of the live one (under OnReadAndWrite) must not
// replace what the loop body wrote. It once did, losing the writes.
func TestMap_WriteDuringIterationWithTTL(t *testing.T) {
	for _, upd := range []ttl.UpdateType{ttl.OnCreateAndWrite, ttl.OnReadAndWrite} {
		e := newEnv(t)
		m := must(backend.GetMap(e.b, backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String,
			TTL: ttl.Config{TTL: ttlD, Update: upd, Cleanup: ttl.Cleanup{DisableBackground: true}}})).in(t)
		e.setKey("k")
		noErr(t, m.Put(3, "old")) // expires before the loop
		e.advance(ttlD / 2)
		noErr(t, m.Put(2, "live"))
		noErr(t, m.Put(4, "old"))
		e.advance(ttlD / 2)
		for en, err := range m.Entries() {
			noErr(t, err)
			if en.Key == 2 {
				noErr(t, m.Put(3, "new"))
				noErr(t, m.Put(4, "new"))
			}
		}
		for _, k := range []int64{3, 4} {
			if got, ok, err := m.Get(k); err != nil || !ok || got != "new" {
				t.Errorf("update type %v: map key %d = %q, %v, %v after the loop put it; want new", upd, k, got, ok, err)
			}
		}
	}
}

// TestMap_NamespacesAreIndependent checks one map per namespace.
func TestMap_NamespacesAreIndependent(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	setKey(t, b, "k")
	noErr(t, m.SetCurrentNamespace(1))
	noErr(t, m.Put(1, "ns1"))
	noErr(t, m.SetCurrentNamespace(2))
	wantMap(t, m, nil)
	noErr(t, m.Put(1, "ns2"))
	noErr(t, m.Put(2, "ns2"))
	noErr(t, m.SetCurrentNamespace(1))
	wantMap(t, m, map[int64]string{1: "ns1"})
	noErr(t, m.SetCurrentNamespace(2))
	wantMap(t, m, map[int64]string{1: "ns2", 2: "ns2"})
}

// TestMap_VoidNamespace checks GetMap with the void namespace and a JSON
// map value.
func TestMap_VoidNamespace(t *testing.T) {
	type item struct{ Qty int }
	b := MustOpen(t)
	m := must(backend.GetMap(b, backend.MapDescriptor[string, item]{Name: "m", KeyCodec: backend.String, ValueCodec: backend.JSON[item]()})).in(t)
	setKey(t, b, "k")
	noErr(t, m.PutAll(maps.All(map[string]item{"apple": {3}, "pear": {5}})))
	got := collect(t, m.Entries())
	want := []backend.Entry[string, item]{{"apple", item{3}}, {"pear", item{5}}}
	if !slices.Equal(got, want) {
		t.Fatalf("Entries = %v, want %v", got, want)
	}
}

// TestMap_NoCurrentKey checks every map operation before SetCurrentKey.
func TestMap_NoCurrentKey(t *testing.T) {
	b := MustOpen(t)
	m := intMap(t, b, "m")
	_, _, err := m.Get(1)
	wantErr(t, err, backend.ErrNoCurrentKey)
	_, err = m.Contains(1)
	wantErr(t, err, backend.ErrNoCurrentKey)
	wantErr(t, m.Put(1, "x"), backend.ErrNoCurrentKey)
	wantErr(t, m.PutAll(maps.All(map[int64]string{1: "x"})), backend.ErrNoCurrentKey)
	wantErr(t, m.PutAll(maps.All(map[int64]string{})), backend.ErrNoCurrentKey)
	wantErr(t, m.Remove(1), backend.ErrNoCurrentKey)
	_, err = m.IsEmpty()
	wantErr(t, err, backend.ErrNoCurrentKey)
	wantErr(t, m.Clear(), backend.ErrNoCurrentKey)
	for name, seq := range map[string]func() (int, error){
		"Entries": func() (int, error) { return lastErr(t, m.Entries()) },
		"Keys":    func() (int, error) { return lastErr(t, m.Keys()) },
		"Values":  func() (int, error) { return lastErr(t, m.Values()) },
	} {
		n, err := seq()
		if n != 0 {
			t.Fatalf("%s yielded %d entries", name, n)
		}
		wantErr(t, err, backend.ErrNoCurrentKey)
	}
}

// TestMap_DecodeErrors checks that undecodable map keys and values end the
// iterations with ErrCorrupt, and that Get reports them too.
func TestMap_DecodeErrors(t *testing.T) {
	b := MustOpen(t)
	m := must(backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "m", KeyCodec: pickyCodec{}, ValueCodec: pickyCodec{}})).in(t)
	setKey(t, b, "k")
	noErr(t, m.Put(1, 666)) // value cannot be decoded
	noErr(t, m.Put(666, 2)) // key cannot be decoded ("666" sorts after "1")
	_, _, err := m.Get(1)
	wantErr(t, err, backend.ErrCorrupt)
	wantErr(t, err, errDecode)
	if got, err := m.Contains(1); err != nil || !got {
		t.Fatalf("Contains(1) = %v, %v; want true: it need not decode", got, err)
	}

	n, err := lastErr(t, m.Entries())
	if n != 0 {
		t.Fatalf("Entries yielded %d good entries, want 0", n)
	}
	wantErr(t, err, backend.ErrCorrupt)
	n, err = lastErr(t, m.Keys()) // key 1 decodes, then key 666 fails
	if n != 1 {
		t.Fatalf("Keys yielded %d good keys, want 1", n)
	}
	wantErr(t, err, errDecode)
	wantErr(t, err, backend.ErrCorrupt)
	n, err = lastErr(t, m.Values()) // value 666 of key 1 fails
	if n != 0 {
		t.Fatalf("Values yielded %d good values, want 0", n)
	}
	wantErr(t, err, backend.ErrCorrupt)
}

// TestMap_EncodeErrors checks that map keys and values the codecs cannot
// encode fail the call with the codec's error.
func TestMap_EncodeErrors(t *testing.T) {
	b := MustOpen(t)
	m := must(backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "m", KeyCodec: pickyCodec{}, ValueCodec: pickyCodec{}})).in(t)
	setKey(t, b, "k")
	wantErr(t, m.Put(13, 1), errAppend)
	wantErr(t, m.Put(1, 13), errAppend)
	_, _, err := m.Get(13)
	wantErr(t, err, errAppend)
	_, err = m.Contains(13)
	wantErr(t, err, errAppend)
	wantErr(t, m.Remove(13), errAppend)
	if empty, err := m.IsEmpty(); err != nil || !empty {
		t.Fatalf("IsEmpty = %v, %v", empty, err)
	}
}
