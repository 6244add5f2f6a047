package window

import (
	"cmp"
	"container/heap"
	"reflect"
	"slices"
)

// defaultRegisteredLimit bounds the timers an operator remembers as
// registered (about 80 bytes each, so 5 MiB). Beyond it, a window's
// timers are written for each element, as if it remembered none.
const defaultRegisteredLimit = 1 << 16

// registered remembers the timers this operator registered in this
// process that are still pending, so that a window's timers are written
// once per key and window rather than once per element: registering a
// timer is a Pebble write, and a window takes many elements. Flink's
// WindowOperator registers per element too, but its heap timer service
// drops a timer it already holds in memory; ours would write it again.
//
// An entry (key, window, timestamp) is only added when the operator
// registers that timer, and it stands for a timer still stored as long
// as its timestamp is above the watermark: a timer is only ever removed
// by firing (when the watermark reaches it, and expire drops the entries
// the watermark reached before the timers fire) or by the operator
// deleting it (a session merge deleting the absorbed windows' timers,
// which calls forget). So a remembered timer never needs writing again,
// and anything not remembered (a timer of a window from before a reopen
// or a restore, one beyond the limit, one that fired) is written as
// before: re-registering a stored timer writes the same key again, and
// re-registering a fired one registers it anew, as the operator always
// did. A new operator (after a reopen or a restore) remembers nothing.
//
// Keys are compared with Go's ==, which must agree with the bytes the
// backend's key codec writes: for key types whose equal values are
// identical (booleans, integers, strings, and arrays and structs of
// them) and []byte (compared as strings). For any other key type (floats,
// where 0 == -0, pointers, interfaces, ...) nothing is remembered. Two
// values that differ but encode alike are two entries, which is safe: an
// entry is then only missed, never wrongly found, because the timers
// forget removes are of the key just processed and of windows that key
// can no longer add to before the watermark passes them.
type registered[K any] struct {
	keyOf func(K) any // nil: remember nothing
	cur   any         // the key being processed, as keyOf gives it
	limit int
	m     map[regEntry]struct{}
	heap  []regTimed // the entries of m by timestamp (forgotten ones may linger)
}

// regEntry is a timer of one key and window at ts.
type regEntry struct {
	key any
	w   Window
	ts  int64
}

type regTimed struct {
	ts int64
	e  regEntry
}

func newRegistered[K any]() registered[K] {
	return registered[K]{keyOf: keyFunc[K](), limit: defaultRegisteredLimit}
}

// keyFunc returns how keys of type K are compared, or nil if == on them
// may disagree with their encoding.
func keyFunc[K any]() func(K) any {
	t := reflect.TypeFor[K]()
	if t == reflect.TypeFor[[]byte]() {
		return func(k K) any { return string(any(k).([]byte)) }
	}
	if !identicalWhenEqual(t) {
		return nil
	}
	return func(k K) any { return k }
}

// identicalWhenEqual reports whether two values of t that are == are
// identical, so that any deterministic codec encodes them alike.
func identicalWhenEqual(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	case reflect.Array:
		return identicalWhenEqual(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !identicalWhenEqual(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// setKey makes k the key entry gives the entries of: the key being
// processed.
func (r *registered[K]) setKey(k K) {
	if r.keyOf != nil {
		r.cur = r.keyOf(k)
	}
}

// entry returns the entry of the key set by setKey and w, and false if
// keys of this type are not remembered.
func (r *registered[K]) entry(w Window) (regEntry, bool) {
	if r.keyOf == nil {
		return regEntry{}, false
	}
	return regEntry{key: r.cur, w: w}, true
}

// add remembers e's timer at ts and reports whether it was not
// remembered, that is whether it must be written. Past the limit it
// remembers nothing more.
func (r *registered[K]) add(e regEntry, ts int64) bool {
	e.ts = ts
	if _, ok := r.m[e]; ok {
		return false
	}
	if len(r.m) >= r.limit {
		return true
	}
	if r.m == nil {
		r.m = make(map[regEntry]struct{})
	}
	r.m[e] = struct{}{}
	r.push(regTimed{ts, e})
	if len(r.heap) > 2*len(r.m)+1024 {
		r.compact()
	}
	return true
}

// compact rebuilds the heap from the entries still remembered, when
// forgotten ones (of merged session windows, before the watermark passes
// them) make up most of it.
func (r *registered[K]) compact() {
	h := make([]regTimed, 0, len(r.m))
	for e := range r.m {
		h = append(h, regTimed{e.ts, e})
	}
	// A sorted slice is a heap.
	slices.SortFunc(h, func(a, b regTimed) int { return cmp.Compare(a.ts, b.ts) })
	r.heap = h
}

// forget drops e's timer at ts: it was deleted, or writing it failed.
func (r *registered[K]) forget(e regEntry, ts int64) {
	e.ts = ts
	delete(r.m, e)
}

// expire drops every entry at or below the watermark wm: those timers
// fire (or fired) in the advance to wm.
func (r *registered[K]) expire(wm int64) {
	for len(r.heap) > 0 && r.heap[0].ts <= wm {
		delete(r.m, r.pop().e)
	}
}

func (r *registered[K]) push(t regTimed) { heap.Push((*regHeap)(&r.heap), t) }

func (r *registered[K]) pop() regTimed { return heap.Pop((*regHeap)(&r.heap)).(regTimed) }

// regHeap orders entries by timestamp, for container/heap.
type regHeap []regTimed

func (h regHeap) Len() int           { return len(h) }
func (h regHeap) Less(i, j int) bool { return h[i].ts < h[j].ts }
func (h regHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *regHeap) Push(x any)        { *h = append(*h, x.(regTimed)) }
func (h *regHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = regTimed{} // let the key be collected
	*h = old[:n]
	return t
}
