package keys_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/internal/keys"
)

// TestKeyGroupBytes checks the width of the key-group prefix: one byte up
// to 128 key groups, two above, as in Flink.
func TestKeyGroupBytes(t *testing.T) {
	for maxP, want := range map[int]int{1: 1, 127: 1, 128: 1, 129: 2, 1000: 2, 32768: 2} {
		if got := keys.KeyGroupBytes(maxP); got != want {
			t.Errorf("KeyGroupBytes(%d) = %d, want %d", maxP, got, want)
		}
	}
}

// TestStateID checks the big-endian two-byte state id.
func TestStateID(t *testing.T) {
	if got := keys.AppendStateID([]byte("x"), 0x0102); !bytes.Equal(got, []byte{'x', 1, 2}) {
		t.Errorf("AppendStateID = %x", got)
	}
	if keys.StateIDLen != 2 || keys.SystemID != 0 || keys.MaxStateID != 0xFFFE {
		t.Errorf("constants: %d %d %#x", keys.StateIDLen, keys.SystemID, keys.MaxStateID)
	}
}

// TestKeyGroup_RoundTrip checks AppendKeyGroup and DecodeKeyGroup in both
// widths, and that encoded key groups sort numerically.
func TestKeyGroup_RoundTrip(t *testing.T) {
	for _, c := range []struct{ width, max int }{{1, 128}, {2, 32768}} {
		var prev []byte
		for kg := range c.max {
			enc := keys.AppendKeyGroup([]byte{0xAA}, kg, c.width)
			if len(enc) != 1+c.width || enc[0] != 0xAA {
				t.Fatalf("AppendKeyGroup(%d, %d) = %x", kg, c.width, enc)
			}
			got, rest, err := keys.DecodeKeyGroup(append(enc[1:], 'r'), c.width)
			if err != nil || got != kg || string(rest) != "r" {
				t.Fatalf("DecodeKeyGroup(%x) = %d, %q, %v; want %d", enc[1:], got, rest, err, kg)
			}
			if prev != nil && bytes.Compare(prev, enc[1:]) >= 0 {
				t.Fatalf("key group %d does not sort after %d", kg, kg-1)
			}
			prev = append(prev[:0], enc[1:]...)
		}
	}
	if got := keys.AppendKeyGroup(nil, 0x1234, 2); !bytes.Equal(got, []byte{0x12, 0x34}) {
		t.Errorf("AppendKeyGroup(0x1234, 2) = %x, want big-endian", got)
	}
}

// TestDecodeKeyGroup_Short checks that too few bytes are ErrMalformed.
func TestDecodeKeyGroup_Short(t *testing.T) {
	for _, c := range []struct {
		b     []byte
		width int
	}{{nil, 1}, {nil, 2}, {[]byte{1}, 2}} {
		if _, _, err := keys.DecodeKeyGroup(c.b, c.width); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("DecodeKeyGroup(%x, %d) = %v, want ErrMalformed", c.b, c.width, err)
		}
	}
}

// TestComponent_FixedRoundTrip checks fixed-size components: written as
// they are, read back with the rest intact.
func TestComponent_FixedRoundTrip(t *testing.T) {
	for _, comp := range [][]byte{{}, {0}, {1, 2, 3, 4, 5, 6, 7, 8}} {
		enc, err := keys.AppendComponent([]byte("p"), comp, len(comp))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, append([]byte("p"), comp...)) {
			t.Fatalf("AppendComponent(%x, fixed) = %x, want the bytes as they are", comp, enc)
		}
		got, rest, err := keys.SplitComponent(append(enc[1:], "tail"...), len(comp))
		if err != nil || !bytes.Equal(got, comp) || string(rest) != "tail" {
			t.Fatalf("SplitComponent = %x, %q, %v; want %x, tail", got, rest, err, comp)
		}
	}
}

// TestComponent_VariableRoundTrip checks variable-size components of many
// lengths, uvarint length first.
func TestComponent_VariableRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 300, 16383, 16384, 70000} {
		comp := bytes.Repeat([]byte{0xAB}, n)
		enc, err := keys.AppendComponent([]byte("p"), comp, -1)
		if err != nil {
			t.Fatal(err)
		}
		l, w := binary.Uvarint(enc[1:])
		if l != uint64(n) || !bytes.Equal(enc[1+w:], comp) {
			t.Fatalf("len %d: encoded as %x...", n, enc[:min(len(enc), 8)])
		}
		got, rest, err := keys.SplitComponent(append(enc[1:], 0xFF), -1)
		if err != nil || !bytes.Equal(got, comp) || !bytes.Equal(rest, []byte{0xFF}) {
			t.Fatalf("len %d: SplitComponent = %d bytes, rest %x, %v", n, len(got), rest, err)
		}
	}
}

