package backend

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/ttl"
)

// Every write of state data goes through these helpers, under b.mu.
// Background TTL cleanup confirms an entry is still expired and deletes it
// under the same lock, so a key rewritten after cleanup scanned it is never
// deleted. Each write is noted in b.writes in the same critical section,
// which lets cleanup skip re-reading entries nobody wrote since its scan.
// Uncontended, the lock and the note cost tens of nanoseconds. The writes
// also keep the buffer of TTL work reads put off true (deferred.go).

func (b *Backend[K]) set(key, value []byte) error {
	b.mu.Lock()
	err := b.db.Set(key, value, pebble.NoSync)
	b.writes.Note(key)
	if err == nil { // a failed write leaves the key's deferred work true
		b.def.drop(key)
	}
	b.mu.Unlock()
	return err
}

func (b *Backend[K]) merge(key, value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.settleForMergeLocked(key); err != nil {
		return err
	}
	err := b.db.Merge(key, value, pebble.NoSync)
	b.writes.Note(key)
	return err
}

// settleForMergeLocked writes back the deferred work of a key about to
// take a merge operand, unless the operand leaves it true: a removed key
// must be deleted before its new elements arrive, and an access time later
// than now (the clock went back) would raise the new elements' stamps.
func (b *Backend[K]) settleForMergeLocked(key []byte) error {
	e, ok := b.def.get(key)
	if !ok || !e.removed && e.at <= ttl.Millis(b.opts.Clock.Now()) {
		return nil
	}
	return b.settleLocked(key)
}

func (b *Backend[K]) del(key []byte) error {
	b.mu.Lock()
	err := b.db.Delete(key, pebble.NoSync)
	b.writes.Note(key)
	if err == nil {
		b.def.drop(key)
	}
	b.mu.Unlock()
	return err
}

func (b *Backend[K]) commit(batch *pebble.Batch) error {
	if batch.Empty() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.settleBatchLocked(batch, true); err != nil {
		return err
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		b.writes.NoteAll()
		return err
	}
	b.writes.NoteAll()
	return b.settleBatchLocked(batch, false)
}

// settleBatchLocked keeps the buffer of deferred TTL work true across a
// batch, as set, merge and del do for single writes: before the commit
// it writes back the work of the keys the batch merges into, after it
// forgets the work of the keys the batch set or deleted.
func (b *Backend[K]) settleBatchLocked(batch *pebble.Batch, before bool) error {
	if b.def.empty() {
		return nil
	}
	r := batch.Reader()
	for {
		kind, key, value, ok, err := r.Next()
		if err != nil {
			return fmt.Errorf("backend: read batch: %w", err)
		}
		if !ok {
			return nil
		}
		switch {
		case kind == pebble.InternalKeyKindMerge:
			if before {
				if err := b.settleForMergeLocked(key); err != nil {
					return err
				}
			}
		case before:
		case kind == pebble.InternalKeyKindRangeDelete:
			b.dropRangeLocked(key, value)
		default:
			b.def.drop(key)
		}
	}
}
