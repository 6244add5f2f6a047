package backend_test

import (
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// TestReducing_GetAbsent checks that nothing added reads as zero, false.
func TestReducing_GetAbsent(t *testing.T) {
	b := MustOpen(t)
	r := sumState(t, b, "r")
	setKey(t, b, "k")
	wantReduced(t, r, 0, false)
}

// TestReducing_AddFolds checks that the first Add stores its value and
// later Adds fold into it.
func TestReducing_AddFolds(t *testing.T) {
	b := MustOpen(t)
	r := sumState(t, b, "r")
	setKey(t, b, "k")
	noErr(t, r.Add(5))
	wantReduced(t, r, 5, true)
	for i := range int64(10) {
		noErr(t, r.Add(i))
	}
	wantReduced(t, r, 50, true)
	setKey(t, b, "other")
	wantReduced(t, r, 0, false)
}

// TestReducing_ReduceArgumentOrder checks that the stored value is the
// first argument of Reduce and the new value the second.
func TestReducing_ReduceArgumentOrder(t *testing.T) {
	b := MustOpen(t)
	r := must(backend.GetReducing(b, backend.ReducingDescriptor[string]{
		Name: "r", Codec: backend.String, Reduce: func(a, b string) string { return a + b }})).in(t)
	setKey(t, b, "k")
	for _, s := range []string{"a", "b", "c"} {
		noErr(t, r.Add(s))
	}
	wantReduced(t, r, "abc", true)
}

// TestReducing_Clear checks that Clear removes the value and the next Add
// starts afresh.
func TestReducing_Clear(t *testing.T) {
	b := MustOpen(t)
	r := sumState(t, b, "r")
	setKey(t, b, "k")
	noErr(t, r.Add(3))
	noErr(t, r.Clear())
	wantReduced(t, r, 0, false)
	noErr(t, r.Add(4))
	wantReduced(t, r, 4, true)
}

// TestReducing_Namespaces checks one reduced value per namespace.
func TestReducing_Namespaces(t *testing.T) {
	b := MustOpen(t)
	r := sumState(t, b, "r")
	setKey(t, b, "k")
	for ns := int64(1); ns <= 3; ns++ {
		noErr(t, r.SetCurrentNamespace(ns))
		noErr(t, r.Add(ns))
		noErr(t, r.Add(ns))
	}
	for ns := int64(1); ns <= 3; ns++ {
		noErr(t, r.SetCurrentNamespace(ns))
		wantReduced(t, r, 2*ns, true)
	}
}

// TestReducing_MergeNamespaces checks that the sources are reduced into
// the target and cleared, that the target among the sources and absent
// sources are skipped, and that the current namespace does not change.
func TestReducing_MergeNamespaces(t *testing.T) {
	b := MustOpen(t)
	r := sumState(t, b, "r")
	setKey(t, b, "k")
	for ns, v := range map[int64]int64{1: 1, 2: 20, 3: 300, 4: 4000} {
		noErr(t, r.SetCurrentNamespace(ns))
		noErr(t, r.Add(v))
	}
	noErr(t, r.SetCurrentNamespace(4))

	noErr(t, r.MergeNamespaces(1, 2, 1, 77, 3))
	if ns := r.CurrentNamespace(); ns != 4 {
		t.Fatalf("CurrentNamespace = %d, want 4", ns)
	}
	wantReduced(t, r, 4000, true)
	for ns, want := range map[int64]int64{1: 321, 2: 0, 3: 0, 77: 0} {
		noErr(t, r.SetCurrentNamespace(ns))
		wantReduced(t, r, want, want != 0)
	}

	// Into an absent target.
	noErr(t, r.MergeNamespaces(9, 4, 1))
	noErr(t, r.SetCurrentNamespace(9))
	wantReduced(t, r, 4321, true)
	// Nothing to merge.
	noErr(t, r.MergeNamespaces(9))
	noErr(t, r.MergeNamespaces(9, 9, 100))
	wantReduced(t, r, 4321, true)
}

// TestReducing_MergeNamespacesDuplicateSource checks that a source named
// twice is counted once.
func TestReducing_MergeNamespacesDuplicateSource(t *testing.T) {
	b := MustOpen(t)
	r := sumState(t, b, "r")
	setKey(t, b, "k")
	noErr(t, r.SetCurrentNamespace(2))
	noErr(t, r.Add(5))
	noErr(t, r.MergeNamespaces(1, 2, 2))
	noErr(t, r.SetCurrentNamespace(1))
	wantReduced(t, r, 5, true)
}

// TestReducing_DecodeError checks that an undecodable stored value fails
// Get and Add with ErrCorrupt and that Add then writes nothing.
func TestReducing_DecodeError(t *testing.T) {
	b := MustOpen(t)
	r := must(backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: "r", Codec: pickyCodec{}, Reduce: sum})).in(t)
	setKey(t, b, "k")
	noErr(t, r.Add(666))
	_, _, err := r.Get()
	wantErr(t, err, backend.ErrCorrupt)
	wantErr(t, r.Add(1), backend.ErrCorrupt)
	_, _, err = r.Get()
	wantErr(t, err, errDecode)
	noErr(t, r.Clear())
	wantErr(t, r.Add(13), errAppend)
	wantReduced(t, r, 0, false)
}

// TestReducing_NoCurrentKey checks every operation before SetCurrentKey.
func TestReducing_NoCurrentKey(t *testing.T) {
	b := MustOpen(t)
	r := sumState(t, b, "r")
	_, _, err := r.Get()
	wantErr(t, err, backend.ErrNoCurrentKey)
	wantErr(t, r.Add(1), backend.ErrNoCurrentKey)
	wantErr(t, r.Clear(), backend.ErrNoCurrentKey)
	wantErr(t, r.MergeNamespaces(1, 2), backend.ErrNoCurrentKey)
}
