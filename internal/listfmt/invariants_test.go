package listfmt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pebblestate/pebblestate/internal/invariants"
)

// panicOf runs fn and returns what it panicked with, or nil.
func panicOf(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}

// mergeAll folds operands (oldest first) with the merger from the middle
// out, so both MergeOlder and MergeNewer are used, and finishes.
func mergeAll(t *testing.T, ops ...[]byte) []byte {
	t.Helper()
	mid := len(ops) / 2
	vm, err := Merger.Merge([]byte("k"), ops[mid])
	if err != nil {
		t.Fatal(err)
	}
	for i := mid - 1; i >= 0; i-- {
		if err := vm.MergeOlder(ops[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range ops[mid+1:] {
		if err := vm.MergeNewer(op); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := vm.Finish(true)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMergeInvariantHolds merges well-framed operands, and operands that
// are not (corrupt data is for readers to report, not a broken
// invariant): with the invariants tag, the check in Finish runs on each
// and must pass; without it, nothing changes.
func TestMergeInvariantHolds(t *testing.T) {
	frame := func(elems ...string) []byte {
		var b []byte
		for _, e := range elems {
			b = AppendElement(b, []byte(e))
		}
		return b
	}
	ops := [][]byte{frame("a", ""), frame("b"), frame(), frame("c", "d", "e"), frame("f")}
	if v := panicOf(func() {
		out := mergeAll(t, ops...)
		if want := frame("a", "", "b", "c", "d", "e", "f"); !bytes.Equal(out, want) {
			t.Errorf("merge = %x, want %x", out, want)
		}
	}); v != nil {
		t.Fatalf("merging well-framed operands panicked: %v", v)
	}
	bad := [][]byte{frame("a"), {0x05, 'x'}, frame("b")} // the middle one claims 5 bytes, has 1
	if v := panicOf(func() { mergeAll(t, bad...) }); v != nil {
		t.Fatalf("merging a corrupt operand panicked: %v", v)
	}
}

// TestMergeInvariantCatchesBadJoin hands the check a value that lost an
// element of the operands: with the invariants tag it must panic with
// ErrViolated; without it, Check does nothing.
func TestMergeInvariantCatchesBadJoin(t *testing.T) {
	m := &valueMerger{}
	m.tail = AppendElement(AppendElement(nil, []byte("mid")), []byte("new"))
	_ = m.MergeOlder(AppendElement(nil, []byte("old")))
	good := m.join()
	for name, out := range map[string][]byte{
		"element lost": good[:len(good)-4],
		"cut framing":  good[:len(good)-1],
	} {
		v := panicOf(func() { checkJoined(m, out) })
		switch err, _ := v.(error); {
		case !invariants.Enabled && v != nil:
			t.Errorf("%s: without the invariants tag, the check panicked: %v", name, v)
		case invariants.Enabled && !errors.Is(err, invariants.ErrViolated):
			t.Errorf("%s: with the invariants tag, the check panicked with %v; want ErrViolated", name, v)
		}
	}
	if v := panicOf(func() { checkJoined(m, good) }); v != nil {
		t.Fatalf("the check rejected the right join: %v", v)
	}
}
