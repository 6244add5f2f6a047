package backend_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// roundTrip encodes v after a prefix and decodes it back, checking that
// Append kept the prefix and that the fixed size, if any, holds.
func roundTrip[T any](t *testing.T, c backend.Codec[T], v T) (T, []byte) {
	t.Helper()
	prefix := []byte("prefix")
	enc, err := c.Append(bytes.Clone(prefix), v)
	noErr(t, err)
	if !bytes.HasPrefix(enc, prefix) {
		t.Fatalf("%s.Append(%v) clobbered dst: %x", c.Name(), v, enc)
	}
	enc = enc[len(prefix):]
	if f, ok := c.(backend.FixedSizer); ok && len(enc) != f.FixedSize() {
		t.Fatalf("%s.Append(%v) wrote %d bytes, FixedSize is %d", c.Name(), v, len(enc), f.FixedSize())
	}
	got, err := c.Decode(enc)
	noErr(t, err)
	return got, enc
}

// ordered checks that c round-trips values, which are in ascending order,
// and that their encodings sort in the same order.
func ordered[T comparable](t *testing.T, c backend.Codec[T], values []T) {
	t.Helper()
	var prev []byte
	for i, v := range values {
		got, enc := roundTrip(t, c, v)
		if got != v {
			t.Fatalf("%s: %v decoded as %v", c.Name(), v, got)
		}
		if i > 0 && bytes.Compare(prev, enc) >= 0 {
			t.Fatalf("%s: encoding of %v (%x) does not sort after that of %v (%x)", c.Name(), v, enc, values[i-1], prev)
		}
		prev = enc
	}
}

// TestCodec_NumbersSortNumerically checks that the number codecs
// round-trip and that byte order equals numeric order.
func TestCodec_NumbersSortNumerically(t *testing.T) {
	ordered(t, backend.Int64, []int64{math.MinInt64, math.MinInt64 + 1, -1 << 40, -256, -1, 0, 1, 255, 256, 1 << 40, math.MaxInt64})
	ordered(t, backend.Int32, []int32{math.MinInt32, -65536, -1, 0, 1, 65536, math.MaxInt32})
	ordered(t, backend.Uint64, []uint64{0, 1, 255, 256, 1 << 63, math.MaxUint64})
	ordered(t, backend.Float64, []float64{math.Inf(-1), -math.MaxFloat64, -1e10, -1, -math.SmallestNonzeroFloat64,
		0, math.SmallestNonzeroFloat64, 0.5, 1, 1e10, math.MaxFloat64, math.Inf(1)})
	ordered(t, backend.Bool, []bool{false, true})
}

// TestCodec_Float64Bits checks that the float codec keeps negative zero
// (below positive zero) and NaN payloads.
func TestCodec_Float64Bits(t *testing.T) {
	for _, bits := range []uint64{
		math.Float64bits(math.Copysign(0, -1)), 0, math.Float64bits(math.NaN()),
		0x7ff0000000000001, 0xfff8000000000123, // NaNs with payloads, both signs
	} {
		got, _ := roundTrip(t, backend.Float64, math.Float64frombits(bits))
		if math.Float64bits(got) != bits {
			t.Errorf("float64 bits %x decoded as %x", bits, math.Float64bits(got))
		}
	}
	_, neg := roundTrip(t, backend.Float64, math.Copysign(0, -1))
	_, pos := roundTrip(t, backend.Float64, 0)
	if bytes.Compare(neg, pos) >= 0 {
		t.Error("-0 does not sort before +0")
	}
}

// TestCodec_StringAndBytes checks the variable-size codecs, and that
// Bytes.Decode copies its input.
func TestCodec_StringAndBytes(t *testing.T) {
	for _, s := range []string{"", "a", "\x00\xff", strings.Repeat("long", 1000), "日本語"} {
		if got, enc := roundTrip(t, backend.String, s); got != s || string(enc) != s {
			t.Errorf("String: %q -> %q -> %q", s, enc, got)
		}
		if got, enc := roundTrip(t, backend.Bytes, []byte(s)); string(got) != s || string(enc) != s {
			t.Errorf("Bytes: %q -> %q -> %q", s, enc, got)
		}
	}
	src := []byte("mutable")
	got := must(backend.Bytes.Decode(src)).in(t)
	src[0] = 'X'
	if string(got) != "mutable" {
		t.Fatalf("Bytes.Decode kept its input: %q", got)
	}
	for _, c := range []any{backend.String, backend.Bytes} {
		if _, ok := c.(backend.FixedSizer); ok {
			t.Errorf("%T claims a fixed size", c)
		}
	}
}

