package window

import (
	"fmt"
	"math"

	"github.com/pebblestate/pebblestate/backend"
)

// DefaultName is the operator name Options.Name defaults to.
const DefaultName = "window"

// Options configure an Operator, whichever function builds it. Assigner
// and Emit are required.
type Options[K, IN, OUT any] struct {
	// Name names the operator's states in the backend: "<Name>/contents"
	// (an aggregating state for New, a list state for NewList, in the
	// window namespace), "<Name>/timers" (a timer service) and, for
	// session windows, "<Name>/sessions". Two operators on one backend
	// need two names, and a restored operator must have its name, its
	// kind (New or NewList) and its Assigner; a changed assigner leaves
	// the old windows' state behind. Default: DefaultName.
	Name string

	// Assigner puts each element into its windows: Tumbling, Sliding or
	// Session.
	Assigner Assigner

	// AllowedLateness is how long after a window's end (in timestamp
	// units) its state is kept, as Flink's allowedLateness: an element for
	// a window the watermark has passed by less than this is added and the
	// window fires again at once; a later one is dropped. Default: 0.
	// It may change across a restore: windows in flight then take
	// elements until their new cleanup time, and their state is cleared
	// between that time and the later of their old and new ones.
	AllowedLateness int64

	// Emit receives each result: the key, the window and the window's
	// result. It runs on the caller's goroutine inside Process or
	// AdvanceWatermark and must not call the operator. An error stops the
	// call that emitted and is returned by it; a window whose timer fired
	// it may then not fire again, so the task should fail over to its last
	// checkpoint, as Flink's would. Required.
	Emit func(key K, w Window, result OUT) error

	// Late, if set, receives every element dropped because all its windows
	// are past their allowed lateness (Flink's late side output), after
	// Stats.LateDropped counts it. Default: nil, dropped elements are only
	// counted.
	Late func(key K, value IN, ts int64) error
}

// Stats counts an operator's work since New, in this process only (they
// are not in checkpoints, like Flink's metrics).
type Stats struct {
	Elements    uint64 // elements given to Process
	LateDropped uint64 // elements dropped: every window past its lateness
	Fired       uint64 // results emitted, late firings included
	LateFired   uint64 // results emitted at once for an element that arrived late
}

// New returns an operator that folds each window's elements with an
// aggregate function, as Flink's WindowedStream.aggregate: the window's
// state is one accumulator, encoded by accCodec, that each element is
// added to, session windows merge with fn.Merge, and a firing emits
// fn.Result. It registers the operator's states in b (or finds them, after
// a reopen or a restore). Its watermark starts at math.MinInt64. Invalid
// options are an error wrapping backend.ErrInvalidArgument.
func New[K, IN, ACC, OUT any](b *backend.Backend[K], fn backend.AggregateFunction[IN, ACC, OUT], accCodec backend.Codec[ACC], opts Options[K, IN, OUT]) (*Operator[K, IN, OUT], error) {
	o, err := newOperator(b, opts)
	if err != nil {
		return nil, err
	}
	switch {
	case fn == nil:
		return nil, o.invalid("aggregate function is nil")
	case accCodec == nil:
		return nil, o.invalid("accumulator codec is nil")
	}
	agg, err := backend.GetAggregatingNS(b, Codec, backend.AggregatingDescriptor[IN, ACC, OUT]{
		Name: o.name + "/contents", Codec: accCodec, Function: fn})
	if err != nil {
		return nil, o.wrap("register", err)
	}
	o.contents = aggContents[K, IN, ACC, OUT]{agg}
	return o, nil
}

// NewList returns an operator that keeps every element of a window, in a
// list state encoded by elemCodec, and emits them all when the window
// fires, as Flink's WindowedStream.process: in the order they were added,
// and for merged session windows, the merged windows' lists one after the
// other. Adding an element never reads the list; each firing reads it
// whole. Otherwise it is New.
func NewList[K, IN any](b *backend.Backend[K], elemCodec backend.Codec[IN], opts Options[K, IN, []IN]) (*Operator[K, IN, []IN], error) {
	o, err := newOperator(b, opts)
	if err != nil {
		return nil, err
	}
	if elemCodec == nil {
		return nil, o.invalid("element codec is nil")
	}
	list, err := backend.GetListNS(b, Codec, backend.ListDescriptor[IN]{Name: o.name + "/contents", Codec: elemCodec})
	if err != nil {
		return nil, o.wrap("register", err)
	}
	o.contents = listContents[K, IN]{list}
	return o, nil
}

// newOperator checks opts and registers the timers and sessions.
func newOperator[K, IN, OUT any](b *backend.Backend[K], opts Options[K, IN, OUT]) (*Operator[K, IN, OUT], error) {
	name := opts.Name
	if name == "" {
		name = DefaultName
	}
	o := &Operator[K, IN, OUT]{b: b, name: name, assigner: opts.Assigner, lateness: opts.AllowedLateness,
		emit: opts.Emit, late: opts.Late, wm: math.MinInt64, reg: newRegistered[K]()}
	switch {
	case b == nil:
		return nil, o.invalid("backend is nil")
	case opts.Emit == nil:
		return nil, o.invalid("Emit is nil")
	case opts.AllowedLateness < 0:
		return nil, o.invalid(fmt.Sprintf("AllowedLateness %d is negative", opts.AllowedLateness))
	}
	if err := opts.Assigner.validate(); err != nil {
		return nil, fmt.Errorf("window %q: %w", name, err)
	}
	var err error
	if o.timers, err = backend.GetTimerService(b, backend.TimerServiceDescriptor[Window]{
		Name: name + "/timers", NamespaceCodec: Codec}); err != nil {
		return nil, o.wrap("register", err)
	}
	if o.assigner.Merging() {
		if o.sessions, err = backend.GetValue(b, backend.ValueDescriptor[[]mapping]{
			Name: name + "/sessions", Codec: setCodec{}}); err != nil {
			return nil, o.wrap("register", err)
		}
	}
	return o, nil
}

func (o *Operator[K, IN, OUT]) invalid(why string) error {
	return fmt.Errorf("%w: window %q: %s", backend.ErrInvalidArgument, o.name, why)
}

// contents is a window's state: an aggregating state or a list state in
// the window namespace.
type contents[IN, OUT any] interface {
	SetCurrentNamespace(Window) error
	Add(IN) error
	result() (OUT, bool, error)
	Clear() error
	MergeNamespaces(target Window, sources ...Window) error
}

type aggContents[K, IN, ACC, OUT any] struct {
	*backend.Aggregating[K, Window, IN, ACC, OUT]
}

func (c aggContents[K, IN, ACC, OUT]) result() (OUT, bool, error) { return c.Get() }

type listContents[K, IN any] struct{ *backend.List[K, Window, IN] }

func (c listContents[K, IN]) result() ([]IN, bool, error) {
	vs, err := c.Get()
	return vs, len(vs) > 0, err
}
