package window

import (
	"errors"
	"fmt"
	"math"

	"github.com/pebblestate/pebblestate/backend"
)

// Operator is an event-time window operator over one keyed backend, like
// Flink's WindowOperator with its EventTimeTrigger: elements are
// aggregated per key and window, each window fires once when the
// watermark reaches its MaxTimestamp, again for each element that arrives
// within the allowed lateness, and its state is cleared when the
// watermark passes MaxTimestamp + AllowedLateness. Processing time is not
// supported.
//
// Everything it keeps between calls is keyed state and timers in the
// backend, so a checkpoint of the backend holds it and a restore at any
// parallelism rescales it with its key groups. The watermark is not in
// the checkpoint: see AdvanceWatermark.
//
// An Operator is used from one goroutine, the backend's task goroutine,
// and sets the backend's current key: a caller that also uses the backend
// directly sets the key it wants after each call.
type Operator[K, IN, OUT any] struct {
	b        *backend.Backend[K]
	name     string
	assigner Assigner
	lateness int64
	contents contents[IN, OUT]
	timers   *backend.TimerService[K, Window]
	sessions *backend.Value[K, backend.VoidNamespace, []mapping] // nil unless merging
	emit     func(K, Window, OUT) error
	late     func(K, IN, int64) error
	wm       int64
	stats    Stats
	scratch  []Window
	reg      registered[K] // timers known to be stored: see registered
}

// Name returns the operator's name.
func (o *Operator[K, IN, OUT]) Name() string { return o.name }

// Stats returns the operator's counters.
func (o *Operator[K, IN, OUT]) Stats() Stats { return o.stats }

// CurrentWatermark returns the latest watermark given to
// AdvanceWatermark, or math.MinInt64.
func (o *Operator[K, IN, OUT]) CurrentWatermark() int64 { return o.wm }

// cleanupTime is when w's state is cleared: MaxTimestamp +
// AllowedLateness, or math.MaxInt64 (never) if that overflows.
func (o *Operator[K, IN, OUT]) cleanupTime(w Window) int64 {
	return addSat(w.MaxTimestamp(), o.lateness)
}

// isLate reports whether w's state would already have been cleared.
func (o *Operator[K, IN, OUT]) isLate(w Window) bool {
	c := o.cleanupTime(w)
	return c != math.MaxInt64 && c <= o.wm
}

// Process adds value, with event timestamp ts, to the windows of key it
// belongs to. A window the watermark already reached, but not by more
// than the allowed lateness, fires again at once with the new result. An
// element all of whose windows are past their lateness is dropped,
// counted in Stats.LateDropped and given to Options.Late.
func (o *Operator[K, IN, OUT]) Process(key K, value IN, ts int64) error {
	if err := o.process(key, value, ts); err != nil {
		return fmt.Errorf("window %q: %w", o.name, err)
	}
	return nil
}

func (o *Operator[K, IN, OUT]) process(key K, value IN, ts int64) error {
	if err := o.b.SetCurrentKey(key); err != nil {
		return wrapOp("process", err)
	}
	o.reg.setKey(key)
	o.stats.Elements++
	ws, err := o.assigner.Assign(o.scratch[:0], ts)
	o.scratch = ws
	if err != nil {
		return err
	}
	skipped := true
	if o.sessions != nil {
		if skipped, err = o.processMerging(key, value, ws); err != nil {
			return err
		}
	} else {
		for _, w := range ws {
			if o.isLate(w) {
				continue
			}
			skipped = false
			if err := o.add(key, value, w, w); err != nil {
				return err
			}
		}
	}
	// An element is late when every window it could be in is: with
	// ts <= MaxTimestamp, ts + lateness <= watermark says so.
	if skipped && addSat(ts, o.lateness) <= o.wm {
		o.stats.LateDropped++
		if o.late != nil {
			if err := o.late(key, value, ts); err != nil {
				return fmt.Errorf("late element at %d: %w", ts, err)
			}
		}
	}
	return nil
}

