package listfmt_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/listfmt"
)

// frame returns the framed sequence of elems.
func frame(elems ...[]byte) []byte {
	var out []byte
	for _, e := range elems {
		out = listfmt.AppendElement(out, e)
	}
	return out
}

// finish runs Finish and copies its result, closing any closer.
func finish(t *testing.T, vm pebble.ValueMerger, includesBase bool) []byte {
	t.Helper()
	out, closer, err := vm.Finish(includesBase)
	if err != nil {
		t.Fatal(err)
	}
	out = bytes.Clone(out)
	if closer != nil {
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// merger starts a merge with operand first.
func merger(t *testing.T, first []byte) pebble.ValueMerger {
	t.Helper()
	vm, err := listfmt.Merger.Merge([]byte("key"), first)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// TestFraming_RoundTrip checks AppendElement, Next and Count over elements
// of many sizes, the empty element included.
func TestFraming_RoundTrip(t *testing.T) {
	var elems [][]byte
	for i, n := range []int{0, 1, 127, 128, 300, 0, 16384, 70000, 5} {
		elems = append(elems, bytes.Repeat([]byte{byte(i + 1)}, n))
	}
	b := frame(elems...)
	if n, err := listfmt.Count(b); err != nil || n != len(elems) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(elems))
	}
	rest := b
	for i, want := range elems {
		elem, r, err := listfmt.Next(rest)
		if err != nil || !bytes.Equal(elem, want) {
			t.Fatalf("element %d: Next = %d bytes, %v; want %d bytes", i, len(elem), err, len(want))
		}
		rest = r
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left after the last element", len(rest))
	}
	// The framing: a uvarint length, then the bytes.
	if got := listfmt.AppendElement([]byte("p"), []byte("abc")); !bytes.Equal(got, []byte("p\x03abc")) {
		t.Fatalf("AppendElement = %q", got)
	}
	if got := listfmt.AppendElement(nil, make([]byte, 200)); !bytes.Equal(got[:2], binary.AppendUvarint(nil, 200)) {
		t.Fatalf("AppendElement of 200 bytes starts %x", got[:2])
	}
}

// TestFraming_Concatenates checks that concatenated sequences are the
// sequence of all their elements: what makes appending a byte append.
func TestFraming_Concatenates(t *testing.T) {
	a := frame([]byte("x"), []byte(""))
	b := frame([]byte("yz"))
	if n, err := listfmt.Count(append(bytes.Clone(a), b...)); err != nil || n != 3 {
		t.Fatalf("Count(a||b) = %d, %v; want 3", n, err)
	}
	if n, err := listfmt.Count(nil); err != nil || n != 0 {
		t.Fatalf("Count(nil) = %d, %v", n, err)
	}
}

// TestFraming_Truncated checks every prefix of a framed sequence: a cut at
// an element boundary is a shorter list, any other cut is ErrMalformed.
func TestFraming_Truncated(t *testing.T) {
	elems := [][]byte{[]byte("a"), bytes.Repeat([]byte("b"), 200), {}, []byte("cc")}
	b := frame(elems...)
	boundaries := map[int]int{0: 0}
	off := 0
	for i, e := range elems {
		off += len(listfmt.AppendElement(nil, e))
		boundaries[off] = i + 1
	}
	for cut := range len(b) + 1 {
		n, err := listfmt.Count(b[:cut])
		if want, ok := boundaries[cut]; ok {
			if err != nil || n != want {
				t.Fatalf("Count(first %d bytes) = %d, %v; want %d", cut, n, err, want)
			}
		} else if !errors.Is(err, listfmt.ErrMalformed) {
			t.Fatalf("Count(first %d bytes) = %d, %v; want ErrMalformed", cut, n, err)
		}
	}
}

// TestNext_Malformed checks Next on broken input: ErrMalformed, no panic.
func TestNext_Malformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":             nil,
		"truncated uvarint": {0x80},
		"overlong uvarint":  bytes.Repeat([]byte{0xFF}, 11),
		"length past end":   {0x09, 'h', 'i'},
		"huge length":       binary.AppendUvarint(nil, 1<<62),
		"max length":        binary.AppendUvarint(nil, ^uint64(0)),
	} {
		if _, _, err := listfmt.Next(b); !errors.Is(err, listfmt.ErrMalformed) {
			t.Errorf("%s: Next(%x) = %v, want ErrMalformed", name, b, err)
		}
	}
	if _, err := listfmt.Count(append(frame([]byte("ok")), 0x05)); !errors.Is(err, listfmt.ErrMalformed) {
		t.Errorf("Count with a broken tail = %v, want ErrMalformed", err)
	}
}

// TestCount_Garbage checks Count on random bytes: it returns a count or
// ErrMalformed, never panics, and a count never claims more bytes than
// there are.
func TestCount_Garbage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		n, err := listfmt.Count(b)
		if err != nil && !errors.Is(err, listfmt.ErrMalformed) {
			t.Fatalf("Count(%x) = %v, not ErrMalformed", b, err)
		}
		if err == nil && n > len(b) {
			t.Fatalf("Count(%x) = %d elements from %d bytes", b, n, len(b))
		}
	}
}

// TestMerger_Name pins the merger's name: Pebble stores it in every
// database, and a database cannot be opened with another.
func TestMerger_Name(t *testing.T) {
	if listfmt.MergerName != "pebblestate.list.v1" || listfmt.Merger.Name != listfmt.MergerName {
		t.Fatalf("merger name %q / %q", listfmt.MergerName, listfmt.Merger.Name)
	}
}

