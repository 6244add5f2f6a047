package nexmark

import (
	"errors"
	"reflect"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	g := New(Config{Seed: 3})
	var buf []byte
	for range 500 {
		e := g.Next()
		buf = AppendEvent(buf[:0], &e)
		got, err := DecodeEvent(buf)
		if err != nil {
			t.Fatalf("event %d: %v", e.N, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("event %d: got %+v, want %+v", e.N, got, e)
		}
		for cut := range len(buf) {
			if _, err := DecodeEvent(buf[:cut]); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("event %d cut at %d: err = %v", e.N, cut, err)
			}
		}
	}
	if _, err := DecodeEvent(append(buf, 0)); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	g := New(Config{Seed: 1})
	for range 3 {
		e := g.Next()
		f.Add(AppendEvent(nil, &e))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			return
		}
		again, err := DecodeEvent(AppendEvent(nil, &e))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("%x decoded as %+v, which re-encoded decodes as %+v, %v", b, e, again, err)
		}
	})
}
