package listfmt_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/listfmt"
)

// Fuzz targets of the list framing and its merge operator. The seed corpus
// runs under plain go test; run longer with
//
//	go test ./internal/listfmt -run '^$' -fuzz FuzzListFraming -fuzztime 30s

// lfSplit cuts data into elements at the positions cuts picks, so a fuzzer
// controls both the element bytes and their sizes (empty ones included).
func lfSplit(data, cuts []byte) [][]byte {
	var elems [][]byte
	for _, c := range cuts {
		n := int(c)
		if c == 0xff {
			n = 200 // a length that needs a two-byte uvarint
		}
		n = min(n, len(data))
		elems = append(elems, data[:n])
		data = data[n:]
	}
	return elems
}

func lfFrame(elems [][]byte) []byte {
	var out []byte
	for _, e := range elems {
		out = listfmt.AppendElement(out, e)
	}
	return out
}

// lfNextAll splits a framed sequence with Next; it never panics, and a
// success consumes the whole input in pieces that Next says are elements.
func lfNextAll(t *testing.T, b []byte) ([][]byte, error) {
	t.Helper()
	var elems [][]byte
	for len(b) > 0 {
		elem, rest, err := listfmt.Next(b)
		if err != nil {
			return elems, err
		}
		if len(rest) >= len(b) {
			t.Fatalf("Next(%x) made no progress", b)
		}
		if !bytes.HasSuffix(b, rest) || !bytes.HasSuffix(b[:len(b)-len(rest)], elem) {
			t.Fatalf("Next(%x) = %x, %x: not an element followed by the rest", b, elem, rest)
		}
		elems = append(elems, elem)
		b = rest
	}
	return elems, nil
}

// lfMerge folds operands (oldest first) with the merger, starting from the
// operand at index first and adding the others one at a time in an order
// picked by r: each step takes the next older or the next newer operand, as
// Pebble does when it iterates forwards (newest first, MergeOlder) or
// backwards (oldest first, MergeNewer).
func lfMerge(t *testing.T, r *rand.Rand, ops [][]byte, first int) []byte {
	t.Helper()
	vm, err := listfmt.Merger.Merge([]byte("k"), ops[first])
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := first-1, first+1
	for lo >= 0 || hi < len(ops) {
		if hi >= len(ops) || (lo >= 0 && r.IntN(2) == 0) {
			err = vm.MergeOlder(ops[lo])
			lo--
		} else {
			err = vm.MergeNewer(ops[hi])
			hi++
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	out, closer, err := vm.Finish(r.IntN(2) == 0)
	if err != nil {
		t.Fatal(err)
	}
	out = append([]byte(nil), out...)
	if closer != nil {
		_ = closer.Close()
	}
	return out
}

// lfOperands cuts a framed sequence into operands at element boundaries
// chosen by r.
func lfOperands(r *rand.Rand, elems [][]byte) [][]byte {
	var ops [][]byte
	for len(elems) > 0 {
		n := 1 + r.IntN(len(elems))
		ops = append(ops, lfFrame(elems[:n]))
		elems = elems[n:]
	}
	return ops
}

// FuzzListFraming checks that Next and Count never panic on arbitrary
// bytes and agree with each other; that framing round-trips; that framed
// sequences concatenate; and that the merge operator yields the
// concatenation of its operands, oldest first, whatever order Pebble feeds
// them in and however they were grouped by earlier partial merges
// (associativity).
func FuzzListFraming(f *testing.F) {
	f.Add([]byte("hello world"), []byte{1, 0, 3, 5}, uint64(1))
	f.Add([]byte{}, []byte{0, 0, 0}, uint64(2))
	f.Add(bytes.Repeat([]byte{0x80}, 300), []byte{0xff, 2, 0xff}, uint64(3))
	f.Add([]byte{0x05, 'a'}, []byte{}, uint64(4))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, []byte{11}, uint64(5))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte{1}, uint64(6))
	f.Fuzz(func(t *testing.T, data, cuts []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

		// Arbitrary bytes: no panic, Count and Next agree.
		for _, in := range [][]byte{data, cuts} {
			n, cerr := listfmt.Count(in)
			elems, nerr := lfNextAll(t, in)
			if (cerr == nil) != (nerr == nil) {
				t.Fatalf("Count(%x) error %v but Next error %v", in, cerr, nerr)
			}
			if cerr == nil {
				if n != len(elems) {
					t.Fatalf("Count(%x) = %d, Next found %d elements", in, n, len(elems))
				}
				if !bytes.Equal(lfFrame(elems), in) {
					// Non-canonical uvarint lengths decode but re-frame
					// differently; only canonical framing is ever written.
					t.Logf("Count(%x) accepts a non-canonical framing", in)
				}
			} else if n > len(elems) {
				t.Fatalf("Count(%x) = %d before its error, Next found only %d", in, n, len(elems))
			}
		}

		// Round trip.
		elems := lfSplit(data, cuts)
		framed := lfFrame(elems)
		got, err := lfNextAll(t, framed)
		if err != nil {
			t.Fatalf("framed %d elements, Next failed: %v", len(elems), err)
		}
		if n, err := listfmt.Count(framed); err != nil || n != len(elems) {
			t.Fatalf("Count of %d framed elements = %d, %v", len(elems), n, err)
		}
		if len(got) != len(elems) {
			t.Fatalf("framed %d elements, got %d back", len(elems), len(got))
		}
		for i := range elems {
			if !bytes.Equal(got[i], elems[i]) {
				t.Fatalf("element %d: framed %x, got %x", i, elems[i], got[i])
			}
		}

		// Concatenation of framed sequences is the framing of the
		// concatenated elements.
		if len(elems) > 0 {
			i := r.IntN(len(elems) + 1)
			if cat := append(lfFrame(elems[:i]), lfFrame(elems[i:])...); !bytes.Equal(cat, framed) {
				t.Fatalf("framing does not concatenate at %d", i)
			}
		}

		// The merge operator, in every feeding order, and associativity:
		// merging partial results of adjacent runs equals merging all.
		if len(elems) == 0 {
			return
		}
		ops := lfOperands(r, elems)
		for range 4 {
			if out := lfMerge(t, r, ops, r.IntN(len(ops))); !bytes.Equal(out, framed) {
				t.Fatalf("merge of %d operands = %x, want %x", len(ops), out, framed)
			}
		}
		// Group adjacent operands, merge each group, then merge the groups.
		var partials [][]byte
		for rest := ops; len(rest) > 0; {
			n := 1 + r.IntN(len(rest))
			partials = append(partials, lfMerge(t, r, rest[:n], r.IntN(n)))
			rest = rest[n:]
		}
		if out := lfMerge(t, r, partials, r.IntN(len(partials))); !bytes.Equal(out, framed) {
			t.Fatalf("merge of %d partial merges = %x, want %x", len(partials), out, framed)
		}
	})
}