// TestComponent_WrongFixedSize checks that a fixed-size codec producing
// the wrong number of bytes is an error and dst is returned unchanged.
func TestComponent_WrongFixedSize(t *testing.T) {
	dst := []byte("dst")
	for _, c := range []struct {
		comp  []byte
		fixed int
	}{{[]byte{1, 2, 3}, 8}, {[]byte{1}, 0}, {make([]byte, 9), 8}, {nil, 4}} {
		got, err := keys.AppendComponent(dst, c.comp, c.fixed)
		if err == nil {
			t.Errorf("AppendComponent(%d bytes, fixed %d) succeeded", len(c.comp), c.fixed)
		}
		if !bytes.Equal(got, []byte("dst")) {
			t.Errorf("AppendComponent changed dst on error: %q", got)
		}
		if err != nil && !strings.Contains(err.Error(), "fixed size") {
			t.Errorf("error %q does not explain the fixed-size mismatch", err)
		}
	}
}

// TestSplitComponent_Malformed checks that broken input is ErrMalformed,
// never a panic.
func TestSplitComponent_Malformed(t *testing.T) {
	for _, c := range []struct {
		name  string
		b     []byte
		fixed int
	}{
		{"fixed short", []byte{1, 2, 3}, 8},
		{"fixed empty", nil, 1},
		{"variable empty", nil, -1},
		{"truncated uvarint", []byte{0x80}, -1},
		{"overlong uvarint", bytes.Repeat([]byte{0xFF}, 11), -1},
		{"length past end", []byte{5, 'a', 'b'}, -1},
		{"huge length", binary.AppendUvarint(nil, 1<<63), -1},
		{"max uint64 length", binary.AppendUvarint(nil, ^uint64(0)), -1},
	} {
		comp, rest, err := keys.SplitComponent(c.b, c.fixed)
		if !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("%s: SplitComponent(%x) = %x, %x, %v; want ErrMalformed", c.name, c.b, comp, rest, err)
		}
	}
}

// TestComponent_PairsArePrefixFree checks, over a small exhaustive set of
// variable-size (key, namespace) pairs, that no pair's encoding is a prefix
// of another's: the property prefix scans over one pair rely on.
func TestComponent_PairsArePrefixFree(t *testing.T) {
	parts := [][]byte{{}, {0}, {1}, {0, 0}, {0, 1}, {1, 0}, {0xFF}, {2, 'a', 'b'}}
	type pair struct{ k, ns []byte }
	var pairs []pair
	var encs [][]byte
	for _, k := range parts {
		for _, ns := range parts {
			enc, _ := keys.AppendComponent(nil, k, -1)
			enc, _ = keys.AppendComponent(enc, ns, -1)
			pairs = append(pairs, pair{k, ns})
			encs = append(encs, enc)
		}
	}
	for i := range encs {
		for j := range encs {
			if i != j && bytes.HasPrefix(encs[j], encs[i]) {
				t.Fatalf("pair %x/%x encodes to %x, a prefix of pair %x/%x's %x",
					pairs[i].k, pairs[i].ns, encs[i], pairs[j].k, pairs[j].ns, encs[j])
			}
		}
	}
}

// TestPrefixEnd checks the successor of every key with a prefix.
func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte{0xFF}, nil},
		{[]byte{0xFF, 0xFF, 0xFF}, nil},
		{[]byte{0}, []byte{1}},
		{[]byte{1, 2}, []byte{1, 3}},
		{[]byte{0xFE}, []byte{0xFF}},
		{[]byte{1, 0xFF}, []byte{2}},
		{[]byte{1, 0xFF, 0xFF}, []byte{2}},
		{[]byte{0, 1, 0xFE, 0xFF}, []byte{0, 1, 0xFF}},
	} {
		in := bytes.Clone(c.in)
		got := keys.PrefixEnd(in)
		if !bytes.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", c.in, got, c.want)
		}
		if !bytes.Equal(in, c.in) {
			t.Errorf("PrefixEnd modified its input %x to %x", c.in, in)
		}
		if len(got) > 0 && len(in) > 0 && &got[0] == &in[0] {
			t.Errorf("PrefixEnd(%x) aliases its input", c.in)
		}
		// Every key starting with the prefix sorts below the end.
		if got != nil {
			for _, suffix := range [][]byte{nil, {0}, {0xFF, 0xFF, 0xFF}} {
				k := append(bytes.Clone(c.in), suffix...)
				if bytes.Compare(k, got) >= 0 {
					t.Errorf("key %x is not below PrefixEnd %x", k, got)
				}
			}
		}
	}
}

