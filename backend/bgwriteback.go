package backend

import (
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Writing the read buffer back without stalling full snapshots.
//
// Writing back costs a microsecond or two per key, about a second for a
// full buffer; in a snapshot's synchronous part that would stall the task
// for as long. A full snapshot instead copies the table (a memcpy) and
// flips its epoch (deferredTable.flip), and takes its Pebble snapshot. Its
// asynchronous part applies the copy to the entries it writes
// (compaction.EntryFilter.Pending), so the checkpoint holds what reads
// buffered. A goroutine meanwhile writes the copy's keys back to Pebble,
// in sorted batches under b.mu, each with the key's entry in the live
// table as it is then: a key the live table no longer holds was set or
// deleted since, and its new value must stay as written.
//
// Once that is done, every slot still of the old epoch is in Pebble as it
// is, and the task forgets those (dropOld), which frees the buffer for new
// keys; slots changed since the flip stay for the next write-back. Until
// then the live table keeps every entry, so reads, cleanup and iterations
// see no difference. Flush, Close, incremental snapshots and the next full
// snapshot first wait for a running write-back.

// bgBatchKeys is the most keys one batch of a background write-back holds
// b.mu for: about half a millisecond of the task's writes waiting.
const bgBatchKeys = 512

// bgWriteBack is a running background write-back.
type bgWriteBack struct {
	done atomic.Bool   // set once it ended, err final
	wait chan struct{} // closed once it ended
	err  error
}

// startWriteBack copies the buffer for a full snapshot, flips its epoch
// and starts writing the copy back. It returns the copy, or nil if the
// buffer is empty. There must be no write-back running.
func (b *Backend[K]) startWriteBack() *deferredTable {
	if b.def.empty() {
		return nil
	}
	b.mu.Lock()
	cp := b.def.t.clone()
	b.def.t.flip()
	b.mu.Unlock()
	bg := &bgWriteBack{wait: make(chan struct{})}
	b.def.bg = bg
	go b.runWriteBack(cp, bg)
	return cp
}

// runWriteBack writes the keys of cp back, on its own goroutine.
func (b *Backend[K]) runWriteBack(cp *deferredTable, bg *bgWriteBack) {
	defer close(bg.wait)
	defer bg.done.Store(true)
	keys, _ := cp.sorted(nil, nil)
	for start := 0; start < len(keys); start += bgBatchKeys {
		if err := b.writeBackBatch(keys[start:min(start+bgBatchKeys, len(keys))]); err != nil {
			bg.err = err
			return
		}
	}
}

// writeBackBatch writes back one batch of keys with their live entries.
// The iterator is opened under b.mu, so it sees every write the task made
// before.
func (b *Backend[K]) writeBackBatch(keys []keyed) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.newWriteBack()
	it, err := b.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("backend: write back TTL work: %w", err)
	}
	defer it.Close()
	batch := b.db.NewBatch()
	defer batch.Close()
	written := 0
	for _, k := range keys {
		e, ok := b.def.t.lookup(k.key)
		if !ok {
			continue // set or deleted since the copy
		}
		if err := w.write(batch, it, k.key, e); err != nil {
			return err
		}
		written++
	}
	if batch.Empty() {
		return nil
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("backend: write back TTL work: %w", err)
	}
	w.note()
	b.ttlMetrics.writtenBack.Add(uint64(written))
	return nil
}

// finishWriteBack ends a background write-back: with wait, it waits for
// one that runs; without, it acts only on one that has ended well. The
// task then forgets the keys it wrote back, unless an open iteration pins
// the buffer (they stay, true and harmless, until a later write-back). It
// returns the write-back's error; its keys then stay in the buffer too.
func (b *Backend[K]) finishWriteBack(wait bool) error {
	bg := b.def.bg
	if bg == nil {
		return nil
	}
	if wait {
		<-bg.wait
	} else if !bg.done.Load() || bg.err != nil {
		return nil
	}
	b.def.bg = nil
	if bg.err != nil {
		return bg.err
	}
	if b.def.pins > 0 {
		return nil
	}
	b.mu.Lock()
	kept := b.def.t.dropOld()
	b.def.bytes = 0
	for _, k := range kept {
		b.def.bytes += int64(len(k.key)) + deferredOverhead
	}
	b.def.publish()
	b.mu.Unlock()
	return nil
}
