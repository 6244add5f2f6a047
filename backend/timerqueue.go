package backend

import (
	"bytes"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/store"
)

// timerQueue is one time domain of a timer service: the timers stored
// under [state id][key group][domain] for every key group the backend
// owns, each key group's in timestamp order, with a small cache of each
// key group's first timers in memory and a heap of key groups by their
// first timer, so the next timer of the whole backend is known without
// reading the database.
//
// An entry is its whole Pebble key. Within a key group and domain, keys
// sort as timers fire: by timestamp (sign-flipped big-endian), then the
// key component, then the namespace component. Across key groups, equal
// timestamps fire in key-group order (the heap compares timestamps, then
// key groups).
//
// The cache of a key group holds exactly its smallest len(cache) stored
// timers, and all of them when complete is set. It is never empty unless
// complete: a key group whose cache empties is reloaded at once, from
// just after the timer that emptied it (every timer still stored is
// larger, so the load does not step over the deleted ones).
type timerQueue struct {
	st       *store.Store
	w        *timerWrites
	id       uint16
	domain   byte
	kgWidth  int
	kgStart  int
	capacity int
	prefix   int // len([state id][key group][domain])

	groups []timerGroup // by key group - kgStart
	err    error        // a failed load: the caches are no longer known good
	heap   []int32      // indexes of groups with a non-empty cache
	lo, hi []byte       // scratch bounds for loads

	// counts are the timers stored per group, counted when the queue is
	// built and kept as TimerStats.Pending says; dirty marks a group whose
	// count may be off (a register or delete beyond its cache). stats
	// holds their sums.
	counts []int64
	dirty  []bool
	stats  *timerCounters
}

type timerGroup struct {
	cache    [][]byte
	complete bool
	pos      int32 // index in heap, or -1
}

