package backend_test

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/listfmt"
)

// seq returns [from, to).
func seq(from, to int64) []int64 {
	var s []int64
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestList_GetEmpty checks that a list never written is empty (nil).
func TestList_GetEmpty(t *testing.T) {
	b := MustOpen(t)
	l := intList(t, b, "l")
	setKey(t, b, "k")
	got, err := l.Get()
	noErr(t, err)
	if got != nil {
		t.Fatalf("Get = %v, want nil", got)
	}
}

// TestList_AddThenGet checks that Add appends in order.
func TestList_AddThenGet(t *testing.T) {
	b := MustOpen(t)
	l := intList(t, b, "l")
	setKey(t, b, "k")
	for _, e := range []int64{3, 1, 2, 1} {
		noErr(t, l.Add(e))
	}
	wantList(t, l, []int64{3, 1, 2, 1})
}

// TestList_AddAll checks that AddAll appends all elements in order, and
// that adding none changes nothing.
func TestList_AddAll(t *testing.T) {
	b := MustOpen(t)
	l := intList(t, b, "l")
	setKey(t, b, "k")
	noErr(t, l.AddAll(nil))
	noErr(t, l.AddAll([]int64{}))
	wantList(t, l, nil)
	noErr(t, l.Add(0))
	noErr(t, l.AddAll([]int64{1, 2, 3}))
	noErr(t, l.AddAll(nil))
	noErr(t, l.Add(4))
	noErr(t, l.AddAll([]int64{5}))
	wantList(t, l, seq(0, 6))
}

// TestList_Update checks that Update replaces the list, that Adds after it
// append to the new list, and that an empty Update clears it.
func TestList_Update(t *testing.T) {
	b := MustOpen(t)
	l := intList(t, b, "l")
	setKey(t, b, "k")
	noErr(t, l.AddAll([]int64{1, 2, 3}))
	noErr(t, l.Update([]int64{9, 8}))
	wantList(t, l, []int64{9, 8})
	noErr(t, l.Add(7))
	wantList(t, l, []int64{9, 8, 7})
	noErr(t, l.Update(nil))
	wantList(t, l, nil)
	noErr(t, l.Add(1))
	wantList(t, l, []int64{1})
	noErr(t, l.Update([]int64{}))
	wantList(t, l, nil)
	noErr(t, l.Update([]int64{5})) // Update of an absent list
	wantList(t, l, []int64{5})
}

// TestList_Clear checks that Clear empties the list and that Adds after it
// start a new list.
func TestList_Clear(t *testing.T) {
	b := MustOpen(t)
	l := intList(t, b, "l")
	setKey(t, b, "k")
	noErr(t, l.Clear())
	noErr(t, l.AddAll([]int64{1, 2}))
	noErr(t, l.Clear())
	wantList(t, l, nil)
	noErr(t, l.Add(3))
	wantList(t, l, []int64{3})
}

// TestList_EmptyElements checks that elements with a zero-length encoding
// are kept and counted.
func TestList_EmptyElements(t *testing.T) {
	b := MustOpen(t)
	l := must(backend.GetList(b, backend.ListDescriptor[string]{Name: "l", Codec: backend.String})).in(t)
	setKey(t, b, "k")
	noErr(t, l.Add(""))
	noErr(t, l.AddAll([]string{"x", ""}))
	noErr(t, l.Add(""))
	wantList(t, l, []string{"", "x", "", ""})
}

// TestList_ManyOperands checks 1000 Adds, each a merge operand, read back
// in order.
func TestList_ManyOperands(t *testing.T) {
	b := MustOpen(t)
	l := intList(t, b, "l")
	setKey(t, b, "k")
	for i := range int64(1000) {
		noErr(t, l.Add(i))
	}
	wantList(t, l, seq(0, 1000))
}

// TestList_OrderAcrossFlushes checks that the order of elements survives
// operands spread over many flushed files and Pebble's own compactions of
// them (a low L0 threshold makes compactions start early).
func TestList_OrderAcrossFlushes(t *testing.T) {
	b := MustOpen(t, func(o *backend.Options) {
		o.Pebble = func(o *pebble.Options) { o.L0CompactionThreshold = 2 }
	})
	l := intList(t, b, "l")
	other := intList(t, b, "other")
	var want, wantOther []int64
	for i := range int64(300) {
		setKey(t, b, "k")
		noErr(t, l.Add(i))
		want = append(want, i)
		if i%3 == 0 {
			noErr(t, l.AddAll([]int64{-i, -i - 1}))
			want = append(want, -i, -i-1)
		}
		setKey(t, b, "j")
		noErr(t, other.Add(i))
		wantOther = append(wantOther, i)
		if i%10 == 9 {
			noErr(t, b.Flush())
		}
		if i == 150 {
			// A Set base in the middle of the operands.
			setKey(t, b, "k")
			noErr(t, l.Update([]int64{1000, 1001}))
			want = []int64{1000, 1001}
		}
	}
	setKey(t, b, "k")
	wantList(t, l, want)
	setKey(t, b, "j")
	wantList(t, other, wantOther)
}

// TestList_OrderAfterFullCompaction checks the order after every operand
// went through a manual compaction into one file, and that Adds after it
// still append.
func TestList_OrderAfterFullCompaction(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	l := intList(t, b, "l")
	setKey(t, b, "k")
	for i := range int64(100) {
		noErr(t, l.Add(i))
		if i%7 == 0 {
			noErr(t, b.Flush())
		}
	}
	noErr(t, b.Close())
	compactAll(t, dir)

	b = MustOpen(t, inDir(dir))
	l = intList(t, b, "l")
	setKey(t, b, "k")
	wantList(t, l, seq(0, 100))
	noErr(t, l.Add(100))
	wantList(t, l, seq(0, 101))
}

// TestList_AddsSurviveReopen checks that operands written before a Close
// and after the reopen form one list.
func TestList_AddsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	l := intList(t, b, "l")
	setKey(t, b, "k")
	noErr(t, l.AddAll([]int64{0, 1}))
	b = reopen(t, b, inDir(dir))
	l = intList(t, b, "l")
	setKey(t, b, "k")
	noErr(t, l.Add(2))
	wantList(t, l, seq(0, 3))
}

