package harness

import (
	"fmt"

	"github.com/pebblestate/pebblestate/backend"
)

// Function is a user's keyed function, the code a harness tests: Flink's
// KeyedProcessFunction. The harness calls ProcessElement for every element
// with the element's key as the current key, and OnTimer for every timer
// that fires with the timer's key as the current key. State is read and
// written through ctx.Backend(), as in the operator the function will run
// in; timers through ctx; results go to ctx.Collect.
//
// A function that keeps state handles in fields registers them in Open
// (see Opener). Each harness calls its own function value, so a group of
// harnesses takes a constructor, not a value.
type Function[K, IN, OUT any] interface {
	// ProcessElement handles one element; ctx.Key() is its key and
	// ctx.Timestamp() its timestamp.
	ProcessElement(ctx *Context[K, OUT], in IN) error
	// OnTimer handles a timer of the current key that fired at ts, in the
	// given time domain; ctx.Timestamp() is ts.
	OnTimer(ctx *Context[K, OUT], ts int64, domain TimeDomain) error
}

// Opener is implemented by a Function that registers its states before
// the first element, as Flink's open does. The harness calls Open once,
// after opening or restoring its backend.
type Opener[K any] interface {
	Open(b *backend.Backend[K]) error
}

// TimeDomain says which time a timer fired in.
type TimeDomain uint8

// The time domains.
const (
	// EventTime timers fire when the watermark reaches them
	// (Harness.ProcessWatermark).
	EventTime TimeDomain = iota
	// ProcessingTime timers fire when the processing time reaches them
	// (Harness.SetProcessingTime).
	ProcessingTime
)

// String returns "EventTime" or "ProcessingTime".
func (d TimeDomain) String() string {
	switch d {
	case EventTime:
		return "EventTime"
	case ProcessingTime:
		return "ProcessingTime"
	}
	return fmt.Sprintf("TimeDomain(%d)", uint8(d))
}

// Record is one output of a function: the value it collected, with the
// timestamp of the element or timer it was handling.
type Record[OUT any] struct {
	Value     OUT
	Timestamp int64
}

// FiredTimer is a timer that fired: its key, timestamp and time domain,
// and for a timer of one of the function's own timer services
// (TimerOwner), the service's name and the timer's namespace.
type FiredTimer[K any] struct {
	Key       K
	Timestamp int64
	Domain    TimeDomain
	Service   string // "" for Context's timers
	Namespace any    // nil for Context's timers
}

// Context is what a Function sees while it handles an element or a timer.
// It is valid only during that call.
type Context[K, OUT any] struct {
	c   *core[K, OUT]
	key K
	ts  int64
}

// Key returns the current key: the element's or the timer's.
func (x *Context[K, OUT]) Key() K { return x.key }

// Timestamp returns the element's timestamp, or the timer's when a timer
// fires.
func (x *Context[K, OUT]) Timestamp() int64 { return x.ts }

// CurrentWatermark returns the watermark the harness last advanced to
// (while event-time timers fire, the one that fires them), or
// math.MinInt64 before the first (as after a restore: watermarks are not
// in checkpoints).
func (x *Context[K, OUT]) CurrentWatermark() int64 { return x.c.watermark }

// CurrentProcessingTime returns the processing time in Unix milliseconds:
// the harness's manual clock, which is also the backend's TTL clock.
func (x *Context[K, OUT]) CurrentProcessingTime() int64 { return x.c.clock.Now().UnixMilli() }

// Backend returns the backend whose state the function reads and writes;
// its current key is Key().
func (x *Context[K, OUT]) Backend() *backend.Backend[K] { return x.c.b }

// Collect emits out with the current timestamp.
func (x *Context[K, OUT]) Collect(out OUT) {
	x.c.emit(Record[OUT]{Value: out, Timestamp: x.ts})
}

// RegisterEventTimeTimer registers an event-time timer of the current key
// at ts; registering one that exists keeps one.
func (x *Context[K, OUT]) RegisterEventTimeTimer(ts int64) error {
	return x.c.timers.RegisterEventTimeTimer(backend.VoidNamespace{}, ts)
}

// DeleteEventTimeTimer deletes the current key's event-time timer at ts,
// if there is one.
func (x *Context[K, OUT]) DeleteEventTimeTimer(ts int64) error {
	return x.c.timers.DeleteEventTimeTimer(backend.VoidNamespace{}, ts)
}

// RegisterProcessingTimeTimer registers a processing-time timer of the
// current key at ts (Unix milliseconds).
func (x *Context[K, OUT]) RegisterProcessingTimeTimer(ts int64) error {
	return x.c.timers.RegisterProcessingTimeTimer(backend.VoidNamespace{}, ts)
}

// DeleteProcessingTimeTimer deletes the current key's processing-time
// timer at ts, if there is one.
func (x *Context[K, OUT]) DeleteProcessingTimeTimer(ts int64) error {
	return x.c.timers.DeleteProcessingTimeTimer(backend.VoidNamespace{}, ts)
}