// TestMergerWithPebble checks the operator inside Pebble: appends through
// Merge, over a Set base, across memtable flushes and a compaction, read
// forwards and backwards, equal the framed concatenation.
func TestMergerWithPebble(t *testing.T) {
	db, err := pebble.Open(t.TempDir(), &pebble.Options{Merger: listfmt.Merger, FormatMajorVersion: pebble.FormatNewest, Logger: lfQuiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := rand.New(rand.NewPCG(7, 8))
	want := map[string][][]byte{}
	keys := []string{"a", "b", "c", "d"}
	for i := range 2000 {
		k := keys[r.IntN(len(keys))]
		switch op := r.IntN(20); {
		case op == 0:
			if err := db.Delete([]byte(k), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			delete(want, k)
		case op == 1:
			e := []byte{byte(i), byte(i >> 8)}
			if err := db.Set([]byte(k), listfmt.AppendElement(nil, e), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			want[k] = [][]byte{e}
		default:
			e := bytes.Repeat([]byte{byte(i)}, r.IntN(3))
			if err := db.Merge([]byte(k), listfmt.AppendElement(nil, e), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			want[k] = append(want[k], e)
		}
		if i%500 == 499 {
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if i == 1500 {
			if err := db.Compact(t.Context(), []byte("a"), []byte("z"), true); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(k string, v []byte) {
		t.Helper()
		if w := lfFrame(want[k]); !bytes.Equal(v, w) {
			t.Fatalf("key %q = %x, want %x", k, v, w)
		}
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for valid := it.First(); valid; valid = it.Next() {
		check(string(it.Key()), it.Value())
		seen++
	}
	for valid := it.Last(); valid; valid = it.Prev() {
		check(string(it.Key()), it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Fatalf("iterated %d keys, want %d", seen, len(want))
	}
	for _, k := range keys {
		v, closer, err := db.Get([]byte(k))
		if err == pebble.ErrNotFound {
			if _, ok := want[k]; ok {
				t.Fatalf("key %q missing", k)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		check(k, v)
		closer.Close()
	}
}

type lfQuiet struct{}

func (lfQuiet) Infof(string, ...any)         {}
func (lfQuiet) Errorf(string, ...any)        {}
func (lfQuiet) Fatalf(f string, args ...any) { panic(f) }
