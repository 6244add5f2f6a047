package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/checkpoint"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// TimerServiceName is the name of the timer service a harness registers
// in its backend for the function's timers (a state name like any other).
const TimerServiceName = "harness-timers"

// Options configure a harness. The zero value is a harness on every key
// group of the default max parallelism, at processing time 0.
type Options struct {
	// Backend are the options of the harness's backend (of each, in a
	// group). Dir defaults to a new directory of tb.TempDir() (a group
	// puts subtask i in Dir/subtask-<i>). Clock, if set, must be a
	// *ttl.ManualClock; by default the harness makes one at
	// ProcessingTime, and SetProcessingTime moves it. A restore takes
	// Operator, MaxParallelism and KeyGroupAssigner from the snapshot.
	Backend backend.Options

	// ProcessingTime is the processing time, in Unix milliseconds, a
	// harness starts at when it makes its clock. Default: 0.
	ProcessingTime int64

	// CheckpointDir is the checkpoint root Checkpoint writes to. Default:
	// a new directory of tb.TempDir(). Every checkpoint is kept, so any
	// Snapshot taken stays restorable until the test ends.
	CheckpointDir string
}

// Harness runs one Function on one real backend, like Flink's keyed
// one-input operator test harness: it feeds elements with keys and
// timestamps, advances the watermark and the processing time (firing
// timers), collects what the function emits and which timers fired, takes
// checkpoints and restores from them. It owns the backend's key groups
// (Options.Backend.KeyGroups, all by default); a Group spreads keys over
// several harnesses.
//
// Every method fails the test (tb.Fatal) on an error, but
// ProcessElementErr, which returns the function's. A harness is closed
// when the test ends (tb.Cleanup), or by Close. Like a backend, it is used
// from one goroutine, the test's.
type Harness[K, IN, OUT any] struct {
	*core[K, OUT]
	fn Function[K, IN, OUT]
}

// core is what a harness holds besides its function; a Context reaches it.
type core[K, OUT any] struct {
	tb       testing.TB
	b        *backend.Backend[K]
	timers   *backend.TimerService[K, backend.VoidNamespace]
	clock    *ttl.ManualClock
	ckpt     *checkpointer
	ckptDir  string
	operator string
	// watermark is the latest watermark; it is set before timers fire, so
	// that OnTimer sees the watermark that fired it, as in Flink.
	watermark int64
	out       []Record[OUT]
	fired     []FiredTimer[K]
	group     *groupLog[K, OUT] // the group's log, if in one
	closed    bool
	ctx       Context[K, OUT]
	fireFunc  func(TimeDomain) func(K, backend.VoidNamespace, int64) error
	bound     []Timers[K, OUT] // the function's own timer services
}

// New opens a harness for fn with keys encoded by keyCodec, on a new
// backend.
func New[K, IN, OUT any](tb testing.TB, keyCodec backend.Codec[K], fn Function[K, IN, OUT], opts Options) *Harness[K, IN, OUT] {
	tb.Helper()
	o, clock := prepare(tb, opts, "")
	b, err := backend.Open(keyCodec, o)
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	return start(tb, fn, b, clock, o.Operator, opts.CheckpointDir)
}

// Restore opens a harness for fn on a backend restored from snap, owning
// opts.Backend.KeyGroups (by default all key groups): the operator, max
// parallelism and key-group assigner are the snapshot's.
func Restore[K, IN, OUT any](tb testing.TB, keyCodec backend.Codec[K], fn Function[K, IN, OUT], snap *Snapshot, opts Options) *Harness[K, IN, OUT] {
	tb.Helper()
	opts.Backend = fromSnapshot(tb, snap, opts.Backend)
	o, clock := prepare(tb, opts, "")
	b := restore(tb, keyCodec, snap, o)
	return start(tb, fn, b, clock, o.Operator, opts.CheckpointDir)
}

// prepare fills in the harness's defaults: a directory (sub, if not
// empty, under opts' or a temporary one) and the manual clock.
func prepare(tb testing.TB, opts Options, sub string) (backend.Options, *ttl.ManualClock) {
	tb.Helper()
	o := opts.Backend
	clock, ok := o.Clock.(*ttl.ManualClock)
	switch {
	case o.Clock == nil:
		clock = ttl.NewManualClock(time.UnixMilli(opts.ProcessingTime))
		o.Clock = clock
	case !ok:
		tb.Fatalf("harness: Options.Backend.Clock is a %T, not a *ttl.ManualClock", o.Clock)
	}
	o.EnsureDefaults() // the operator's name, for checkpoints
	if o.Dir == "" {
		o.Dir = filepath.Join(tb.TempDir(), "backend")
	}
	if sub != "" {
		o.Dir = filepath.Join(o.Dir, sub)
	}
	return o, clock
}

