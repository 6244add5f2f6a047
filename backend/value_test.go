package backend_test

import (
	"fmt"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// TestValue_GetAbsent checks that a value never written reads as the zero
// value and false.
func TestValue_GetAbsent(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	setKey(t, b, "k")
	wantNoValue(t, v)
}

// TestValue_UpdateThenGet checks that Update stores a value that Get reads,
// and that a second Update replaces it.
func TestValue_UpdateThenGet(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	setKey(t, b, "k")
	noErr(t, v.Update(-42))
	wantValue(t, v, -42)
	noErr(t, v.Update(7))
	wantValue(t, v, 7)
}

// TestValue_Clear checks that Clear removes the value, and that clearing an
// absent value is fine.
func TestValue_Clear(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t)
	setKey(t, b, "k")
	noErr(t, v.Clear()) // nothing there yet
	noErr(t, v.Update("x"))
	noErr(t, v.Clear())
	wantNoValue(t, v)
	noErr(t, v.Update("y")) // usable after Clear
	wantValue(t, v, "y")
}

// TestValue_EmptyEncodingIsPresent checks that a value whose encoding is
// zero bytes long is still a value, distinct from no value.
func TestValue_EmptyEncodingIsPresent(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t)
	setKey(t, b, "k")
	noErr(t, v.Update(""))
	got, ok := getValue(t, v)
	if !ok || got != "" {
		t.Fatalf("Get = %q, %v; want \"\", true", got, ok)
	}
}

// TestValue_KeysAreIndependent checks that each key has its own value, with
// keys whose encodings are prefixes of each other.
func TestValue_KeysAreIndependent(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t)
	keys := []string{"", "a", "ab", "abc", "b", "\x00", "\x00\x00", "\xff"}
	for _, k := range keys {
		setKey(t, b, k)
		noErr(t, v.Update("value of "+k))
	}
	for _, k := range keys {
		setKey(t, b, k)
		wantValue(t, v, "value of "+k)
	}
	setKey(t, b, "ab")
	noErr(t, v.Clear())
	for _, k := range keys {
		setKey(t, b, k)
		if k == "ab" {
			wantNoValue(t, v)
		} else {
			wantValue(t, v, "value of "+k)
		}
	}
}

// TestValue_StatesAreIndependent checks that two value states do not see
// each other's values.
func TestValue_StatesAreIndependent(t *testing.T) {
	b := MustOpen(t)
	v1 := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "one", Codec: backend.Int64})).in(t)
	v2 := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "two", Codec: backend.Int64})).in(t)
	setKey(t, b, "k")
	noErr(t, v1.Update(1))
	wantNoValue(t, v2)
	noErr(t, v2.Update(2))
	noErr(t, v1.Clear())
	wantNoValue(t, v1)
	wantValue(t, v2, 2)
}

// TestValue_NamespacesAreIndependent checks that the same key has one value
// per namespace, that SetCurrentNamespace picks it, and that Clear clears
// only the current namespace.
func TestValue_NamespacesAreIndependent(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})).in(t)
	if ns := v.CurrentNamespace(); ns != 0 {
		t.Fatalf("new state's namespace = %d, want 0", ns)
	}
	setKey(t, b, "k")
	namespaces := []int64{-1 << 40, -1, 0, 1, 255, 256, 1 << 40}
	for _, ns := range namespaces {
		noErr(t, v.SetCurrentNamespace(ns))
		noErr(t, v.Update(fmt.Sprint("ns", ns)))
	}
	for _, ns := range namespaces {
		noErr(t, v.SetCurrentNamespace(ns))
		if got := v.CurrentNamespace(); got != ns {
			t.Fatalf("CurrentNamespace = %d, want %d", got, ns)
		}
		wantValue(t, v, fmt.Sprint("ns", ns))
	}
	noErr(t, v.SetCurrentNamespace(1))
	noErr(t, v.Clear())
	wantNoValue(t, v)
	noErr(t, v.SetCurrentNamespace(0))
	wantValue(t, v, "ns0")

	// Another key sees none of it.
	setKey(t, b, "other")
	for _, ns := range namespaces {
		noErr(t, v.SetCurrentNamespace(ns))
		wantNoValue(t, v)
	}
}

