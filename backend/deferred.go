package backend

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/ttl"
)

// TTL work that reads put off.
//
// Flink's TTL semantics make reads write: under OnReadAndWrite a read moves
// the stamp of everything it returns, and a read that finds a value
// expired removes it. Written through to Pebble, those writes fill the
// memtable that every later read must search, and a read-heavy task slows
// to the speed of a read-write one (4x for values, bench/RESULTS.md).
//
// So reads record the work here instead, in memory, and it reaches Pebble
// later in batches: when the buffer outgrows Options.TTLReadBuffer (a
// slice of it at a time), and in full before every snapshot, on Flush and
// on Close. Until then everything that judges expiry consults the buffer:
// reads, incremental cleanup, background cleanup (under b.mu) and, because
// snapshots write it back first, snapshots. A key's true state is:
//
//   - removed: the key has no value, whatever Pebble still holds;
//   - otherwise every stamp of its stored value counts as at least at.
//
// Writes keep that true. A Set or Delete of a key replaces what Pebble
// holds, so it drops the key's entry. A Merge (a list append) adds
// elements stamped now, which at (an earlier read's time) cannot raise, so
// the entry stays; unless the entry marks the key removed, or the clock
// went back below at, in which case it is written back first.
//
// A map iteration reads a point-in-time view of Pebble, so work written
// back while it runs would be lost to it: it would meet the removed entry
// or the old stamp again, with nothing in the buffer to correct it. An
// open iteration therefore pins the buffer: nothing is evicted, and a
// write-back leaves its keys in the buffer too, where they are harmless.
//
// Only the task goroutine changes the buffer, under b.mu; it reads it
// without the lock. Background cleanup reads it under b.mu.

// deferredOverhead approximates the memory of one buffered key beyond its
// bytes: the map slot, the string header and the slot in entries.
const deferredOverhead = 64

// writeBackBatchBytes bounds one batch of a write-back.
const writeBackBatchBytes = 4 << 20

// deferredEntry is the work recorded for one key.
type deferredEntry struct {
	at      int64 // latest access time reads recorded, or ttl.NoFloor
	removed bool  // a read found the value expired and removed it
}

// deferred is the buffer: a map from key to a slot of entries, so that
// updating a known key allocates nothing.
type deferred struct {
	index   map[string]int32
	entries []deferredEntry
	free    []int32 // unused slots of entries
	bytes   int64   // approximate memory held
	limit   int64   // Options.TTLReadBuffer; 0 writes through
	pins    int     // open map iterations
	buf     []byte  // scratch for write-back
}

func newDeferred(limit int64) deferred {
	return deferred{index: make(map[string]int32), limit: max(limit, 0)}
}

// on reports whether reads defer their writes.
func (d *deferred) on() bool { return d.limit > 0 }

// get returns the entry of key.
func (d *deferred) get(key []byte) (deferredEntry, bool) {
	if len(d.index) == 0 {
		return deferredEntry{}, false
	}
	i, ok := d.index[string(key)]
	if !ok {
		return deferredEntry{}, false
	}
	return d.entries[i], true
}

// put records e for key, replacing what it had.
func (d *deferred) put(key []byte, e deferredEntry) {
	if i, ok := d.index[string(key)]; ok {
		d.entries[i] = e
		return
	}
	var i int32
	if n := len(d.free); n > 0 {
		i, d.free = d.free[n-1], d.free[:n-1]
		d.entries[i] = e
	} else {
		i = int32(len(d.entries))
		d.entries = append(d.entries, e)
	}
	d.index[string(key)] = i
	d.bytes += int64(len(key)) + deferredOverhead
}

// drop forgets key.
func (d *deferred) drop(key []byte) {
	if len(d.index) == 0 {
		return
	}
	if i, ok := d.index[string(key)]; ok {
		d.forget(string(key), i)
	}
}

func (d *deferred) forget(key string, i int32) {
	delete(d.index, key)
	d.free = append(d.free, i)
	d.bytes -= int64(len(key)) + deferredOverhead
	if len(d.index) == 0 {
		d.entries, d.free, d.bytes = d.entries[:0], d.free[:0], 0
	}
}

// deferredOf returns the deferred work of key. Task goroutine only.
func (b *Backend[K]) deferredOf(key []byte) (deferredEntry, bool) { return b.def.get(key) }

// deferredLocked is compaction.Config.Deferred: the filter calls it under
// b.mu.
func (b *Backend[K]) deferredLocked(key []byte) (floor int64, removed, ok bool) {
	e, ok := b.def.get(key)
	return e.at, e.removed, ok
}

// touch records that a read returned key's value at now, under
// OnReadAndWrite, when reads defer their writes.
func (b *Backend[K]) touch(key []byte, now int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.def.get(key)
	if ok && (e.removed || e.at >= now) {
		return nil
	}
	b.def.put(key, deferredEntry{at: now})
	return b.evictLocked()
}