// processMerging adds value to its session windows, merging them into the
// key's windows in flight; it reports whether every window was late.
func (o *Operator[K, IN, OUT]) processMerging(key K, value IN, ws []Window) (skipped bool, err error) {
	set, err := o.loadSet()
	if err != nil {
		return false, err
	}
	skipped = true
	for _, w := range ws {
		actual, err := set.add(w, o.merge)
		if err != nil {
			return false, wrapOp("merge windows", err)
		}
		if o.isLate(actual) {
			set.retire(actual)
			continue
		}
		skipped = false
		state, ok := set.stateWindow(actual)
		if !ok {
			return false, wrapOp("merge windows", fmt.Errorf("window %v has no state window", actual))
		}
		if err := o.add(key, value, actual, state); err != nil {
			// The merges are written: keep the set that matches them.
			if serr := o.saveSet(set); serr != nil {
				return false, errors.Join(err, serr)
			}
			return false, err
		}
	}
	return skipped, o.saveSet(set)
}

// merge moves the timers and contents of the windows a session merge
// absorbed to the merged window.
func (o *Operator[K, IN, OUT]) merge(result Window, merged []Window, state Window, from []Window) error {
	if o.isLate(result) {
		return fmt.Errorf("merged window %v would end before the watermark %d", result, o.wm)
	}
	if result.MaxTimestamp() > o.wm {
		e, remember := o.reg.entry(result)
		if err := o.register(e, remember, result, result.MaxTimestamp()); err != nil {
			return err
		}
	}
	for _, m := range merged {
		if err := o.deleteTimers(m); err != nil {
			return err
		}
	}
	return o.contents.MergeNamespaces(state, from...)
}

// add adds value to window w, whose contents live in namespace state,
// fires w at once if the watermark has reached it, or else registers its
// timer, and registers its cleanup timer. A timer this operator already
// registered and that is still pending is not written again (see
// registered), so the timers of a key and window are written once, with
// its first element, not with every element.
func (o *Operator[K, IN, OUT]) add(key K, value IN, w, state Window) error {
	if err := o.contents.SetCurrentNamespace(state); err != nil {
		return wrapOp("process", err)
	}
	if err := o.contents.Add(value); err != nil {
		return wrapOp("process", err)
	}
	e, remember := o.reg.entry(w)
	if w.MaxTimestamp() <= o.wm {
		o.stats.LateFired++
		if err := o.fire(key, w); err != nil {
			return err
		}
	} else if err := o.register(e, remember, w, w.MaxTimestamp()); err != nil {
		return wrapOp("process", err)
	}
	// With no lateness the cleanup timer is the firing timer, just
	// registered (a window late by its cleanup time takes no element).
	if c := o.cleanupTime(w); c != math.MaxInt64 && (c != w.MaxTimestamp() || c <= o.wm) {
		if err := o.register(e, remember, w, c); err != nil {
			return wrapOp("process", err)
		}
	}
	return nil
}

// register registers the timer of the current key for w at ts, unless
// this operator registered it before and it is still pending. e is the
// key and window's entry in o.reg if remember.
func (o *Operator[K, IN, OUT]) register(e regEntry, remember bool, w Window, ts int64) error {
	if remember && !o.reg.add(e, ts) {
		return nil
	}
	if err := o.timers.RegisterEventTimeTimer(w, ts); err != nil {
		if remember {
			o.reg.forget(e, ts)
		}
		return err
	}
	return nil
}

// deleteTimers deletes w's firing and cleanup timers, of the current key.
func (o *Operator[K, IN, OUT]) deleteTimers(w Window) error {
	e, ok := o.reg.entry(w)
	if ok {
		o.reg.forget(e, w.MaxTimestamp())
	}
	if err := o.timers.DeleteEventTimeTimer(w, w.MaxTimestamp()); err != nil {
		return err
	}
	if c := o.cleanupTime(w); c != math.MaxInt64 && c != w.MaxTimestamp() {
		if ok {
			o.reg.forget(e, c)
		}
		return o.timers.DeleteEventTimeTimer(w, c)
	}
	return nil
}

