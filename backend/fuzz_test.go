package backend_test

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/pebblestate/pebblestate/backend"
)

// Fuzz targets of the built-in codecs. Their stored bytes must never change
// and decide key groups, so each must round-trip, decode arbitrary bytes
// without panicking (an error, or a value that encodes back to the same
// bytes), and, for the number codecs used as map keys, keep numeric order.
// The seed corpora run under plain go test; run one for longer with
//
//	go test ./backend -run '^$' -fuzz FuzzCodecFloat64 -fuzztime 30s

// fzRoundTrip checks Decode(Append(prefix, v)[len(prefix):]) == v with eq,
// that Append only appends, and that a fixed-size codec keeps its size.
func fzRoundTrip[T any](t *testing.T, c backend.Codec[T], v T, eq func(a, b T) bool) []byte {
	t.Helper()
	prefix := []byte("prefix")
	out, err := c.Append(append([]byte(nil), prefix...), v)
	if err != nil {
		t.Fatalf("%s: Append(%v): %v", c.Name(), v, err)
	}
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("%s: Append(%v) changed dst: %x", c.Name(), v, out)
	}
	enc := out[len(prefix):]
	if fs, ok := c.(backend.FixedSizer); ok && len(enc) != fs.FixedSize() {
		t.Fatalf("%s: Append(%v) produced %d bytes, FixedSize is %d", c.Name(), v, len(enc), fs.FixedSize())
	}
	// Decode must not depend on src after it returns.
	src := append([]byte(nil), enc...)
	got, err := c.Decode(src)
	if err != nil {
		t.Fatalf("%s: Decode(Append(%v) = %x): %v", c.Name(), v, enc, err)
	}
	for i := range src {
		src[i] ^= 0xff
	}
	if !eq(got, v) {
		t.Fatalf("%s: Decode(Append(%v) = %x) = %v", c.Name(), v, enc, got)
	}
	again, err := c.Append(nil, v)
	if err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("%s: Append(%v) is not deterministic: %x then %x (%v)", c.Name(), v, enc, again, err)
	}
	return enc
}

// fzDecodeArbitrary checks that Decode of arbitrary bytes does not panic and
// either fails with ErrCorrupt or gives a value that encodes back to the
// same bytes (the codec has one encoding per value).
func fzDecodeArbitrary[T any](t *testing.T, c backend.Codec[T], src []byte) {
	t.Helper()
	v, err := c.Decode(src)
	if err != nil {
		if !errors.Is(err, backend.ErrCorrupt) {
			t.Fatalf("%s: Decode(%x) error %v does not wrap ErrCorrupt", c.Name(), src, err)
		}
		return
	}
	enc, err := c.Append(nil, v)
	if err != nil {
		t.Fatalf("%s: Decode(%x) = %v, which does not encode: %v", c.Name(), src, v, err)
	}
	if !bytes.Equal(enc, src) {
		t.Fatalf("%s: Decode(%x) = %v, which encodes as %x", c.Name(), src, v, enc)
	}
}

// fzCheckOrder checks that the byte order of encodings matches cmpV.
func fzCheckOrder[T any](t *testing.T, c backend.Codec[T], a, b T, cmpV func(a, b T) int) {
	t.Helper()
	ea, _ := c.Append(nil, a)
	eb, _ := c.Append(nil, b)
	if got, want := bytes.Compare(ea, eb), cmpV(a, b); got != want {
		t.Fatalf("%s: order of %v (%x) and %v (%x): bytes compare %d, values %d", c.Name(), a, ea, b, eb, got, want)
	}
}

func eqComparable[T comparable](a, b T) bool { return a == b }

func FuzzCodecInt64(f *testing.F) {
	for _, v := range []int64{0, 1, -1, math.MinInt64, math.MaxInt64, 1 << 32, -1 << 40} {
		f.Add(v, v+1, []byte{})
	}
	f.Add(int64(5), int64(-5), []byte{0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Add(int64(7), int64(7), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, a, b int64, raw []byte) {
		fzRoundTrip(t, backend.Int64, a, eqComparable)
		fzRoundTrip(t, backend.Int64, b, eqComparable)
		fzCheckOrder(t, backend.Int64, a, b, cmp.Compare[int64])
		fzDecodeArbitrary(t, backend.Int64, raw)
	})
}

func FuzzCodecInt32(f *testing.F) {
	for _, v := range []int32{0, 1, -1, math.MinInt32, math.MaxInt32} {
		f.Add(v, v-1, []byte{})
	}
	f.Add(int32(3), int32(-3), []byte{0x80, 0, 0, 0})
	f.Add(int32(3), int32(3), []byte{0x80, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, a, b int32, raw []byte) {
		fzRoundTrip(t, backend.Int32, a, eqComparable)
		fzRoundTrip(t, backend.Int32, b, eqComparable)
		fzCheckOrder(t, backend.Int32, a, b, cmp.Compare[int32])
		fzDecodeArbitrary(t, backend.Int32, raw)
	})
}

func FuzzCodecUint64(f *testing.F) {
	for _, v := range []uint64{0, 1, math.MaxUint64, 1 << 63, 1<<63 - 1} {
		f.Add(v, v+1, []byte{})
	}
	f.Add(uint64(9), uint64(10), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, a, b uint64, raw []byte) {
		fzRoundTrip(t, backend.Uint64, a, eqComparable)
		fzRoundTrip(t, backend.Uint64, b, eqComparable)
		fzCheckOrder(t, backend.Uint64, a, b, cmp.Compare[uint64])
		fzDecodeArbitrary(t, backend.Uint64, raw)
	})
}