// TestList_KeysAndNamespacesAreIndependent checks that lists of different
// keys and namespaces do not mix.
func TestList_KeysAndNamespacesAreIndependent(t *testing.T) {
	b := MustOpen(t)
	l := nsList(t, b, "l")
	for _, k := range []string{"a", "ab", "b"} {
		setKey(t, b, k)
		for ns := int64(-1); ns <= 1; ns++ {
			noErr(t, l.SetCurrentNamespace(ns))
			noErr(t, l.Add(fmt.Sprint(k, ns)))
			noErr(t, l.Add(fmt.Sprint(k, ns, "!")))
		}
	}
	for _, k := range []string{"a", "ab", "b"} {
		setKey(t, b, k)
		for ns := int64(-1); ns <= 1; ns++ {
			noErr(t, l.SetCurrentNamespace(ns))
			wantList(t, l, []string{fmt.Sprint(k, ns), fmt.Sprint(k, ns, "!")})
		}
	}
}

// TestList_MergeNamespaces checks that the sources' lists are appended to
// the target's in the order of the sources, that the sources are cleared,
// that the target among the sources and absent sources are skipped, and
// that the state's current namespace does not change.
func TestList_MergeNamespaces(t *testing.T) {
	b := MustOpen(t)
	l := nsList(t, b, "l")
	setKey(t, b, "k")
	put := func(ns int64, es ...string) {
		t.Helper()
		noErr(t, l.SetCurrentNamespace(ns))
		noErr(t, l.AddAll(es))
	}
	put(1, "t1", "t2")
	put(2, "a1", "a2")
	put(3, "b1")
	put(4, "c1")
	put(99, "unrelated")
	noErr(t, l.SetCurrentNamespace(99))

	noErr(t, l.MergeNamespaces(1, 3, 1, 50 /* absent */, 2))
	if ns := l.CurrentNamespace(); ns != 99 {
		t.Fatalf("CurrentNamespace = %d after MergeNamespaces, want 99", ns)
	}
	wantList(t, l, []string{"unrelated"})
	for ns, want := range map[int64][]string{
		1:  {"t1", "t2", "b1", "a1", "a2"},
		2:  nil,
		3:  nil,
		4:  {"c1"},
		50: nil,
	} {
		noErr(t, l.SetCurrentNamespace(ns))
		wantList(t, l, want)
	}

	// Into an empty target, and the merged list still takes Adds.
	noErr(t, l.MergeNamespaces(7, 4, 1))
	noErr(t, l.SetCurrentNamespace(7))
	wantList(t, l, []string{"c1", "t1", "t2", "b1", "a1", "a2"})
	noErr(t, l.Add("z"))
	wantList(t, l, []string{"c1", "t1", "t2", "b1", "a1", "a2", "z"})

	// No sources, or only absent ones, change nothing.
	noErr(t, l.MergeNamespaces(7))
	noErr(t, l.MergeNamespaces(7, 123, 7))
	wantList(t, l, []string{"c1", "t1", "t2", "b1", "a1", "a2", "z"})
}