// fromSnapshot returns o with the operator, max parallelism and key-group
// assigner of snap's first handle (a harness's checkpoint holds one
// operator). It fails the test for an empty snapshot.
func fromSnapshot(tb testing.TB, snap *Snapshot, o backend.Options) backend.Options {
	tb.Helper()
	if snap == nil || snap.Checkpoint == nil || len(snap.Checkpoint.Handles) == 0 {
		tb.Fatal("harness: restore from an empty snapshot")
	}
	h := snap.Checkpoint.Handles[0]
	a, err := backend.ParseKeyGroupAssigner(h.KeyGroupAssigner)
	if err != nil {
		tb.Fatalf("harness: checkpoint %d: %v", snap.Checkpoint.ID, err)
	}
	o.Operator, o.MaxParallelism, o.KeyGroupAssigner = h.Operator, h.MaxParallelism, a
	return o
}

// restore restores a backend from snap with o (see fromSnapshot).
func restore[K any](tb testing.TB, keyCodec backend.Codec[K], snap *Snapshot, o backend.Options) *backend.Backend[K] {
	tb.Helper()
	b, err := backend.Restore(context.Background(), keyCodec, o, snap.Storage, snap.Checkpoint.Handles)
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	return b
}

// start registers the timer service, opens fn and arranges the cleanup.
func start[K, IN, OUT any](tb testing.TB, fn Function[K, IN, OUT], b *backend.Backend[K], clock *ttl.ManualClock, operator, ckptDir string) *Harness[K, IN, OUT] {
	tb.Helper()
	h := &Harness[K, IN, OUT]{core: &core[K, OUT]{tb: tb, b: b, clock: clock, ckptDir: ckptDir, operator: operator, watermark: math.MinInt64}, fn: fn}
	tb.Cleanup(h.close)
	var err error
	h.timers, err = backend.GetTimerService(b, backend.TimerServiceDescriptor[backend.VoidNamespace]{Name: TimerServiceName, NamespaceCodec: backend.Void})
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	if o, ok := fn.(Opener[K]); ok {
		if err := o.Open(b); err != nil {
			tb.Fatalf("harness: open the function: %v", err)
		}
	}
	if err := h.bindTimers(); err != nil {
		tb.Fatalf("harness: %v", err)
	}
	h.fireFunc = func(d TimeDomain) func(K, backend.VoidNamespace, int64) error {
		return func(key K, _ backend.VoidNamespace, ts int64) error {
			h.record(FiredTimer[K]{Key: key, Timestamp: ts, Domain: d})
			h.ctx = Context[K, OUT]{c: h.core, key: key, ts: ts}
			if err := h.fn.OnTimer(&h.ctx, ts, d); err != nil {
				return fmt.Errorf("OnTimer(%v, %d, %v): %w", key, ts, d, err)
			}
			return nil
		}
	}
	return h
}

// ProcessElement hands the function value with key and timestamp ts,
// failing the test if the key is not in the harness's key groups or the
// function returns an error.
func (h *Harness[K, IN, OUT]) ProcessElement(key K, value IN, ts int64) {
	h.tb.Helper()
	if err := h.ProcessElementErr(key, value, ts); err != nil {
		h.tb.Fatalf("harness: %v", err)
	}
}

// ProcessElementErr is ProcessElement returning the error (the function's,
// or backend.ErrKeyGroupOutOfRange for a key of other key groups) instead
// of failing the test.
func (h *Harness[K, IN, OUT]) ProcessElementErr(key K, value IN, ts int64) error {
	h.tb.Helper()
	h.live()
	if err := h.b.SetCurrentKey(key); err != nil {
		return fmt.Errorf("element of key %v: %w", key, err)
	}
	h.ctx = Context[K, OUT]{c: h.core, key: key, ts: ts}
	if err := h.fn.ProcessElement(&h.ctx, value); err != nil {
		return fmt.Errorf("ProcessElement(%v, %d): %w", key, ts, err)
	}
	return nil
}

// ProcessWatermark advances the watermark to wm, firing every event-time
// timer at or before it in timestamp order (and those the timers register
// that are due too): Context's, then those of the function's own timer
// services (TimerOwner).
func (h *Harness[K, IN, OUT]) ProcessWatermark(wm int64) {
	h.tb.Helper()
	h.live()
	h.watermark = max(h.watermark, wm)
	if err := h.advanceTime(EventTime, wm); err != nil {
		h.tb.Fatalf("harness: watermark %d: %v", wm, err)
	}
}

// SetProcessingTime moves the processing time (the manual clock, which is
// also the backend's TTL clock) to ms, Unix milliseconds, and fires every
// processing-time timer due by then. Time never goes back: an earlier ms
// fails the test.
func (h *Harness[K, IN, OUT]) SetProcessingTime(ms int64) {
	h.tb.Helper()
	h.live()
	if now := h.clock.Now().UnixMilli(); ms < now {
		h.tb.Fatalf("harness: processing time %d is before the current %d", ms, now)
	}
	h.clock.Set(time.UnixMilli(ms))
	h.fireProcessingTime()
}