// TestValue_VariableKeyAndNamespaceAreUnambiguous checks that (key "a",
// namespace "bc") and (key "ab", namespace "c") are different entries,
// although their bytes concatenate to the same string.
func TestValue_VariableKeyAndNamespaceAreUnambiguous(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValueNS(b, backend.String, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	pairs := []struct{ key, ns string }{{"a", "bc"}, {"ab", "c"}, {"abc", ""}, {"", "abc"}}
	for i, p := range pairs {
		setKey(t, b, p.key)
		noErr(t, v.SetCurrentNamespace(p.ns))
		noErr(t, v.Update(int64(i)))
	}
	for i, p := range pairs {
		setKey(t, b, p.key)
		noErr(t, v.SetCurrentNamespace(p.ns))
		wantValue(t, v, int64(i))
	}
}

// TestValue_NamespaceIsPerState checks that each state keeps its own
// current namespace while sharing the backend's current key.
func TestValue_NamespaceIsPerState(t *testing.T) {
	b := MustOpen(t)
	v1 := must(backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[int64]{Name: "one", Codec: backend.Int64})).in(t)
	v2 := must(backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[int64]{Name: "two", Codec: backend.Int64})).in(t)
	setKey(t, b, "k")
	noErr(t, v1.SetCurrentNamespace(5))
	noErr(t, v1.Update(50))
	noErr(t, v2.Update(0)) // v2 is still in namespace 0
	if got := v2.CurrentNamespace(); got != 0 {
		t.Fatalf("v2 namespace = %d, want 0", got)
	}
	noErr(t, v2.SetCurrentNamespace(5))
	wantNoValue(t, v2)
	wantValue(t, v1, 50)
}

// TestValue_JSONStruct checks a struct value through the JSON codec.
func TestValue_JSONStruct(t *testing.T) {
	type point struct {
		X, Y int
		Tag  string
	}
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[point]{Name: "p", Codec: backend.JSON[point]()})).in(t)
	setKey(t, b, "k")
	want := point{X: 3, Y: -4, Tag: "here"}
	noErr(t, v.Update(want))
	wantValue(t, v, want)
}

// TestValue_NoCurrentKey checks that state access before SetCurrentKey
// fails with ErrNoCurrentKey.
func TestValue_NoCurrentKey(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	if k, ok := b.CurrentKey(); ok {
		t.Fatalf("CurrentKey = %q, true before SetCurrentKey", k)
	}
	_, _, err := v.Get()
	wantErr(t, err, backend.ErrNoCurrentKey)
	wantErr(t, v.Update(1), backend.ErrNoCurrentKey)
	wantErr(t, v.Clear(), backend.ErrNoCurrentKey)
}

// TestValue_CurrentKeyIsShared checks that SetCurrentKey switches every
// state of the backend at once.
func TestValue_CurrentKeyIsShared(t *testing.T) {
	b := MustOpen(t)
	v1 := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "one", Codec: backend.Int64})).in(t)
	v2 := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "two", Codec: backend.Int64})).in(t)
	for i, k := range []string{"a", "b", "c"} {
		setKey(t, b, k)
		if got, ok := b.CurrentKey(); !ok || got != k {
			t.Fatalf("CurrentKey = %q, %v; want %q, true", got, ok, k)
		}
		noErr(t, v1.Update(int64(i)))
		noErr(t, v2.Update(int64(10*i)))
	}
	for i, k := range []string{"a", "b", "c"} {
		setKey(t, b, k)
		wantValue(t, v1, int64(i))
		wantValue(t, v2, int64(10*i))
	}
}

// TestValue_IntKeys checks a backend with int64 keys, whose key component
// is fixed-size.
func TestValue_IntKeys(t *testing.T) {
	b := MustOpenK(t, backend.Int64)
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	for k := int64(-50); k < 50; k++ {
		setKey(t, b, k)
		noErr(t, v.Update(k*k))
	}
	for k := int64(-50); k < 50; k++ {
		setKey(t, b, k)
		wantValue(t, v, k*k)
	}
}
