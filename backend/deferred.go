package backend

import (
	"bytes"
	"encoding/binary"
	"fmt"

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
// later in sorted batches: after a full snapshot, on a goroutine of its
// own (bgwriteback.go); before an incremental one; on Flush and on Close.
// Once the buffer holds Options.TTLReadBuffer bytes, reads of keys it does
// not hold write through, as Flink's do, until the next write-back empties
// it: the keys read first after a snapshot (the hot ones, mostly) stay
// buffered. Evicting instead would cost more than writing through, since
// writing back a key costs a second read of its value.
//
// Until its write-back, everything that judges expiry consults the buffer:
// reads, incremental cleanup, background cleanup (under b.mu), full
// snapshots (through a copy) and, because they write it back first,
// incremental snapshots. A key's true state is:
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
// An iteration (Map.Entries and the like, KeysInNamespace) reads a
// point-in-time view of Pebble, so work written back while it runs would
// be lost to it: it would meet the removed entry or the old stamp again,
// with nothing in the buffer to correct it. An open iteration therefore
// pins the buffer: a write-back (a snapshot taken in the loop) leaves its
// keys in the buffer too, where they are harmless.
//
// Only the task goroutine changes the buffer, under b.mu; it reads it
// without the lock. Background cleanup reads it under b.mu, and without
// the lookup memo, which the task's reads write.

// deferredOverhead approximates the memory of one buffered key beyond its
// bytes: its slot (16 bytes) in a table three eighths to three quarters
// full, and its length in the arena.
const deferredOverhead = 32

// writeBackBatchBytes bounds one batch of a write-back.
const writeBackBatchBytes = 4 << 20

// deferredEntry is the work recorded for one key.
type deferredEntry struct {
	at      int64 // latest access time reads recorded; ttl.NoFloor if removed
	removed bool  // a read found the value expired and removed it
}

// deferred is the buffer.
type deferred struct {
	t     deferredTable
	bytes int64 // approximate memory held
	limit int64 // Options.TTLReadBuffer; 0 writes through
	pins  int   // open iterations
	buf   []byte
	m     *ttlCounters
	bg    *bgWriteBack // the background write-back of the last full snapshot, until finished
}

func newDeferred(limit int64, m *ttlCounters) deferred {
	return deferred{t: newDeferredTable(), limit: max(limit, 0), m: m}
}

// grew accounts for a key added, and shrank for one forgotten; both
// publish the buffer's size to TTLMetrics.
func (d *deferred) grew(key []byte) {
	d.bytes += int64(len(key)) + deferredOverhead
	d.publish()
}

func (d *deferred) shrank(key []byte) {
	d.bytes -= int64(len(key)) + deferredOverhead
	d.publish()
}

func (d *deferred) publish() {
	d.m.bufKeys.Store(uint64(d.t.n))
	d.m.bufBytes.Store(uint64(d.bytes))
}

// on reports whether reads defer their writes.
func (d *deferred) on() bool { return d.limit > 0 }

// empty reports whether the buffer holds nothing.
func (d *deferred) empty() bool { return d.t.n == 0 }

// get returns the entry of key.
func (d *deferred) get(key []byte) (deferredEntry, bool) { return d.t.get(key) }

// put records e for key, replacing what it had, and reports whether it
// could: a new key does not fit in a full buffer.
func (d *deferred) put(key []byte, e deferredEntry) bool {
	if d.bytes >= d.limit {
		if _, ok := d.t.get(key); !ok {
			return false
		}
	}
	if d.t.put(key, e) {
		d.grew(key)
	}
	return true
}

// drop forgets key.
func (d *deferred) drop(key []byte) {
	if d.t.remove(key) {
		d.shrank(key)
	}
}

// deferredOf returns the deferred work of key. Task goroutine only.
func (b *Backend[K]) deferredOf(key []byte) (deferredEntry, bool) { return b.def.get(key) }

// deferredLocked is compaction.Config.Deferred: the filter calls it under
// b.mu, which keeps the task from changing the buffer, but not from
// looking keys up in it: so it looks up without the memo (a race the
// memo once had, TestTTLRaceBufferedReads).
func (b *Backend[K]) deferredLocked(key []byte) (floor int64, removed, ok bool) {
	e, ok := b.def.t.lookup(key)
	if !ok {
		return ttl.NoFloor, false, false
	}
	return e.at, e.removed, true
}

// touch records that a read returned key's value at now, under
// OnReadAndWrite. It reports false, recording nothing, when reads write
// through or the buffer is full: the caller then writes the stamp itself.
func (b *Backend[K]) touch(key []byte, now int64) bool {
	if !b.def.on() {
		return false
	}
	if b.def.bg != nil {
		_ = b.finishWriteBack(false) // an error waits for a caller that can return it
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	covered, isNew := b.def.t.raise(key, now, b.def.bytes < b.def.limit)
	if isNew {
		b.def.grew(key)
	}
	if !covered {
		b.ttlMetrics.overflows.Add(1)
	}
	return covered
}

// removeExpired removes key, whose value a read found expired: in the
// buffer, or at once when reads write through or the buffer is full.
func (b *Backend[K]) removeExpired(key []byte) error {
	if b.def.on() {
		if b.def.bg != nil {
			_ = b.finishWriteBack(false)
		}
		b.mu.Lock()
		ok := b.def.put(key, deferredEntry{at: ttl.NoFloor, removed: true})
		b.mu.Unlock()
		if ok {
			return nil
		}
		b.ttlMetrics.overflows.Add(1)
	}
	return b.del(key)
}

// removedByRead reports whether a read removed the value at key, which
// Pebble may still hold until the buffer is written back.
func (b *Backend[K]) removedByRead(key []byte) bool {
	if b.def.empty() {
		return false
	}
	e, ok := b.def.get(key)
	return ok && e.removed
}

// pin holds the buffer's entries for an open iteration; unpin lets
// them go again.
func (b *Backend[K]) pin()   { b.def.pins++ }
func (b *Backend[K]) unpin() { b.def.pins-- }

// settleLocked writes back the deferred work of key, if it has any, so
// that its stored value is its true value. b.mu must be held.
func (b *Backend[K]) settleLocked(key []byte) error {
	e, ok := b.def.get(key)
	if !ok {
		return nil
	}
	w := b.newWriteBack()
	w.keys = append(w.keys, keyed{key, e})
	return w.run()
}

// settle is settleLocked for the task goroutine, for operations that read
// stored values and move them elsewhere (merging namespaces).
func (b *Backend[K]) settle(key []byte) error {
	if b.def.empty() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.settleLocked(key)
}

// writeBack writes all deferred work to Pebble and empties the buffer.
// Task goroutine only.
func (b *Backend[K]) writeBack() error {
	if err := b.finishWriteBack(true); err != nil {
		return err
	}
	if b.def.empty() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.newWriteBack()
	// Its scratch is not kept for the next write-back: it would double
	// the memory TTLReadBuffer grants.
	w.keys, _ = b.def.t.sorted(nil, nil)
	w.whole = true
	if err := w.run(); err != nil {
		return err
	}
	if b.def.pins == 0 {
		b.def.t.reset()
		b.def.bytes = 0
		b.def.publish()
	}
	return nil
}

// dropRangeLocked forgets every key in [lo, hi), which a range deletion
// removes.
func (b *Backend[K]) dropRangeLocked(lo, hi []byte) {
	var in [][]byte
	for i := range b.def.t.slots {
		if s := &b.def.t.slots[i]; s.hash != 0 {
			if k := b.def.t.key(s); bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
				in = append(in, bytes.Clone(k)) // drop moves slots and may compact the arena
			}
		}
	}
	for _, k := range in {
		b.def.drop(k)
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
	keys    []keyed // in key order
	whole   bool    // the whole buffer: writeBack empties it at the end
}

func (b *Backend[K]) newWriteBack() *writeBackRun {
	return &writeBackRun{d: &b.def, layouts: b.ttlLayouts, db: b.db, note: b.writes.NoteAll}
}

// run writes the work of every key added: a removed key's deletion, or
// its value with the stamps raised to the recorded access time. The
// iterator reads the values as they were before the run; the run writes
// each key once, so none is newer.
func (w *writeBackRun) run() error {
	if len(w.keys) == 0 {
		return nil
	}
	it, err := w.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("backend: write back TTL work: %w", err)
	}
	defer it.Close()
	batch := w.db.NewBatch()
	defer func() { batch.Close() }()
	done := 0 // w.keys[:done] are written
	for i, k := range w.keys {
		if err := w.write(batch, it, k.key, k.e); err != nil {
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
func (w *writeBackRun) write(batch *pebble.Batch, it *pebble.Iterator, k []byte, e deferredEntry) error {
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

// commit writes batch. Unless the buffer is pinned, it forgets the keys
// whose work the batch holds if the run is not a whole write-back (which
// empties the buffer at its end instead, and removing keys one by one
// would cost a probe each).
func (w *writeBackRun) commit(batch *pebble.Batch, written []keyed) error {
	if !batch.Empty() {
		if err := batch.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("backend: write back TTL work: %w", err)
		}
		w.note()
	}
	w.d.m.writtenBack.Add(uint64(len(written)))
	if w.d.pins == 0 && !w.whole {
		for _, k := range written {
			w.d.drop(k.key)
		}
	}
	return nil
}