// fireProcessingTime fires the processing-time timers due by the clock,
// Context's and those of the function's own timer services.
func (h *Harness[K, IN, OUT]) fireProcessingTime() {
	h.tb.Helper()
	if err := h.advanceTime(ProcessingTime, h.clock.Now().UnixMilli()); err != nil {
		h.tb.Fatalf("harness: processing time %d: %v", h.clock.Now().UnixMilli(), err)
	}
}

// ProcessingTime returns the current processing time in Unix
// milliseconds.
func (h *Harness[K, IN, OUT]) ProcessingTime() int64 { return h.clock.Now().UnixMilli() }

// Watermark returns the current watermark, math.MinInt64 before the
// first.
func (h *Harness[K, IN, OUT]) Watermark() int64 { return h.watermark }

// Output returns what the function emitted since the harness opened (or
// the last ClearOutput), in order.
func (h *Harness[K, IN, OUT]) Output() []Record[OUT] { return append([]Record[OUT](nil), h.out...) }

// OutputValues returns the values of Output.
func (h *Harness[K, IN, OUT]) OutputValues() []OUT { return values(h.out) }

// FiredTimers returns the timers that fired since the harness opened (or
// the last ClearOutput), in the order they fired.
func (h *Harness[K, IN, OUT]) FiredTimers() []FiredTimer[K] {
	return append([]FiredTimer[K](nil), h.fired...)
}

// ClearOutput forgets the output and fired timers collected so far.
func (h *Harness[K, IN, OUT]) ClearOutput() { h.out, h.fired = nil, nil }

// Backend returns the harness's backend, to read state for assertions
// (SetCurrentKey first, or use the harness's SetCurrentKey).
func (h *Harness[K, IN, OUT]) Backend() *backend.Backend[K] { return h.b }

// SetCurrentKey makes key the backend's current key, to read its state,
// failing the test if the harness does not own it.
func (h *Harness[K, IN, OUT]) SetCurrentKey(key K) {
	h.tb.Helper()
	if err := h.b.SetCurrentKey(key); err != nil {
		h.tb.Fatalf("harness: %v", err)
	}
}

// KeyGroups returns the key groups the harness owns.
func (h *Harness[K, IN, OUT]) KeyGroups() backend.KeyGroupRange { return h.b.KeyGroups() }

// Checkpoint takes a checkpoint of the harness's backend through a
// checkpoint.Coordinator into Options.CheckpointDir and returns it, to
// restore from with Restore or RestoreGroup. Timers are in it; the
// watermark and the output are not.
func (h *Harness[K, IN, OUT]) Checkpoint() *Snapshot {
	h.tb.Helper()
	h.live()
	if h.ckpt == nil {
		h.ckpt = newCheckpointer(h.tb, h.ckptDir, h.operator, []checkpoint.KeyedBackend{h.b})
	}
	return h.ckpt.checkpoint(h.tb)
}

// Close closes the harness's coordinator and backend, failing the test if
// that fails; later calls do nothing. The test's end closes it too.
func (h *Harness[K, IN, OUT]) Close() {
	h.tb.Helper()
	if err := h.shutdown(); err != nil {
		h.tb.Fatalf("harness: close: %v", err)
	}
}

// close is Close as a cleanup, which reports with Errorf.
func (h *core[K, OUT]) close() {
	if err := h.shutdown(); err != nil {
		h.tb.Errorf("harness: close: %v", err)
	}
}

// shutdown closes the coordinator, then the backend, once.
func (h *core[K, OUT]) shutdown() error {
	if h.closed {
		return nil
	}
	h.closed = true
	var errs []error
	if h.ckpt != nil {
		errs = append(errs, h.ckpt.close())
	}
	return errors.Join(append(errs, h.b.Close())...)
}

// live fails the test if the harness is closed.
func (h *core[K, OUT]) live() {
	h.tb.Helper()
	if h.closed {
		h.tb.Fatal("harness: used after Close")
	}
}

// emit records an output.
func (h *core[K, OUT]) emit(r Record[OUT]) {
	h.out = append(h.out, r)
	if h.group != nil {
		h.group.out = append(h.group.out, r)
	}
}

// record records a fired timer.
func (h *core[K, OUT]) record(f FiredTimer[K]) {
	h.fired = append(h.fired, f)
	if h.group != nil {
		h.group.fired = append(h.group.fired, f)
	}
}

func values[OUT any](rs []Record[OUT]) []OUT {
	out := make([]OUT, len(rs))
	for i, r := range rs {
		out[i] = r.Value
	}
	return out
}

// Snapshot is a completed checkpoint a harness or group took: restore
// from it with Restore or RestoreGroup, at any parallelism.
type Snapshot struct {
	// Storage is the checkpoint root it is in.
	Storage snapshot.Storage
	// Checkpoint is its metadata: the handles of every backend.
	Checkpoint *snapshot.Checkpoint
}

// ID returns the checkpoint's id.
func (s *Snapshot) ID() int64 { return s.Checkpoint.ID }
