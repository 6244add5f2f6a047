package window_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/window"
)

// TestAssign checks tumbling and sliding windows against their
// definition, over random parameters and timestamps of both signs: the
// windows [s, s+size) with s = offset mod slide that hold ts, by
// descending start.
func TestAssign(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 0))
	for range 2000 {
		slide := 1 + rng.Int64N(20)
		size := slide
		tumbling := rng.IntN(3) == 0
		if !tumbling {
			size = 1 + rng.Int64N(50)
		}
		offset := rng.Int64N(2*slide-1) - (slide - 1)
		ts := rng.Int64N(400) - 200
		a := window.Sliding(size, slide, offset)
		if tumbling {
			a = window.Tumbling(size, offset)
		}
		got, err := a.Assign(nil, ts)
		if err != nil {
			t.Fatalf("%s.Assign(%d): %v", a, ts, err)
		}
		var want []window.Window
		for s := ts; s > ts-size; s-- {
			if (s-offset)%slide == 0 {
				want = append(want, window.Window{Start: s, End: s + size})
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s.Assign(%d) = %v, want %v", a, ts, got, want)
		}
	}
	if got, _ := window.Session(5).Assign(nil, -3); !slices.Equal(got, []window.Window{{Start: -3, End: 2}}) {
		t.Errorf("session(5).Assign(-3) = %v", got)
	}
}

// TestAssignExtremes checks that timestamps whose windows do not fit in
// int64 are errors, and those whose windows fit are assigned.
func TestAssignExtremes(t *testing.T) {
	for _, c := range []struct {
		a    window.Assigner
		ts   int64
		want []window.Window // nil: an error
	}{
		{window.Tumbling(10, 0), math.MaxInt64, nil},
		{window.Tumbling(10, 0), math.MaxInt64 - 3, nil}, // in [...800, ...810)
		{window.Tumbling(10, 0), math.MaxInt64 - 8, []window.Window{{Start: math.MaxInt64 - 17, End: math.MaxInt64 - 7}}},
		{window.Tumbling(10, 0), math.MinInt64, nil}, // in [-...810, -...800)
		{window.Tumbling(10, 0), math.MinInt64 + 8, []window.Window{{Start: math.MinInt64 + 8, End: math.MinInt64 + 18}}},
		{window.Sliding(10, 5, 0), math.MinInt64 + 30, []window.Window{{Start: math.MinInt64 + 28, End: math.MinInt64 + 38}, {Start: math.MinInt64 + 23, End: math.MinInt64 + 33}}},
		{window.Session(10), math.MaxInt64 - 10, []window.Window{{Start: math.MaxInt64 - 10, End: math.MaxInt64}}},
		{window.Session(10), math.MaxInt64 - 9, nil},
	} {
		got, err := c.a.Assign(nil, c.ts)
		if c.want == nil {
			if !errors.Is(err, backend.ErrInvalidArgument) {
				t.Errorf("%s.Assign(%d) = %v, %v; want ErrInvalidArgument", c.a, c.ts, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s.Assign(%d) = %v, %v; want %v", c.a, c.ts, got, err, c.want)
		}
	}
}

func TestAssignerInvalid(t *testing.T) {
	for _, a := range []window.Assigner{
		{},
		window.Tumbling(0, 0),
		window.Tumbling(10, 10),
		window.Tumbling(10, -10),
		window.Sliding(10, 0, 0),
		window.Sliding(0, 5, 0),
		window.Sliding(10, 5, 5),
		window.Session(0),
		window.Session(-1),
	} {
		if _, err := a.Assign(nil, 0); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Errorf("%s.Assign: %v, want ErrInvalidArgument", a, err)
		}
	}
}

// TestCodec checks that encoded windows round-trip and sort by start,
// then end.
func TestCodec(t *testing.T) {
	ws := []window.Window{
		{Start: math.MinInt64, End: -5}, {Start: -10, End: 0}, {Start: -10, End: 3},
		{Start: 0, End: 1}, {Start: 1, End: 1}, {Start: 7, End: math.MaxInt64},
	}
	var prev []byte
	for _, w := range ws {
		enc, err := window.Codec.Append(nil, w)
		if err != nil || len(enc) != 16 {
			t.Fatalf("Append(%v) = %x, %v", w, enc, err)
		}
		if got, err := window.Codec.Decode(enc); err != nil || got != w {
			t.Errorf("Decode(Append(%v)) = %v, %v", w, got, err)
		}
		if prev != nil && bytes.Compare(prev, enc) >= 0 {
			t.Errorf("%v does not sort after the window before it", w)
		}
		prev = enc
	}
	if _, err := window.Codec.Decode(make([]byte, 15)); err == nil {
		t.Error("Decode of 15 bytes succeeded")
	}
}