// TestList_MergeNamespacesOnlyCurrentKey checks that merging namespaces of
// one key leaves other keys alone.
func TestList_MergeNamespacesOnlyCurrentKey(t *testing.T) {
	b := MustOpen(t)
	l := nsList(t, b, "l")
	for _, k := range []string{"a", "b"} {
		setKey(t, b, k)
		noErr(t, l.SetCurrentNamespace(1))
		noErr(t, l.Add(k+"1"))
		noErr(t, l.SetCurrentNamespace(2))
		noErr(t, l.Add(k+"2"))
	}
	setKey(t, b, "a")
	noErr(t, l.MergeNamespaces(1, 2))
	setKey(t, b, "b")
	noErr(t, l.SetCurrentNamespace(1))
	wantList(t, l, []string{"b1"})
	noErr(t, l.SetCurrentNamespace(2))
	wantList(t, l, []string{"b2"})
	setKey(t, b, "a")
	noErr(t, l.SetCurrentNamespace(1))
	wantList(t, l, []string{"a1", "a2"})
}

// TestList_MergeNamespacesDuplicateSource checks that a source named twice
// is moved once: after the first move it is empty.
func TestList_MergeNamespacesDuplicateSource(t *testing.T) {
	b := MustOpen(t)
	l := nsList(t, b, "l")
	setKey(t, b, "k")
	noErr(t, l.SetCurrentNamespace(2))
	noErr(t, l.AddAll([]string{"x", "y"}))
	noErr(t, l.MergeNamespaces(1, 2, 2))
	noErr(t, l.SetCurrentNamespace(1))
	wantList(t, l, []string{"x", "y"})
	noErr(t, l.SetCurrentNamespace(2))
	wantList(t, l, nil)
}

// TestList_EncodeErrorWritesNothing checks that an element the codec
// cannot encode fails Add, AddAll and Update with the codec's error and
// leaves the list as it was.
func TestList_EncodeErrorWritesNothing(t *testing.T) {
	b := MustOpen(t)
	l := must(backend.GetList(b, backend.ListDescriptor[int64]{Name: "l", Codec: pickyCodec{}})).in(t)
	setKey(t, b, "k")
	noErr(t, l.AddAll([]int64{1, 2}))
	wantErr(t, l.Add(13), errAppend)
	wantErr(t, l.AddAll([]int64{3, 13, 4}), errAppend)
	wantErr(t, l.Update([]int64{5, 13}), errAppend)
	wantList(t, l, []int64{1, 2})
}

// TestList_MalformedStoredValue checks that a list whose stored framing is
// broken reads as ErrCorrupt, and that MergeNamespaces refuses to move it.
func TestList_MalformedStoredValue(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	l := nsList(t, b, "l")
	setKey(t, b, "k")
	noErr(t, l.SetCurrentNamespace(2))
	noErr(t, l.Add("hello"))
	noErr(t, b.Close())

	key := singleStateKey(t, dir)
	overwriteRaw(t, dir, key, []byte{0x09, 'h', 'i'}) // length 9, 2 bytes

	b = MustOpen(t, inDir(dir))
	l = nsList(t, b, "l")
	setKey(t, b, "k")
	noErr(t, l.SetCurrentNamespace(2))
	_, err := l.Get()
	wantErr(t, err, backend.ErrCorrupt)
	wantErr(t, err, listfmt.ErrMalformed)

	noErr(t, l.SetCurrentNamespace(1))
	noErr(t, l.Add("target"))
	wantErr(t, l.MergeNamespaces(1, 2), backend.ErrCorrupt)
	wantList(t, l, []string{"target"}) // target untouched
	noErr(t, l.SetCurrentNamespace(2))
	_, err = l.Get()
	wantErr(t, err, backend.ErrCorrupt) // source not deleted
}

// TestList_ElementDecodeError checks that an element the codec cannot
// decode makes Get fail with ErrCorrupt, wrapping the codec's error.
func TestList_ElementDecodeError(t *testing.T) {
	b := MustOpen(t)
	l := must(backend.GetList(b, backend.ListDescriptor[int64]{Name: "l", Codec: pickyCodec{}})).in(t)
	setKey(t, b, "k")
	noErr(t, l.AddAll([]int64{1, 666, 2}))
	_, err := l.Get()
	wantErr(t, err, backend.ErrCorrupt)
	wantErr(t, err, errDecode)
}

// TestList_NoCurrentKey checks every list operation before SetCurrentKey.
func TestList_NoCurrentKey(t *testing.T) {
	b := MustOpen(t)
	l := nsList(t, b, "l")
	_, err := l.Get()
	wantErr(t, err, backend.ErrNoCurrentKey)
	wantErr(t, l.Add("x"), backend.ErrNoCurrentKey)
	wantErr(t, l.AddAll(nil), backend.ErrNoCurrentKey)
	wantErr(t, l.AddAll([]string{"x"}), backend.ErrNoCurrentKey)
	wantErr(t, l.Update(nil), backend.ErrNoCurrentKey)
	wantErr(t, l.Update([]string{"x"}), backend.ErrNoCurrentKey)
	wantErr(t, l.Clear(), backend.ErrNoCurrentKey)
	wantErr(t, l.MergeNamespaces(1, 2), backend.ErrNoCurrentKey)
}
