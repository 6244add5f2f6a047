package harness

import (
	"fmt"

	"github.com/pebblestate/pebblestate/backend"
)

// Timers is a timer service a function registered on its backend itself
// (backend.GetTimerService), as operator code does, bound to the handler
// its timers fire with: what a framework fires them with, as Flink's
// operators hand their internal timer services a Triggerable. Make one
// with OnTimers; a function hands the harness its own through
// TimerOwner.
type Timers[K, OUT any] struct {
	name string
	// advance fires the service's timers of domain d due at limit (the
	// watermark; the clock, for processing time).
	advance func(c *core[K, OUT], d TimeDomain, limit int64) error
	// due reports whether a timer of domain d is due at limit.
	due func(d TimeDomain, limit int64) bool
}

// OnTimers binds svc, a timer service of the function's backend, to
// onTimer, which the harness calls for each of its timers that fires:
// with the timer's key as the current key (ctx.Key()) and its timestamp
// as ctx.Timestamp(), its namespace and its time domain. onTimer may use
// the backend, register timers (on any service) and Collect, as
// Function.OnTimer may.
func OnTimers[K, N, OUT any](svc *backend.TimerService[K, N], onTimer func(ctx *Context[K, OUT], ns N, ts int64, domain TimeDomain) error) Timers[K, OUT] {
	if svc == nil || onTimer == nil {
		return Timers[K, OUT]{}
	}
	name := svc.Name()
	return Timers[K, OUT]{
		name: name,
		advance: func(c *core[K, OUT], d TimeDomain, limit int64) error {
			fire := func(key K, ns N, ts int64) error {
				c.record(FiredTimer[K]{Key: key, Timestamp: ts, Domain: d, Service: name, Namespace: ns})
				c.ctx = Context[K, OUT]{c: c, key: key, ts: ts}
				if err := onTimer(&c.ctx, ns, ts, d); err != nil {
					return fmt.Errorf("timer service %q: handler(%v, %v, %d, %v): %w", name, key, ns, ts, d, err)
				}
				return nil
			}
			if d == EventTime {
				return svc.AdvanceWatermark(limit, fire)
			}
			return svc.AdvanceProcessingTime(fire)
		},
		due: func(d TimeDomain, limit int64) bool {
			next, ok := svc.NextEventTime()
			if d == ProcessingTime {
				next, ok = svc.NextProcessingTime()
			}
			return ok && next <= limit
		},
	}
}

// TimerOwner is implemented by a Function that registers timer services
// of its own on the backend rather than (or besides) using Context's
// timers. The harness calls TimerServices once, after Open, and from then
// on fires each returned service's due timers through its handler
// whenever it advances the watermark or the processing time, after
// Context's timers and in the order returned, until no service has a
// timer due (so timers a handler registers that are due fire in the same
// advance). Every service must be of the backend Open got; the harness's
// own (TimerServiceName) cannot be bound.
type TimerOwner[K, OUT any] interface {
	TimerServices() []Timers[K, OUT]
}

// bindTimers takes the function's own timer services, if it has any.
func (h *Harness[K, IN, OUT]) bindTimers() error {
	o, ok := any(h.fn).(TimerOwner[K, OUT])
	if !ok {
		return nil
	}
	seen := map[string]bool{TimerServiceName: true}
	for i, t := range o.TimerServices() {
		switch {
		case t.advance == nil:
			return fmt.Errorf("timer service %d of the function: no service or no handler (OnTimers)", i)
		case t.name == TimerServiceName:
			return fmt.Errorf("timer service %q is the harness's own: use Context's timers", t.name)
		case seen[t.name]:
			return fmt.Errorf("timer service %q bound twice", t.name)
		}
		seen[t.name] = true
		h.bound = append(h.bound, t)
	}
	return nil
}

// advanceTime fires the timers of domain d due at limit (the watermark;
// the clock, for processing time): Context's, then those of each of the
// function's services, again until none is due.
func (h *core[K, OUT]) advanceTime(d TimeDomain, limit int64) error {
	for {
		var err error
		if d == EventTime {
			err = h.timers.AdvanceWatermark(limit, h.fireFunc(EventTime))
		} else {
			err = h.timers.AdvanceProcessingTime(h.fireFunc(ProcessingTime))
		}
		if err != nil {
			return err
		}
		for _, t := range h.bound {
			if err := t.advance(h, d, limit); err != nil {
				return err
			}
		}
		if !h.due(d, limit) {
			return nil
		}
	}
}

// due reports whether any timer of domain d is due at limit.
func (h *core[K, OUT]) due(d TimeDomain, limit int64) bool {
	next, ok := h.timers.NextEventTime()
	if d == ProcessingTime {
		next, ok = h.timers.NextProcessingTime()
	}
	if ok && next <= limit {
		return true
	}
	for _, t := range h.bound {
		if t.due(d, limit) {
			return true
		}
	}
	return false
}
