package store

import (
	"hash/maphash"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/ttl"
)

// writeSlots is the size of a write table: 16,384 slots, 128 KiB. A
// confirm falls back to a point read when another key hashed to its slot
// was written since the scan's iterator opened; cleanup reopens its
// iterators often enough that few slots are touched meanwhile.
const writeSlots = 1 << 14

// writeTable records which keys may have been written since a point in
// time. Every write calls note (or noteAll for a batch) under the store's
// write lock, in the same critical section as the write itself; cleanup
// reads it under the same lock. It is therefore not synchronised itself.
//
// Each write takes a new generation number and stamps it into the slot its
// key hashes to. A key whose slot holds a generation no newer than g was
// not written after generation g, so a value read from an iterator opened
// at g is still the key's value, and cleanup can delete it without reading
// it again. Collisions only cost a read, never a wrong delete.
type writeTable struct {
	gen     uint64 // generation of the last write
	barrier uint64 // generation of the last noteAll
	seed    maphash.Seed
	slots   [writeSlots]uint64
}

func newWriteTable() *writeTable { return &writeTable{seed: maphash.MakeSeed()} }

// note records a write of key.
func (w *writeTable) note(key []byte) {
	w.gen++
	w.slots[maphash.Bytes(w.seed, key)&(writeSlots-1)] = w.gen
}

// noteAll records a write that may have touched any key, such as a batch.
func (w *writeTable) noteAll() {
	w.gen++
	w.barrier = w.gen
}

// unchanged reports whether key certainly was not written after generation
// since.
func (w *writeTable) unchanged(key []byte, since uint64) bool {
	return w.barrier <= since && w.slots[maphash.Bytes(w.seed, key)&(writeSlots-1)] <= since
}

// WriteGen returns the generation of the last write. Every write up to it
// is visible in an iterator opened after WriteGen returns; pass it to
// Confirm for the entries that iterator yields.
func (s *Store) WriteGen() uint64 {
	s.lockForCleanup()
	g := s.writes.gen
	s.mu.Unlock()
	return g
}

// Confirm applies a cleanup verdict to key under the write lock, so that
// no state write can slip in between the check and the change. The scan
// that judged the entry read it from an iterator opened at generation gen
// and found verdict v (with out, the value to store for ttl.Rewrite). If
// nobody wrote key since gen, v is applied as it is, without reading the
// entry again; otherwise the current value is read and judge decides
// again (a key deleted meanwhile is left alone). A Keep verdict, or a
// judge that fails, changes nothing. It reports whether it removed or
// rewrote the entry. judge's result is used before Confirm returns, and
// judge may return a slice it reuses.
func (s *Store) Confirm(key []byte, gen uint64, v ttl.Verdict, out []byte, judge func(raw []byte) (ttl.Verdict, []byte, error)) (bool, error) {
	s.lockForCleanup()
	defer s.mu.Unlock()
	if !s.writes.unchanged(key, gen) {
		raw, closer, err := s.db.Get(key)
		if err == pebble.ErrNotFound {
			return false, nil // deleted meanwhile
		}
		if err != nil {
			return false, err
		}
		defer closer.Close()
		if v, out, err = judge(raw); err != nil {
			return false, nil // malformed: kept, as the scan kept it; reads report it
		}
	}
	var err error
	switch v {
	case ttl.Drop:
		err = s.db.Delete(key, pebble.NoSync)
	case ttl.Rewrite:
		err = s.db.Set(key, out, pebble.NoSync)
	default:
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.writes.note(key)
	return true, nil
}

func (s *Store) lockForCleanup() {
	if h := s.opts.BeforeCleanupLock; h != nil {
		h()
	}
	s.mu.Lock()
}