func newTimerQueue(w *timerWrites, id uint16, domain byte, kgs KeyGroupRange, kgWidth, capacity int, stats *timerCounters) (*timerQueue, error) {
	n := kgs.End - kgs.Start
	q := &timerQueue{
		st: w.st, w: w, id: id, domain: domain, kgWidth: kgWidth, kgStart: kgs.Start, capacity: capacity,
		prefix: keys.StateIDLen + kgWidth + 1,
		groups: make([]timerGroup, n),
		counts: make([]int64, n),
		dirty:  make([]bool, n),
		stats:  stats,
	}
	for i := range q.groups {
		q.groups[i].pos = -1
		if err := q.load(i, nil); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// count adds d to group i's count of timers.
func (q *timerQueue) count(i int, d int64) {
	q.counts[i] += d
	q.stats.pending.Add(d)
}

// uncertain marks group i's count as possibly off.
func (q *timerQueue) uncertain(i int) {
	if !q.dirty[i] {
		q.dirty[i] = true
		q.stats.inexact.Add(1)
	}
}

// resync sets the count of group i, whose cache is complete, to the
// cache's length: exact again.
func (q *timerQueue) resync(i int) {
	q.count(i, int64(len(q.groups[i].cache))-q.counts[i])
	if q.dirty[i] {
		q.dirty[i] = false
		q.stats.inexact.Add(-1)
	}
}

// groupPrefix appends [state id][key group][domain] of group i to dst.
func (q *timerQueue) groupPrefix(dst []byte, i int) []byte {
	dst = keys.AppendStateID(dst, q.id)
	dst = keys.AppendKeyGroup(dst, q.kgStart+i, q.kgWidth)
	return append(dst, q.domain)
}

// load fills the empty cache of group i with its first stored timers
// after the key after (all of them if after is nil). A load of all of
// them goes on past the cache to count the group's timers; a load that
// finds the cache complete sets the count.
func (q *timerQueue) load(i int, after []byte) error {
	if err := q.loadOnce(i, after); err != nil {
		q.err = err
		return err
	}
	return nil
}

func (q *timerQueue) loadOnce(i int, after []byte) error {
	g := &q.groups[i]
	// The load reads the database: the writes of timers fired so far must
	// be in it.
	if err := q.w.flush(); err != nil {
		return fmt.Errorf("load timers of key group %d: %w", q.kgStart+i, err)
	}
	q.lo = q.groupPrefix(q.lo[:0], i)
	q.hi = append(q.hi[:0], q.lo...)
	q.hi[len(q.hi)-1]++ // the domain byte is 0 or 1: no carry
	if after != nil {
		q.lo = append(append(q.lo[:0], after...), 0)
	}
	it, err := q.st.NewIter(q.lo, q.hi)
	if err != nil {
		return fmt.Errorf("load timers of key group %d: %w", q.kgStart+i, err)
	}
	// One slab for the loaded keys: a load costs two allocations however
	// many timers it reads.
	var slab []byte
	var ends []int
	n := 0
	valid := it.First()
	for ; valid && n < q.capacity; valid = it.Next() {
		if k := it.Key(); len(k) < q.prefix+8 {
			err := fmt.Errorf("%w: key group %d: timer key %x is too short", ErrCorrupt, q.kgStart+i, k)
			_ = it.Close()
			return err
		}
		slab = append(slab, it.Key()...)
		ends = append(ends, len(slab))
		n++
	}
	if after == nil && valid {
		// The first load: count the rest (keys only; timers have no value).
		m := int64(n)
		for ; valid; valid = it.Next() {
			m++
		}
		q.count(i, m-q.counts[i])
		valid = true
	}
	g.complete = !valid
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("load timers of key group %d: %w", q.kgStart+i, err)
	}
	g.cache = slices.Grow(g.cache[:0], n)
	start := 0
	for _, end := range ends {
		g.cache = append(g.cache, slab[start:end:end])
		start = end
	}
	if g.complete {
		q.resync(i)
	}
	q.fix(i)
	return nil
}

// added notes that key was written to group i, and counts it if it is
// new. Beyond the cache, whether it is new is unknown without a read: it
// is counted as new and the count marked uncertain (TimerStats.Pending).
func (q *timerQueue) added(i int, key []byte) {
	if q.beyondCache(i, key) {
		q.uncertain(i)
		q.count(i, 1)
		return // a later load finds it
	}
	g := &q.groups[i]
	j, found := slices.BinarySearchFunc(g.cache, key, bytes.Compare)
	if found {
		return
	}
	q.count(i, 1)
	g.cache = slices.Insert(g.cache, j, bytes.Clone(key))
	if len(g.cache) > q.capacity {
		g.cache[len(g.cache)-1] = nil
		g.cache = g.cache[:len(g.cache)-1]
		g.complete = false
	}
	if j == 0 {
		q.fix(i)
	}
}

// beyondCache reports whether the cache of group i cannot tell whether
// it holds key: the key sorts after the last timer of an incomplete cache,
// or a load failed (the service reports q.err from then on).
func (q *timerQueue) beyondCache(i int, key []byte) bool {
	g := &q.groups[i]
	return q.err != nil || (!g.complete && bytes.Compare(key, g.cache[len(g.cache)-1]) > 0)
}

// removed notes that key was deleted from group i, and uncounts it if it
// was stored; beyond the cache it is uncounted and the count marked
// uncertain, as added does.
func (q *timerQueue) removed(i int, key []byte) error {
	if q.beyondCache(i, key) {
		q.uncertain(i)
		q.count(i, -1)
		return nil
	}
	g := &q.groups[i]
	j, found := slices.BinarySearchFunc(g.cache, key, bytes.Compare)
	if !found {
		return nil
	}
	q.count(i, -1)
	if j == 0 {
		return q.popFront(i)
	}
	g.cache = slices.Delete(g.cache, j, j+1)
	return nil
}

// popFront drops the first cached timer of group i (deleted from the
// store by the caller), reloading the cache if that empties it.
func (q *timerQueue) popFront(i int) error {
	g := &q.groups[i]
	first := g.cache[0]
	g.cache[0] = nil
	g.cache = g.cache[1:]
	if len(g.cache) == 0 && !g.complete {
		return q.load(i, first)
	}
	q.fix(i)
	return nil
}

// head returns the group whose first timer fires next, or -1.
func (q *timerQueue) head() int {
	if len(q.heap) == 0 {
		return -1
	}
	return int(q.heap[0])
}

// first returns the first cached timer of group i.
func (q *timerQueue) first(i int) []byte { return q.groups[i].cache[0] }

// less orders groups i and j by the timestamps of their first timers,
// then by key group.
func (q *timerQueue) less(i, j int32) bool {
	a, b := q.groups[i].cache[0], q.groups[j].cache[0]
	if c := bytes.Compare(a[q.prefix:q.prefix+8], b[q.prefix:q.prefix+8]); c != 0 {
		return c < 0
	}
	return i < j
}

// fix restores the heap after group i's first timer changed.
func (q *timerQueue) fix(i int) {
	g := &q.groups[i]
	switch {
	case len(g.cache) == 0 && g.pos < 0:
		return
	case len(g.cache) == 0:
		p := int(g.pos)
		last := len(q.heap) - 1
		q.swap(p, last)
		q.heap = q.heap[:last]
		g.pos = -1
		if p < last {
			q.down(p)
			q.up(p)
		}
	case g.pos < 0:
		g.pos = int32(len(q.heap))
		q.heap = append(q.heap, int32(i))
		q.up(int(g.pos))
	default:
		p := int(g.pos)
		q.down(p)
		q.up(p)
	}
}

func (q *timerQueue) swap(a, b int) {
	q.heap[a], q.heap[b] = q.heap[b], q.heap[a]
	q.groups[q.heap[a]].pos = int32(a)
	q.groups[q.heap[b]].pos = int32(b)
}

func (q *timerQueue) up(p int) {
	for p > 0 {
		parent := (p - 1) / 2
		if !q.less(q.heap[p], q.heap[parent]) {
			return
		}
		q.swap(p, parent)
		p = parent
	}
}

func (q *timerQueue) down(p int) {
	n := len(q.heap)
	for {
		c := 2*p + 1
		if c >= n {
			return
		}
		if c+1 < n && q.less(q.heap[c+1], q.heap[c]) {
			c++
		}
		if !q.less(q.heap[c], q.heap[p]) {
			return
		}
		q.swap(p, c)
		p = c
	}
}

// timerWrites writes a timer service's timers: straight to the store,
// or, while timers fire, into a batch committed before the service next
// reads the database (a load) and when the firing ends. Writes made while
// firing keep their order in the batch, so a timer deleted as it fires
// and registered again by its fire is stored.
type timerWrites struct {
	st     *store.Store
	closed *atomic.Bool // the backend's
	batch  *store.Batch // non-nil while firing
}

// maxTimerBatch bounds the bytes of a batch of writes made while firing.
const maxTimerBatch = 1 << 20

func (w *timerWrites) set(key []byte) error {
	if w.batch == nil {
		return w.st.Set(key, nil)
	}
	if err := w.batch.Set(key, nil); err != nil {
		return err
	}
	return w.maybeFlush()
}

func (w *timerWrites) delete(key []byte) error {
	if w.batch == nil {
		return w.st.Delete(key)
	}
	if err := w.batch.Delete(key); err != nil {
		return err
	}
	return w.maybeFlush()
}

func (w *timerWrites) maybeFlush() error {
	if w.batch.Len() < maxTimerBatch {
		return nil
	}
	return w.flush()
}

// flush commits the writes batched so far.
func (w *timerWrites) flush() error {
	if w.batch == nil || w.batch.Empty() {
		return nil
	}
	if w.closed.Load() {
		return ErrClosed // the database is gone, and the batch with it
	}
	err := w.st.Commit(w.batch)
	w.batch.Close()
	w.batch = w.st.NewBatch()
	return err
}

// begin starts batching; end commits and stops.
func (w *timerWrites) begin() { w.batch = w.st.NewBatch() }

func (w *timerWrites) end() error {
	err := w.flush()
	w.batch.Close()
	w.batch = nil
	return err
}
