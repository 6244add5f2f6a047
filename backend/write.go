package backend

import (
	"github.com/cockroachdb/pebble/v2"
)

// Every write of state data goes through these helpers, under b.mu.
// Background TTL cleanup confirms an entry is still expired and deletes it
// under the same lock, so a key rewritten after cleanup scanned it is never
// deleted. Each write is noted in b.writes in the same critical section,
// which lets cleanup skip re-reading entries nobody wrote since its scan.
// Uncontended, the lock and the note cost tens of nanoseconds.

func (b *Backend[K]) set(key, value []byte) error {
	b.mu.Lock()
	err := b.db.Set(key, value, pebble.NoSync)
	b.writes.Note(key)
	b.mu.Unlock()
	return err
}

func (b *Backend[K]) merge(key, value []byte) error {
	b.mu.Lock()
	err := b.db.Merge(key, value, pebble.NoSync)
	b.writes.Note(key)
	b.mu.Unlock()
	return err
}

func (b *Backend[K]) del(key []byte) error {
	b.mu.Lock()
	err := b.db.Delete(key, pebble.NoSync)
	b.writes.Note(key)
	b.mu.Unlock()
	return err
}

func (b *Backend[K]) commit(batch *pebble.Batch) error {
	if batch.Empty() {
		return nil
	}
	b.mu.Lock()
	err := batch.Commit(pebble.NoSync)
	b.writes.NoteAll()
	b.mu.Unlock()
	return err
}
