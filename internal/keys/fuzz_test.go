package keys_test

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/internal/keys"
)

// Fuzz targets and randomized properties of the key layout. The seed corpus
// of every fuzz target runs under plain go test; run one for longer with
//
//	go test ./internal/keys -run '^$' -fuzz FuzzComponentPrefixFree -fuzztime 30s

// fzPair encodes the pair (k, ns) as the backend lays it out after the key
// group: [key component][namespace component], each with the given fixed
// size or -1 for a variable-size codec.
func fzPair(t testing.TB, k, ns []byte, kFixed, nsFixed int) []byte {
	t.Helper()
	enc, err := keys.AppendComponent(nil, k, kFixed)
	if err != nil {
		t.Fatalf("AppendComponent(key %x, fixed %d): %v", k, kFixed, err)
	}
	if enc, err = keys.AppendComponent(enc, ns, nsFixed); err != nil {
		t.Fatalf("AppendComponent(ns %x, fixed %d): %v", ns, nsFixed, err)
	}
	return enc
}

// fzSplitPair is the inverse of fzPair; it requires the whole input to be
// consumed.
func fzSplitPair(t testing.TB, enc []byte, kFixed, nsFixed int) (k, ns []byte) {
	t.Helper()
	k, rest, err := keys.SplitComponent(enc, kFixed)
	if err != nil {
		t.Fatalf("SplitComponent(key of %x): %v", enc, err)
	}
	ns, rest, err = keys.SplitComponent(rest, nsFixed)
	if err != nil {
		t.Fatalf("SplitComponent(ns of %x): %v", enc, err)
	}
	if len(rest) != 0 {
		t.Fatalf("SplitComponent of %x left %d bytes", enc, len(rest))
	}
	return k, ns
}