// fire emits w's result from the contents' current namespace, if it has
// any.
func (o *Operator[K, IN, OUT]) fire(key K, w Window) error {
	out, found, err := o.contents.result()
	if err != nil {
		return wrapOp("fire", err)
	}
	if !found {
		return nil
	}
	o.stats.Fired++
	if err := o.emit(key, w, out); err != nil {
		return fmt.Errorf("emit %v: %w", w, err)
	}
	return nil
}

// AdvanceWatermark advances the watermark to wm and fires, in timestamp
// order, every window whose MaxTimestamp it reaches, then clears every
// window whose MaxTimestamp + AllowedLateness it reaches. A watermark not
// later than the current one does nothing.
//
// The watermark is not keyed state and is not in the backend's
// checkpoints (as in Flink). After a restore it starts at math.MinInt64,
// so no element is late until the first watermark; a framework that
// wants lateness judged across the restore checkpoints the watermark
// itself (in operator state, say, taking the minimum over the old
// subtasks when rescaling) and calls AdvanceWatermark with it before the
// first element. Nothing fires then: every timer at or below a watermark
// fired before the checkpoint was taken.
func (o *Operator[K, IN, OUT]) AdvanceWatermark(wm int64) error {
	if wm <= o.wm {
		return nil
	}
	o.wm = wm
	o.reg.expire(wm)
	if err := o.timers.AdvanceWatermark(wm, o.onTimer); err != nil {
		return o.wrap("advance watermark", err)
	}
	return nil
}

// onTimer handles a window's timer: at MaxTimestamp it fires the window,
// at its cleanup time it clears it (both, with no lateness).
func (o *Operator[K, IN, OUT]) onTimer(key K, w Window, ts int64) error {
	state := w
	var set *mergingSet
	if o.sessions != nil {
		var err error
		if set, err = o.loadSet(); err != nil {
			return err
		}
		var ok bool
		if state, ok = set.stateWindow(w); !ok {
			return nil // merged away; its timers were deleted then
		}
	}
	if err := o.contents.SetCurrentNamespace(state); err != nil {
		return wrapOp("fire", err)
	}
	if ts == w.MaxTimestamp() {
		if err := o.fire(key, w); err != nil {
			return err
		}
	}
	switch c := o.cleanupTime(w); {
	case ts < c && ts != w.MaxTimestamp():
		// The cleanup timer of a smaller AllowedLateness, before a
		// restore that raised it: keep the window until the new one.
		if c != math.MaxInt64 {
			if err := o.timers.RegisterEventTimeTimer(w, c); err != nil {
				return wrapOp("clear", err)
			}
		}
	case ts >= c:
		if err := o.contents.Clear(); err != nil {
			return wrapOp("clear", err)
		}
		if err := o.timers.DeleteEventTimeTimer(w, w.MaxTimestamp()); err != nil {
			return wrapOp("clear", err)
		}
		if set != nil {
			set.retire(w)
		}
	}
	if set != nil {
		return o.saveSet(set)
	}
	return nil
}

func (o *Operator[K, IN, OUT]) loadSet() (*mergingSet, error) {
	m, _, err := o.sessions.Get()
	if err != nil {
		return nil, wrapOp("read sessions", err)
	}
	return &mergingSet{m: m}, nil
}

func (o *Operator[K, IN, OUT]) saveSet(s *mergingSet) error {
	if !s.changed {
		return nil
	}
	var err error
	if len(s.m) == 0 {
		err = o.sessions.Clear()
	} else {
		err = o.sessions.Update(s.m)
	}
	if err != nil {
		return wrapOp("write sessions", err)
	}
	return nil
}

func (o *Operator[K, IN, OUT]) wrap(op string, err error) error {
	return fmt.Errorf("window %q: %s: %w", o.name, op, err)
}

// wrapOp wraps the error of an operation inside Process or a timer; the
// public method adds the operator's name once.
func wrapOp(op string, err error) error { return fmt.Errorf("%s: %w", op, err) }