// TestMerger_OperandOrder checks that, whichever direction Pebble feeds
// the operands in, the result is the oldest operand first: with a newer
// than b newer than c, every order yields c||b||a.
func TestMerger_OperandOrder(t *testing.T) {
	a, b, c := frame([]byte("a1"), []byte("a2")), frame([]byte("b")), frame([]byte("c"), []byte(""))
	want := append(append(bytes.Clone(c), b...), a...)
	orders := map[string]func() pebble.ValueMerger{
		"newest first": func() pebble.ValueMerger {
			vm := merger(t, a)
			noErr(t, vm.MergeOlder(b))
			noErr(t, vm.MergeOlder(c))
			return vm
		},
		"oldest first": func() pebble.ValueMerger {
			vm := merger(t, c)
			noErr(t, vm.MergeNewer(b))
			noErr(t, vm.MergeNewer(a))
			return vm
		},
		"middle, older, newer": func() pebble.ValueMerger {
			vm := merger(t, b)
			noErr(t, vm.MergeOlder(c))
			noErr(t, vm.MergeNewer(a))
			return vm
		},
		"middle, newer, older": func() pebble.ValueMerger {
			vm := merger(t, b)
			noErr(t, vm.MergeNewer(a))
			noErr(t, vm.MergeOlder(c))
			return vm
		},
	}
	for name, build := range orders {
		for _, base := range []bool{true, false} {
			if got := finish(t, build(), base); !bytes.Equal(got, want) {
				t.Errorf("%s (includesBase=%v) = %q, want %q", name, base, got, want)
			}
		}
	}
	if got := finish(t, merger(t, a), true); !bytes.Equal(got, a) {
		t.Errorf("single operand = %q, want %q", got, a)
	}
}

// TestMerger_DoesNotRetainOperands checks that the merger copies operands:
// Pebble owns and reuses the buffers it passes.
func TestMerger_DoesNotRetainOperands(t *testing.T) {
	first, older, newer := frame([]byte("mid")), frame([]byte("old")), frame([]byte("new"))
	want := frame([]byte("old"), []byte("mid"), []byte("new"))
	vm := merger(t, first)
	noErr(t, vm.MergeOlder(older))
	noErr(t, vm.MergeNewer(newer))
	for _, b := range [][]byte{first, older, newer} {
		for i := range b {
			b[i] = 'X'
		}
	}
	if got := finish(t, vm, true); !bytes.Equal(got, want) {
		t.Fatalf("result %q changed with the operands' buffers, want %q", got, want)
	}
}

// TestMerger_ManyOperands folds 1000 single-element operands from the
// middle outwards in a random but seeded order and checks every element
// comes out in order.
func TestMerger_ManyOperands(t *testing.T) {
	const n = 1000
	ops := make([][]byte, n) // oldest first
	for i := range ops {
		ops[i] = frame(fmt.Appendf(nil, "e%d", i))
	}
	r := rand.New(rand.NewPCG(7, 7))
	first := r.IntN(n)
	vm := merger(t, ops[first])
	lo, hi := first-1, first+1
	for lo >= 0 || hi < n {
		if hi >= n || (lo >= 0 && r.IntN(2) == 0) {
			noErr(t, vm.MergeOlder(ops[lo]))
			lo--
		} else {
			noErr(t, vm.MergeNewer(ops[hi]))
			hi++
		}
	}
	out := finish(t, vm, true)
	for i := range n {
		elem, rest, err := listfmt.Next(out)
		if err != nil || string(elem) != fmt.Sprintf("e%d", i) {
			t.Fatalf("element %d = %q, %v", i, elem, err)
		}
		out = rest
	}
	if len(out) != 0 {
		t.Fatalf("%d bytes after the last element", len(out))
	}
}

// TestMerger_FoldIsLinear folds 10,000 operands through MergeOlder, the
// order of a forward read, and checks the result and that the bytes
// allocated stay linear in the input: a merger that re-copied its buffer
// per operand would allocate about n²/2 operand sizes (150 MB here).
func TestMerger_FoldIsLinear(t *testing.T) {
	const n = 10_000
	ops := make([][]byte, n) // newest first, as MergeOlder receives them
	total := 0
	for i := range ops {
		ops[i] = frame([]byte{byte(i >> 8), byte(i)})
		total += len(ops[i])
	}
	var out []byte
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	vm := merger(t, ops[0])
	for _, op := range ops[1:] {
		noErr(t, vm.MergeOlder(op))
	}
	out, closer, err := vm.Finish(true)
	runtime.ReadMemStats(&after)
	noErr(t, err)
	if closer != nil {
		defer closer.Close()
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > uint64(64*total) {
		t.Errorf("folding %d operands (%d bytes) allocated %d bytes", n, total, allocated)
	}
	if len(out) != total {
		t.Fatalf("result is %d bytes, want %d", len(out), total)
	}
	if c, err := listfmt.Count(out); err != nil || c != n {
		t.Fatalf("Count = %d, %v; want %d", c, err, n)
	}
	for i := range n { // oldest (the last operand given) first
		want := n - 1 - i
		elem, rest, _ := listfmt.Next(out)
		if !bytes.Equal(elem, []byte{byte(want >> 8), byte(want)}) {
			t.Fatalf("element %d = %x, want operand %d", i, elem, want)
		}
		out = rest
	}

	allocs := testing.AllocsPerRun(5, func() {
		vm, _ := listfmt.Merger.Merge(nil, ops[0])
		for _, op := range ops[1:] {
			_ = vm.MergeOlder(op)
		}
		_, _, _ = vm.Finish(true)
	})
	if allocs > 200 {
		t.Errorf("folding %d operands made %.0f allocations, want O(log n)", n, allocs)
	}
}

// noErr fails the test now if err is not nil.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