// fzFit pads or truncates b to n bytes, to feed a fixed-size component.
func fzFit(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// fzCheckPrefixFree fails if one of two distinct encoded pairs is a prefix of
// the other, or if equal pairs encode differently.
func fzCheckPrefixFree(t testing.TB, k1, n1, k2, n2 []byte, kFixed, nsFixed int) {
	t.Helper()
	e1 := fzPair(t, k1, n1, kFixed, nsFixed)
	e2 := fzPair(t, k2, n2, kFixed, nsFixed)
	same := bytes.Equal(k1, k2) && bytes.Equal(n1, n2)
	switch {
	case same && !bytes.Equal(e1, e2):
		t.Fatalf("equal pairs (%x, %x) encode as %x and %x", k1, n1, e1, e2)
	case !same && (bytes.HasPrefix(e1, e2) || bytes.HasPrefix(e2, e1)):
		t.Fatalf("fixed sizes (%d, %d): pair (%x, %x) encodes as %x and pair (%x, %x) as %x: one is a prefix of the other",
			kFixed, nsFixed, k1, n1, e1, k2, n2, e2)
	}
	for _, c := range []struct{ k, ns, enc []byte }{{k1, n1, e1}, {k2, n2, e2}} {
		gk, gns := fzSplitPair(t, c.enc, kFixed, nsFixed)
		if !bytes.Equal(gk, c.k) || !bytes.Equal(gns, c.ns) {
			t.Fatalf("pair (%x, %x) encoded as %x splits into (%x, %x)", c.k, c.ns, c.enc, gk, gns)
		}
	}
}

// FuzzComponentPrefixFree checks the layout's central promise: no encoded
// (key, namespace) pair is a prefix of another pair's, so a prefix scan over
// one pair's map entries never reaches another's. It checks variable-size
// keys and namespaces, and each mixed with a fixed-size component; that
// SplitComponent inverts AppendComponent; and that SplitComponent never
// panics on arbitrary bytes.
func FuzzComponentPrefixFree(f *testing.F) {
	long := bytes.Repeat([]byte{'x'}, 127)
	f.Add([]byte("a"), []byte(""), []byte("a\x00"), []byte(""))
	f.Add([]byte("a"), []byte("\x01b"), []byte("a\x01b"), []byte(""))
	f.Add([]byte(""), []byte("a"), []byte("\x01a"), []byte(""))
	f.Add([]byte(""), []byte(""), []byte("\x00"), []byte(""))
	f.Add([]byte("ab"), []byte("c"), []byte("a"), []byte("bc"))
	f.Add(long, []byte("n"), append(long, 'x'), []byte("n"))
	f.Add([]byte("\x80\x01"), []byte("\xff"), []byte("\x80"), []byte("\x01\xff"))
	f.Add([]byte("\xff\xff"), []byte("\xff"), []byte("\xff"), []byte("\xff\xff"))
	f.Fuzz(func(t *testing.T, k1, n1, k2, n2 []byte) {
		// Both variable.
		fzCheckPrefixFree(t, k1, n1, k2, n2, -1, -1)
		// Variable key, fixed 8-byte namespace (String key, Int64 namespace).
		fzCheckPrefixFree(t, k1, fzFit(n1, 8), k2, fzFit(n2, 8), -1, 8)
		// Fixed key, variable namespace (Int64 key, String namespace).
		fzCheckPrefixFree(t, fzFit(k1, 8), n1, fzFit(k2, 8), n2, 8, -1)
		// Variable key, void namespace.
		fzCheckPrefixFree(t, k1, nil, k2, nil, -1, 0)

		// SplitComponent on arbitrary bytes: no panic, and a success
		// returns a component immediately followed by the rest.
		for _, in := range [][]byte{k1, n1, append(append([]byte(nil), k1...), n1...)} {
			for _, fixed := range []int{-1, 0, 1, 8} {
				comp, rest, err := keys.SplitComponent(in, fixed)
				if err != nil {
					continue
				}
				if len(comp)+len(rest) > len(in) {
					t.Fatalf("SplitComponent(%x, %d) = %x, %x: longer than the input", in, fixed, comp, rest)
				}
				if !bytes.HasSuffix(in, rest) || !bytes.HasSuffix(in[:len(in)-len(rest)], comp) {
					t.Fatalf("SplitComponent(%x, %d) = %x, %x: not a component followed by the rest", in, fixed, comp, rest)
				}
				if fixed >= 0 && len(comp) != fixed {
					t.Fatalf("SplitComponent(%x, %d) returned %d bytes", in, fixed, len(comp))
				}
			}
		}
	})
}

// fzRandBytes returns a short random byte string over a small alphabet rich
// in bytes that look like lengths or bounds, sometimes long enough to need
// a two-byte length.
func fzRandBytes(r *rand.Rand) []byte {
	alphabet := []byte{0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 'a', 'b'}
	n := r.IntN(6)
	switch r.IntN(10) {
	case 0:
		n = 125 + r.IntN(6) // around the one/two-byte uvarint boundary
	case 1:
		n = r.IntN(300)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

// TestComponentPrefixFreeProperty checks prefix-freedom over many random
// pairs at once: after sorting, if some encoding were a prefix of another,
// it would also be a prefix of its successor, so adjacent pairs suffice.
func TestComponentPrefixFreeProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sizes := range [][2]int{{-1, -1}, {-1, 8}, {8, -1}, {-1, 0}, {8, 8}, {4, 0}} {
		type pair struct{ k, ns, enc []byte }
		var pairs []pair
		seen := map[string]bool{}
		for range 4000 {
			k, ns := fzRandBytes(r), fzRandBytes(r)
			if sizes[0] >= 0 {
				k = fzFit(k, sizes[0])
			}
			if sizes[1] >= 0 {
				ns = fzFit(ns, sizes[1])
			}
			id := string(k) + "\x00|\x00" + string(ns) // unique enough for these alphabets
			if seen[id] {
				continue
			}
			seen[id] = true
			pairs = append(pairs, pair{k, ns, fzPair(t, k, ns, sizes[0], sizes[1])})
		}
		slices.SortFunc(pairs, func(a, b pair) int { return bytes.Compare(a.enc, b.enc) })
		for i := 1; i < len(pairs); i++ {
			a, b := pairs[i-1], pairs[i]
			if bytes.HasPrefix(b.enc, a.enc) && !(bytes.Equal(a.k, b.k) && bytes.Equal(a.ns, b.ns)) {
				t.Fatalf("sizes %v: pair (%x, %x) -> %x is a prefix of pair (%x, %x) -> %x",
					sizes, a.k, a.ns, a.enc, b.k, b.ns, b.enc)
			}
			gk, gns := fzSplitPair(t, b.enc, sizes[0], sizes[1])
			if !bytes.Equal(gk, b.k) || !bytes.Equal(gns, b.ns) {
				t.Fatalf("sizes %v: %x splits into (%x, %x), want (%x, %x)", sizes, b.enc, gk, gns, b.k, b.ns)
			}
		}
	}
}

// TestAppendComponentFixedSizeMismatch checks that a fixed-size component of
// the wrong length is refused rather than written ambiguously.
func TestAppendComponentFixedSizeMismatch(t *testing.T) {
	for _, n := range []int{0, 7, 9} {
		if _, err := keys.AppendComponent(nil, make([]byte, n), 8); err == nil {
			t.Errorf("AppendComponent of %d bytes with fixed size 8: no error", n)
		}
	}
}

// TestPrefixEndProperty checks that PrefixEnd(p) is above every key with
// prefix p and at or below every key above them.
func TestPrefixEndProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		p := fzRandBytes(r)
		if len(p) > 8 {
			p = p[:8]
		}
		end := keys.PrefixEnd(p)
		k := append(append([]byte(nil), p...), fzRandBytes(r)...)
		if end != nil && bytes.Compare(k, end) >= 0 {
			t.Fatalf("key %x with prefix %x is not below PrefixEnd %x", k, p, end)
		}
		if end == nil {
			if len(bytes.Trim(p, "\xff")) != 0 {
				t.Fatalf("PrefixEnd(%x) = nil, but the prefix is not all 0xff", p)
			}
			continue
		}
		// Any key >= p that lacks the prefix is >= end.
		other := fzRandBytes(r)
		if bytes.Compare(other, p) >= 0 && !bytes.HasPrefix(other, p) && bytes.Compare(other, end) < 0 {
			t.Fatalf("key %x lacks prefix %x but sorts below PrefixEnd %x", other, p, end)
		}
		if bytes.HasPrefix(end, p) {
			t.Fatalf("PrefixEnd(%x) = %x starts with the prefix", p, end)
		}
	}
}