// TestBounds checks StateBounds and KeyGroupBounds, including an end one
// past what the key-group width holds.
func TestBounds(t *testing.T) {
	lo, hi := keys.StateBounds(3)
	if !bytes.Equal(lo, []byte{0, 3}) || !bytes.Equal(hi, []byte{0, 4}) {
		t.Errorf("StateBounds(3) = %x, %x", lo, hi)
	}
	lo, hi = keys.StateBounds(0x00FF)
	if !bytes.Equal(lo, []byte{0, 0xFF}) || !bytes.Equal(hi, []byte{1, 0}) {
		t.Errorf("StateBounds(0xFF) = %x, %x", lo, hi)
	}
	for _, c := range []struct {
		id                uint16
		start, end, width int
		lo, hi            []byte
	}{
		{3, 5, 10, 1, []byte{0, 3, 5}, []byte{0, 3, 10}},
		{3, 0, 128, 1, []byte{0, 3, 0}, []byte{0, 3, 128}},
		{3, 5, 10, 2, []byte{0, 3, 0, 5}, []byte{0, 3, 0, 10}},
		{3, 300, 32768, 2, []byte{0, 3, 1, 44}, []byte{0, 3, 0x80, 0}},
		{3, 200, 256, 1, []byte{0, 3, 200}, []byte{0, 4}},
		{3, 0, 65536, 2, []byte{0, 3, 0, 0}, []byte{0, 4}},
	} {
		lo, hi := keys.KeyGroupBounds(c.id, c.start, c.end, c.width)
		if !bytes.Equal(lo, c.lo) || !bytes.Equal(hi, c.hi) {
			t.Errorf("KeyGroupBounds(%d, %d, %d, %d) = %x, %x; want %x, %x", c.id, c.start, c.end, c.width, lo, hi, c.lo, c.hi)
		}
	}
}

// TestKeyGroupBounds_ContainExactlyTheRange checks that the span of
// [start, end) holds the keys of those key groups of the state and no
// others.
func TestKeyGroupBounds_ContainExactlyTheRange(t *testing.T) {
	const id = 7
	for _, c := range []struct{ start, end, width, maxP int }{{10, 20, 1, 128}, {0, 128, 1, 128}, {250, 700, 2, 1000}} {
		lo, hi := keys.KeyGroupBounds(id, c.start, c.end, c.width)
		for kg := range c.maxP {
			for _, rest := range [][]byte{nil, {0}, {0xFF, 0xFF}} {
				k := append(keys.AppendKeyGroup(keys.AppendStateID(nil, id), kg, c.width), rest...)
				in := bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0
				if want := kg >= c.start && kg < c.end; in != want {
					t.Fatalf("%+v: key %x in span = %v, want %v", c, k, in, want)
				}
			}
		}
		for _, other := range []uint16{id - 1, id + 1} {
			k := keys.AppendKeyGroup(keys.AppendStateID(nil, other), c.start, c.width)
			if bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
				t.Fatalf("key %x of state %d in the span of state %d", k, other, id)
			}
		}
	}
}

// TestSystemKeys checks the reserved records' keys: under state id 0,
// distinct, and every state record under StateMetaPrefix.
func TestSystemKeys(t *testing.T) {
	bk := keys.BackendMetaKey()
	prefix := keys.StateMetaPrefix()
	if !bytes.HasPrefix(bk, []byte{0, 0}) || !bytes.HasPrefix(prefix, []byte{0, 0}) {
		t.Fatalf("system keys %x, %x are not under state id 0", bk, prefix)
	}
	if bytes.HasPrefix(bk, prefix) {
		t.Fatalf("backend record %x is under the state-record prefix %x", bk, prefix)
	}
	for _, name := range []string{"", "a", "count", "日本"} {
		k := keys.StateMetaKey(name)
		if !bytes.HasPrefix(k, prefix) || string(k[len(prefix):]) != name {
			t.Errorf("StateMetaKey(%q) = %x", name, k)
		}
	}
	if lo, _ := keys.StateBounds(1); bytes.Compare(keys.PrefixEnd(prefix), lo) > 0 {
		t.Errorf("state records reach into state 1's span")
	}
	// Fresh slices: appending to one must not change the next.
	_ = append(keys.StateMetaPrefix(), 'x')
	if !bytes.Equal(keys.StateMetaPrefix(), prefix) {
		t.Error("StateMetaPrefix shares its slice")
	}
}