// TestCodec_FixedSizes checks the fixed sizes the built-in codecs claim.
func TestCodec_FixedSizes(t *testing.T) {
	for c, want := range map[any]int{
		backend.Int64: 8, backend.Int32: 4, backend.Uint64: 8, backend.Float64: 8, backend.Bool: 1, backend.Void: 0,
	} {
		f, ok := c.(backend.FixedSizer)
		if !ok || f.FixedSize() != want {
			t.Errorf("%T: FixedSize = %v (%v), want %d", c, f, ok, want)
		}
	}
	if _, enc := roundTrip(t, backend.Void, backend.VoidNamespace{}); len(enc) != 0 {
		t.Errorf("Void encodes to %x", enc)
	}
}

// TestCodec_NamesAreDistinct checks that every built-in codec has its own
// non-empty name (names are stored and compared on registration).
func TestCodec_NamesAreDistinct(t *testing.T) {
	names := []string{backend.Int64.Name(), backend.Int32.Name(), backend.Uint64.Name(), backend.Float64.Name(),
		backend.Bool.Name(), backend.String.Name(), backend.Bytes.Name(), backend.Void.Name(),
		backend.JSON[int]().Name(), backend.JSON[string]().Name(), backend.JSON[avgAcc]().Name()}
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			t.Errorf("codec name %q is empty or repeated", n)
		}
		seen[n] = true
	}
	if n := backend.JSON[avgAcc]().Name(); !strings.Contains(n, "avgAcc") {
		t.Errorf("JSON codec name %q does not name the Go type", n)
	}
}

// TestCodec_DecodeWrongSize checks that the fixed-size codecs reject input
// of another length, and Bool a byte other than 0 and 1, with ErrCorrupt.
func TestCodec_DecodeWrongSize(t *testing.T) {
	three := []byte{1, 2, 3}
	errs := map[string]error{
		"int64":     errOf(backend.Int64.Decode(three)),
		"int64/9":   errOf(backend.Int64.Decode(make([]byte, 9))),
		"int64/0":   errOf(backend.Int64.Decode(nil)),
		"int32":     errOf(backend.Int32.Decode(three)),
		"uint64":    errOf(backend.Uint64.Decode(three)),
		"float64":   errOf(backend.Float64.Decode(three)),
		"bool/2":    errOf(backend.Bool.Decode([]byte{2})),
		"bool/00":   errOf(backend.Bool.Decode([]byte{0, 0})),
		"bool/0":    errOf(backend.Bool.Decode(nil)),
		"void":      errOf(backend.Void.Decode([]byte{0})),
		"json":      errOf(backend.JSON[avgAcc]().Decode([]byte("{"))),
		"json/type": errOf(backend.JSON[avgAcc]().Decode([]byte(`"a string"`))),
	}
	for name, err := range errs {
		if !errors.Is(err, backend.ErrCorrupt) {
			t.Errorf("%s: Decode error %v does not wrap ErrCorrupt", name, err)
		}
	}
}

// TestCodec_JSON checks the JSON codec on a struct and that an
// unencodable value is an error, not a panic.
func TestCodec_JSON(t *testing.T) {
	c := backend.JSON[avgAcc]()
	if got, _ := roundTrip(t, c, avgAcc{Sum: -3, Count: 9}); got != (avgAcc{Sum: -3, Count: 9}) {
		t.Fatalf("JSON round trip = %+v", got)
	}
	if _, err := backend.JSON[float64]().Append(nil, math.NaN()); err == nil {
		t.Fatal("JSON encoded NaN")
	}
}

// TestCodec_LyingKeyCodec checks that a key codec claiming 8 bytes but
// writing 3 makes SetCurrentKey fail with ErrInvalidArgument, leaving no
// current key, instead of writing ambiguous keys or panicking.
func TestCodec_LyingKeyCodec(t *testing.T) {
	b := MustOpenK(t, lyingCodec{short: func(k int64) bool { return k < 0 }})
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	setKey(t, b, 5)
	noErr(t, v.Update(5))
	err := b.SetCurrentKey(-5)
	wantErr(t, err, backend.ErrInvalidArgument)
	if _, ok := b.CurrentKey(); ok {
		t.Fatal("current key set after a bad key encoding")
	}
	wantErr(t, v.Update(1), backend.ErrNoCurrentKey)
	setKey(t, b, 5)
	wantValue(t, v, 5)
}