// fzFloatOrder is the order float64 encodings follow: numeric order, with
// -0 below +0. NaNs are excluded by the caller.
func fzFloatOrder(a, b float64) int {
	if a == 0 && b == 0 {
		// -0 (sign bit set) sorts first.
		sa, sb := math.Signbit(a), math.Signbit(b)
		switch {
		case sa == sb:
			return 0
		case sa:
			return -1
		}
		return 1
	}
	return cmp.Compare(a, b)
}

func FuzzCodecFloat64(f *testing.F) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1, math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, 0.1, -0.1, 1e300, -1e-300}
	for i, v := range vals {
		f.Add(v, vals[(i+1)%len(vals)], []byte{})
	}
	f.Add(math.NaN(), 1.0, []byte{0x7f, 0xf0, 0, 0, 0, 0, 0, 0})
	f.Add(math.Float64frombits(0xfff8000000000001), -2.0, []byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(2.0, 3.0, []byte{0x80})
	f.Fuzz(func(t *testing.T, a, b float64, raw []byte) {
		bitsEq := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
		// Every bit pattern, NaN payloads and -0 included, survives.
		fzRoundTrip(t, backend.Float64, a, bitsEq)
		fzRoundTrip(t, backend.Float64, b, bitsEq)
		if !math.IsNaN(a) && !math.IsNaN(b) {
			fzCheckOrder(t, backend.Float64, a, b, fzFloatOrder)
			// a < b iff enc(a) < enc(b), as the brief for map keys says.
			ea, _ := backend.Float64.Append(nil, a)
			eb, _ := backend.Float64.Append(nil, b)
			if (a < b) != (bytes.Compare(ea, eb) < 0) && !(a == 0 && b == 0) {
				t.Fatalf("float64: %v < %v is %v but encodings compare %d", a, b, a < b, bytes.Compare(ea, eb))
			}
		}
		// Arbitrary 8-byte inputs decode to the float with those bits.
		v, err := backend.Float64.Decode(raw)
		if err != nil {
			if len(raw) == 8 || !errors.Is(err, backend.ErrCorrupt) {
				t.Fatalf("float64: Decode(%x): %v", raw, err)
			}
			return
		}
		enc, _ := backend.Float64.Append(nil, v)
		if !bytes.Equal(enc, raw) {
			t.Fatalf("float64: Decode(%x) = %v, which encodes as %x", raw, v, enc)
		}
	})
}

func FuzzCodecBool(f *testing.F) {
	f.Add(true, []byte{})
	f.Add(false, []byte{0})
	f.Add(true, []byte{1})
	f.Add(true, []byte{2})
	f.Add(false, []byte{0, 1})
	f.Fuzz(func(t *testing.T, v bool, raw []byte) {
		fzRoundTrip(t, backend.Bool, v, eqComparable)
		fzCheckOrder(t, backend.Bool, false, true, func(a, b bool) int { return -1 })
		fzDecodeArbitrary(t, backend.Bool, raw)
	})
}

func FuzzCodecString(f *testing.F) {
	f.Add("", []byte{})
	f.Add("hello", []byte("hello"))
	f.Add("\x00\xff", []byte{0xff, 0xfe})
	f.Add("日本", []byte("\xe6\x97"))
	f.Fuzz(func(t *testing.T, s string, raw []byte) {
		fzRoundTrip(t, backend.String, s, eqComparable)
		fzDecodeArbitrary(t, backend.String, raw)
		// Byte order is string order.
		fzCheckOrder(t, backend.String, s, string(raw), cmp.Compare[string])
		// The decoded string does not alias src.
		src := append([]byte(nil), raw...)
		got, _ := backend.String.Decode(src)
		for i := range src {
			src[i]++
		}
		if got != string(raw) {
			t.Fatalf("string: decoded value changed with its source: %q", got)
		}
	})
}