// removeExpired removes key, whose value a read found expired: deferred,
// or at once when reads write through.
func (b *Backend[K]) removeExpired(key []byte) error {
	if !b.def.on() {
		return b.del(key)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.def.put(key, deferredEntry{at: ttl.NoFloor, removed: true})
	return b.evictLocked()
}

// evictLocked writes back a sixty-fourth of the buffer, chosen at random,
// once it holds more than its limit, so that no read waits for all of it.
func (b *Backend[K]) evictLocked() error {
	d := &b.def
	if d.bytes <= d.limit || d.pins > 0 {
		return nil
	}
	target := d.limit - d.limit/64
	w := b.newWriteBack()
	for k := range d.index {
		if d.bytes-w.bytes <= target {
			break
		}
		w.add(k)
	}
	return w.run()
}

// pin holds the buffer's entries for an open map iteration; unpin lets
// them go again and evicts what the iteration let pile up.
func (b *Backend[K]) pin() { b.def.pins++ }

func (b *Backend[K]) unpin() {
	if b.def.pins--; b.def.pins > 0 || b.def.bytes <= b.def.limit {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// An error leaves the work in the buffer; the next eviction retries.
	_ = b.evictLocked()
}

// settleLocked writes back the deferred work of key, if it has any, so
// that its stored value is its true value. b.mu must be held.
func (b *Backend[K]) settleLocked(key []byte) error {
	if _, ok := b.def.get(key); !ok {
		return nil
	}
	w := b.newWriteBack()
	w.add(string(key))
	return w.run()
}

// settle is settleLocked for the task goroutine, for operations that read
// stored values and move them elsewhere (merging namespaces).
func (b *Backend[K]) settle(key []byte) error {
	if len(b.def.index) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.settleLocked(key)
}

// writeBack writes all deferred work to Pebble and empties the buffer.
// Task goroutine only.
func (b *Backend[K]) writeBack() error {
	if len(b.def.index) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.newWriteBack()
	for k := range b.def.index {
		w.add(k)
	}
	return w.run()
}

// dropRangeLocked forgets every key in [lo, hi), which a range deletion
// removes.
func (b *Backend[K]) dropRangeLocked(lo, hi []byte) {
	for k, i := range b.def.index {
		if bytes.Compare([]byte(k), lo) >= 0 && bytes.Compare([]byte(k), hi) < 0 {
			b.def.forget(k, i)
		}
	}
}

// writeBackRun writes the deferred work of a set of keys to Pebble, under
// b.mu. It visits the keys in order with one iterator, whose successive
// seeks cost far less than independent point reads, and writes in batches
// of writeBackBatchBytes. Keys leave the buffer only once the batch holding
// their work is committed (and the buffer is not pinned), so a failed
// write-back loses nothing.
type writeBackRun struct {
	d       *deferred
	layouts map[uint16]ttl.Layout
	db      *pebble.DB
	note    func()
	keys    []string
	bytes   int64 // the keys' share of d.bytes
}

func (b *Backend[K]) newWriteBack() *writeBackRun {
	return &writeBackRun{d: &b.def, layouts: b.ttlLayouts, db: b.db, note: b.writes.NoteAll}
}

// add adds key, which has an entry, to the run.
func (w *writeBackRun) add(key string) {
	w.keys = append(w.keys, key)
	w.bytes += int64(len(key)) + deferredOverhead
}

// run writes the work of every key added: a removed key's deletion, or
// its value with the stamps raised to the recorded access time. The
// iterator reads the values as they were before the run; the run writes
// each key once, so none is newer.
func (w *writeBackRun) run() error {
	if len(w.keys) == 0 {
		return nil
	}
	slices.Sort(w.keys)
	it, err := w.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("backend: write back TTL work: %w", err)
	}
	defer it.Close()
	batch := w.db.NewBatch()
	defer func() { batch.Close() }()
	done := 0 // w.keys[:done] are written
	for i, key := range w.keys {
		if err := w.write(batch, it, key); err != nil {
			return err
		}
		if batch.Len() >= writeBackBatchBytes || i == len(w.keys)-1 {
			if err := w.commit(batch, w.keys[done:i+1]); err != nil {
				return err
			}
			batch.Close()
			batch, done = w.db.NewBatch(), i+1
		}
	}
	return nil
}

// write puts key's work into batch.
func (w *writeBackRun) write(batch *pebble.Batch, it *pebble.Iterator, key string) error {
	e := w.d.entries[w.d.index[key]]
	k := []byte(key)
	if e.removed {
		if err := batch.Delete(k, nil); err != nil {
			return fmt.Errorf("backend: write back TTL work: %w", err)
		}
		return nil
	}
	if len(k) < keys.StateIDLen {
		return nil
	}
	layout, ok := w.layouts[binary.BigEndian.Uint16(k)]
	if !ok || !it.SeekGE(k) || !bytes.Equal(it.Key(), k) {
		return it.Error() // not a TTL state, or no value: nothing to restamp
	}
	raw, err := it.ValueAndErr()
	if err != nil {
		return fmt.Errorf("backend: write back TTL work: %w", err)
	}
	out, moved, err := ttl.Restamp(layout, raw, e.at, w.d.buf[:0])
	w.d.buf = out[:0]
	if err != nil || !moved {
		return nil // malformed values are left for reads to report
	}
	if err := batch.Set(k, out, nil); err != nil {
		return fmt.Errorf("backend: write back TTL work: %w", err)
	}
	return nil
}

// commit writes batch and forgets the keys whose work it holds, unless the
// buffer is pinned.
func (w *writeBackRun) commit(batch *pebble.Batch, written []string) error {
	if !batch.Empty() {
		if err := batch.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("backend: write back TTL work: %w", err)
		}
		w.note()
	}
	if w.d.pins == 0 {
		for _, k := range written {
			w.d.forget(k, w.d.index[k])
		}
	}
	return nil
}