// TestKeyGroupBoundsProperty checks that [lo, hi) of KeyGroupBounds holds
// exactly the keys of the state in the given key groups, for both widths.
func TestKeyGroupBoundsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		maxP := 1 + r.IntN(300)
		if r.IntN(4) == 0 {
			maxP = 1 << 15
		}
		width := keys.KeyGroupBytes(maxP)
		start := r.IntN(maxP)
		end := start + 1 + r.IntN(maxP-start)
		id := uint16(1 + r.IntN(int(keys.MaxStateID)))
		if r.IntN(8) == 0 {
			id = keys.MaxStateID
		}
		lo, hi := keys.KeyGroupBounds(id, start, end, width)
		for range 8 {
			kg := r.IntN(maxP)
			k := keys.AppendKeyGroup(keys.AppendStateID(nil, id), kg, width)
			k = append(k, fzRandBytes(r)...)
			in := bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0
			if want := kg >= start && kg < end; in != want {
				t.Fatalf("maxP %d id %d kgs [%d, %d): key group %d key %x in bounds [%x, %x) = %v, want %v",
					maxP, id, start, end, kg, k, lo, hi, in, want)
			}
			got, _, err := keys.DecodeKeyGroup(k[keys.StateIDLen:], width)
			if err != nil || got != kg {
				t.Fatalf("DecodeKeyGroup(%x, %d) = %d, %v; want %d", k[keys.StateIDLen:], width, got, err, kg)
			}
			// Other states' keys are never inside.
			other := keys.AppendKeyGroup(keys.AppendStateID(nil, id+1), kg, width)
			if bytes.Compare(other, lo) >= 0 && bytes.Compare(other, hi) < 0 {
				t.Fatalf("key %x of state %d is inside the bounds [%x, %x) of state %d", other, id+1, lo, hi, id)
			}
		}
		slo, shi := keys.StateBounds(id)
		if bytes.Compare(lo, slo) < 0 || bytes.Compare(hi, shi) > 0 {
			t.Fatalf("key-group bounds [%x, %x) outside state bounds [%x, %x)", lo, hi, slo, shi)
		}
	}
}