func FuzzCodecBytes(f *testing.F) {
	f.Add([]byte{}, []byte(nil))
	f.Add([]byte("abc"), []byte{0})
	f.Add([]byte{0xff, 0}, []byte("xyz"))
	f.Fuzz(func(t *testing.T, v, raw []byte) {
		fzRoundTrip(t, backend.Bytes, v, bytes.Equal)
		fzDecodeArbitrary(t, backend.Bytes, raw)
		// The decoded slice is a copy: the codec contract says src is only
		// valid during Decode.
		src := append([]byte(nil), raw...)
		got, _ := backend.Bytes.Decode(src)
		for i := range src {
			src[i]++
		}
		if !bytes.Equal(got, raw) {
			t.Fatalf("bytes: decoded value aliases its source: %x, want %x", got, raw)
		}
		if got == nil {
			t.Fatalf("bytes: Decode(%x) = nil", raw)
		}
	})
}

// fzJSONRecord is the struct the JSON codec is fuzzed with.
type fzJSONRecord struct {
	ID    int64           `json:"id"`
	Name  string          `json:"name"`
	Score float64         `json:"score"`
	OK    bool            `json:"ok"`
	Tags  []string        `json:"tags"`
	Attrs map[string]int  `json:"attrs"`
	Raw   []byte          `json:"raw"`
	Next  *fzJSONRecord   `json:"next,omitempty"`
	Small uint8           `json:"small"`
	Set   map[string]bool `json:"set,omitempty"`
}

func FuzzCodecJSON(f *testing.F) {
	f.Add(int64(1), "alice", 1.5, true, []byte("raw"), []byte(`{"id":2,"name":"bob"}`))
	f.Add(int64(math.MinInt64), "", math.Copysign(0, -1), false, []byte{}, []byte(`null`))
	f.Add(int64(math.MaxInt64), "x\"y\\z", 1e308, true, []byte{0xff}, []byte(`{"id":1e3}`))
	f.Add(int64(0), "tab\tnl\n", 5e-324, false, []byte(nil), []byte(`{"tags":["a",null],"attrs":{"k":1},"next":{"id":3}}`))
	f.Add(int64(7), "ok", 2.0, false, []byte(nil), []byte(`{"small":300}`))
	f.Add(int64(7), "ok", 2.0, false, []byte(nil), []byte("{\"name\":\"\xff\"}"))
	f.Add(int64(7), "ok", 2.0, false, []byte(nil), []byte(`[1,2`))
	c := backend.JSON[fzJSONRecord]()
	f.Fuzz(func(t *testing.T, id int64, name string, score float64, ok bool, raw, doc []byte) {
		v := fzJSONRecord{ID: id, Name: name, Score: score, OK: ok, Raw: raw,
			Tags: []string{name, ""}, Attrs: map[string]int{"n": int(id % 1000)}, Next: &fzJSONRecord{ID: -id}}
		if math.IsNaN(score) || math.IsInf(score, 0) {
			// encoding/json cannot encode these: Append must fail, not
			// write something undecodable.
			if _, err := c.Append(nil, v); err == nil {
				t.Fatalf("json: Append of score %v succeeded", score)
			}
			return
		}
		if !utf8.ValidString(name) {
			// encoding/json replaces invalid UTF-8 with U+FFFD, so the
			// JSON codec does not round-trip such strings (encoding/json's
			// documented behaviour; use Bytes or String for raw bytes).
			v.Name, v.Tags = "", nil
		}
		// DeepEqual compares floats with ==, to which -0 and +0 are equal:
		// the sign of a zero score is compared apart.
		fzRoundTrip(t, c, v, func(a, b fzJSONRecord) bool {
			return reflect.DeepEqual(a, b) && math.Signbit(a.Score) == math.Signbit(b.Score)
		})

		// Arbitrary bytes: no panic; an error wraps ErrCorrupt; a success
		// re-encodes to something that decodes to the same value.
		got, err := c.Decode(doc)
		if err != nil {
			if !errors.Is(err, backend.ErrCorrupt) {
				t.Fatalf("json: Decode(%q) error %v does not wrap ErrCorrupt", doc, err)
			}
			return
		}
		enc, err := c.Append(nil, got)
		if err != nil {
			t.Fatalf("json: Decode(%q) = %+v, which does not encode: %v", doc, got, err)
		}
		again, err := c.Decode(enc)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("json: Decode(%q) = %+v, re-encoded %q decodes to %+v (%v)", doc, got, enc, again, err)
		}
	})
}

// TestJSONCodecName checks that the JSON codec's name carries the Go type,
// so a state cannot be reopened with another struct.
func TestJSONCodecName(t *testing.T) {
	if a, b := backend.JSON[fzJSONRecord]().Name(), backend.JSON[struct{ X int }]().Name(); a == b {
		t.Fatalf("JSON codecs of different types share the name %q", a)
	}
}
