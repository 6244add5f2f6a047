package window

import (
	"fmt"
	"math"

	"github.com/pebblestate/pebblestate/backend"
)

type assignerKind uint8

const (
	tumbling assignerKind = iota + 1
	sliding
	session
)

// Assigner assigns each element, by its timestamp, to the event-time
// windows it belongs to. Build one with Tumbling, Sliding or Session; the
// zero Assigner is invalid. Sizes, slides, offsets and gaps are in the
// unit of the timestamps.
type Assigner struct {
	kind   assignerKind
	size   int64 // tumbling and sliding
	slide  int64 // sliding
	offset int64 // tumbling and sliding
	gap    int64 // session
}

// Tumbling returns an assigner of back-to-back windows of length size:
// [offset + k*size, offset + (k+1)*size) for every integer k, like Flink's
// TumblingEventTimeWindows.of(size, offset). It needs size > 0 and
// |offset| < size (New checks).
func Tumbling(size, offset int64) Assigner {
	return Assigner{kind: tumbling, size: size, slide: size, offset: offset}
}

// Sliding returns an assigner of windows of length size starting every
// slide: [offset + k*slide, offset + k*slide + size), so an element is in
// about size/slide windows, like Flink's SlidingEventTimeWindows.of(size,
// slide, offset). It needs size > 0, slide > 0 and |offset| < slide (New
// checks).
func Sliding(size, slide, offset int64) Assigner {
	return Assigner{kind: sliding, size: size, slide: slide, offset: offset}
}

// Session returns an assigner of session windows: each element starts the
// window [ts, ts+gap), and windows of one key that overlap or touch merge
// into one, so a session ends after a gap without elements, like Flink's
// EventTimeSessionWindows.withGap(gap). It needs gap > 0 (New checks).
func Session(gap int64) Assigner { return Assigner{kind: session, gap: gap} }

// Merging reports whether the assigner's windows merge (session windows).
func (a Assigner) Merging() bool { return a.kind == session }

// String describes the assigner, as tumbling(size=10,offset=0).
func (a Assigner) String() string {
	switch a.kind {
	case tumbling:
		return fmt.Sprintf("tumbling(size=%d,offset=%d)", a.size, a.offset)
	case sliding:
		return fmt.Sprintf("sliding(size=%d,slide=%d,offset=%d)", a.size, a.slide, a.offset)
	case session:
		return fmt.Sprintf("session(gap=%d)", a.gap)
	}
	return "invalid assigner"
}

// validate checks the assigner's parameters.
func (a Assigner) validate() error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s: %s", backend.ErrInvalidArgument, a, why)
	}
	switch a.kind {
	case tumbling, sliding:
		if a.size <= 0 {
			return bad("size must be positive")
		}
		if a.slide <= 0 {
			return bad("slide must be positive")
		}
		if a.offset <= -a.slide || a.offset >= a.slide {
			return bad("the offset's absolute value must be less than the slide")
		}
	case session:
		if a.gap <= 0 {
			return bad("gap must be positive")
		}
	default:
		return bad("use Tumbling, Sliding or Session")
	}
	return nil
}

// Assign appends to dst the windows an element at timestamp ts belongs
// to and returns the result: one window for tumbling and session
// assigners, the windows by descending start for sliding ones. A
// timestamp so close to the ends of int64 that a window would not fit is
// an error wrapping backend.ErrInvalidArgument.
func (a Assigner) Assign(dst []Window, ts int64) ([]Window, error) {
	if err := a.validate(); err != nil {
		return dst, err
	}
	tooFar := func() error {
		return fmt.Errorf("%w: %s: timestamp %d: window does not fit in int64", backend.ErrInvalidArgument, a, ts)
	}
	if a.kind == session {
		if ts > math.MaxInt64-a.gap {
			return dst, tooFar()
		}
		return append(dst, Window{Start: ts, End: ts + a.gap}), nil
	}
	// The last window start at or before ts: ts - ((ts - offset) mod slide),
	// computed without overflowing.
	r := (ts%a.slide - a.offset%a.slide) % a.slide
	if r < 0 {
		r += a.slide
	}
	if ts < math.MinInt64+r {
		return dst, tooFar()
	}
	last := ts - r
	if last > math.MaxInt64-a.size {
		return dst, tooFar()
	}
	for start := last; ts-start < a.size; start -= a.slide {
		dst = append(dst, Window{Start: start, End: start + a.size})
		if start < math.MinInt64+a.slide {
			break
		}
	}
	return dst, nil
}
