package window

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/pebblestate/pebblestate/backend"
)

// Window is the event-time interval [Start, End) of a window, like
// Flink's TimeWindow. Timestamps are int64 in whatever unit the stream
// uses (Unix milliseconds, usually), the same unit as the watermark.
type Window struct {
	Start int64 // first timestamp in the window
	End   int64 // first timestamp after it
}

// MaxTimestamp returns End-1, the last timestamp in the window: the
// window fires when the watermark reaches it.
func (w Window) MaxTimestamp() int64 { return w.End - 1 }

// String formats the window as [Start,End).
func (w Window) String() string { return fmt.Sprintf("[%d,%d)", w.Start, w.End) }

// intersects reports whether w and o overlap or touch, Flink's rule for
// merging session windows: [0,5) and [5,10) merge.
func (w Window) intersects(o Window) bool { return w.Start <= o.End && w.End >= o.Start }

// cover returns the smallest window holding w and o.
func (w Window) cover(o Window) Window {
	return Window{Start: min(w.Start, o.Start), End: max(w.End, o.End)}
}

// Codec encodes a Window as the namespace of the operator's states and
// timers: 16 bytes, Start then End, each big-endian with the sign bit
// flipped, so windows sort by start, then end. Its name, "time-window",
// is recorded with every state that uses it and never changes.
var Codec backend.Codec[Window] = windowCodec{}

type windowCodec struct{}

func (windowCodec) Name() string   { return "time-window" }
func (windowCodec) FixedSize() int { return 16 }

func (windowCodec) Append(dst []byte, w Window) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, uint64(w.Start)^(1<<63))
	return binary.BigEndian.AppendUint64(dst, uint64(w.End)^(1<<63)), nil
}

func (windowCodec) Decode(src []byte) (Window, error) {
	if len(src) != 16 {
		return Window{}, fmt.Errorf("time window: %d bytes, want 16", len(src))
	}
	return decodeWindow(src), nil
}

func decodeWindow(b []byte) Window {
	return Window{
		Start: int64(binary.BigEndian.Uint64(b) ^ (1 << 63)),
		End:   int64(binary.BigEndian.Uint64(b[8:]) ^ (1 << 63)),
	}
}

// addSat returns a+b for b >= 0, or math.MaxInt64 if that overflows.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
