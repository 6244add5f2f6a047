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
	if err := b.settleMergesLocked(batch); err != nil {
		return err
	}
	err := batch.Commit(pebble.NoSync)
	b.writes.NoteAll()
	if err != nil {
		return err
	}
	return b.forgetWrittenLocked(batch)
}

// settleMergesLocked writes back, before batch commits, the deferred TTL
// work of the keys it merges into, as merge does for one key.
func (b *Backend[K]) settleMergesLocked(batch *pebble.Batch) error {
	return b.eachBatchRecord(batch, func(kind pebble.InternalKeyKind, key, _ []byte) error {
		if kind != pebble.InternalKeyKindMerge {
			return nil
		}
		return b.settleForMergeLocked(key)
	})
}

// forgetWrittenLocked forgets, once batch committed, the deferred TTL work
// of the keys it set or deleted, as set and del do for one key.
func (b *Backend[K]) forgetWrittenLocked(batch *pebble.Batch) error {
	return b.eachBatchRecord(batch, func(kind pebble.InternalKeyKind, key, value []byte) error {
		switch kind {
		case pebble.InternalKeyKindMerge:
		case pebble.InternalKeyKindRangeDelete:
			b.dropRangeLocked(key, value)
		default:
			b.def.drop(key)
		}
		return nil
	})
}

// eachBatchRecord calls fn for every record of batch, unless the buffer of
// deferred work is empty, which no record can change.
func (b *Backend[K]) eachBatchRecord(batch *pebble.Batch, fn func(kind pebble.InternalKeyKind, key, value []byte) error) error {
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
		if err := fn(kind, key, value); err != nil {
			return err
		}
	}
}