// TestCodec_KeyCodecAppendError checks that a key the codec cannot encode
// fails SetCurrentKey with the codec's error.
func TestCodec_KeyCodecAppendError(t *testing.T) {
	b := MustOpenK(t, pickyCodec{})
	wantErr(t, b.SetCurrentKey(13), errAppend)
	if _, ok := b.CurrentKey(); ok {
		t.Fatal("current key set after an encoding error")
	}
}

// TestCodec_LyingNamespaceCodec checks that a namespace codec claiming 8
// bytes but writing 3 makes SetCurrentNamespace fail with
// ErrInvalidArgument and keep the previous namespace, and makes
// MergeNamespaces fail without writing.
func TestCodec_LyingNamespaceCodec(t *testing.T) {
	b := MustOpen(t)
	ns := lyingCodec{short: func(n int64) bool { return n < 0 }}
	v := must(backend.GetValueNS[string, int64](b, ns, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	l := must(backend.GetListNS[string, int64](b, ns, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64})).in(t)
	setKey(t, b, "k")
	noErr(t, v.SetCurrentNamespace(3))
	noErr(t, v.Update(3))
	wantErr(t, v.SetCurrentNamespace(-3), backend.ErrInvalidArgument)
	if got := v.CurrentNamespace(); got != 3 {
		t.Fatalf("CurrentNamespace = %d after a refused change, want 3", got)
	}
	wantValue(t, v, 3)

	noErr(t, l.SetCurrentNamespace(1))
	noErr(t, l.Add(1))
	wantErr(t, l.MergeNamespaces(2, 1, -1), backend.ErrInvalidArgument)
	wantErr(t, l.MergeNamespaces(-2, 1), backend.ErrInvalidArgument)
	wantList(t, l, []int64{1})
}

// TestCodec_ValueAppendError checks that a value the codec cannot encode
// fails Update with the codec's error wrapped, writing nothing.
func TestCodec_ValueAppendError(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: pickyCodec{}})).in(t)
	j := must(backend.GetValue(b, backend.ValueDescriptor[float64]{Name: "j", Codec: backend.JSON[float64]()})).in(t)
	setKey(t, b, "k")
	noErr(t, v.Update(1))
	err := v.Update(13)
	wantErr(t, err, errAppend)
	if !strings.Contains(err.Error(), `"v"`) {
		t.Errorf("error %q does not name the state", err)
	}
	wantValue(t, v, 1)
	if err := j.Update(math.NaN()); err == nil {
		t.Fatal("Update(NaN) with a JSON codec succeeded")
	}
	wantNoValue(t, j)
}

// TestCodec_ValueDecodeError checks that stored bytes the codec cannot
// decode make Get fail with ErrCorrupt wrapping the codec's error, and
// that the state can still be overwritten.
func TestCodec_ValueDecodeError(t *testing.T) {
	b := MustOpen(t)
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: pickyCodec{}})).in(t)
	setKey(t, b, "k")
	noErr(t, v.Update(666))
	_, ok, err := v.Get()
	wantErr(t, err, backend.ErrCorrupt)
	wantErr(t, err, errDecode)
	if ok {
		t.Fatal("Get reported a value with its error")
	}
	noErr(t, v.Update(7))
	wantValue(t, v, 7)
}

// TestCodec_StoredBytesOfWrongSize checks that bytes stored by one codec
// and read by a codec of the same name but another size (as after a codec
// change that kept its name) fail with ErrCorrupt.
func TestCodec_StoredBytesOfWrongSize(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	v := must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	setKey(t, b, "k")
	noErr(t, v.Update(1))
	noErr(t, b.Close())
	overwriteRaw(t, dir, singleStateKey(t, dir), []byte{1, 2, 3})

	b = MustOpen(t, inDir(dir))
	v = must(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})).in(t)
	setKey(t, b, "k")
	_, _, err := v.Get()
	wantErr(t, err, backend.ErrCorrupt)
}
