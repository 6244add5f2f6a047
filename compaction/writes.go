package compaction

import "hash/maphash"

// writeSlots is the size of a Writes table: 16,384 slots, 128 KiB. A
// confirm falls back to a point read when another key hashed to its slot
// was written since the scan's iterator opened; the iterator is reopened
// often enough (see refreshEvery) that few slots are touched meanwhile.
const writeSlots = 1 << 14

// Writes records, for the filter's confirm step, which keys may have been
// written since a point in time. Every write of state data calls Note (or
// NoteAll for a batch) under the lock the filter's Config.Lock names, as
// part of the same critical section as the write itself; the filter reads
// it under the same lock. It is therefore not synchronised itself.
//
// Each write takes a new generation number and stamps it into the slot its
// key hashes to. A key whose slot holds a generation no newer than g was
// not written after generation g, so a value read from an iterator opened
// at g is still the key's value, and the filter can delete it without
// reading it again. Collisions only cost a read, never a wrong delete.
type Writes struct {
	gen     uint64 // generation of the last write
	barrier uint64 // generation of the last NoteAll
	seed    maphash.Seed
	slots   [writeSlots]uint64
}

// NewWrites returns an empty table.
func NewWrites() *Writes { return &Writes{seed: maphash.MakeSeed()} }

// Note records a write of key.
func (w *Writes) Note(key []byte) {
	w.gen++
	w.slots[maphash.Bytes(w.seed, key)&(writeSlots-1)] = w.gen
}

// NoteAll records a write that may have touched any key, such as a batch.
func (w *Writes) NoteAll() {
	w.gen++
	w.barrier = w.gen
}

// Gen returns the generation of the last write.
func (w *Writes) Gen() uint64 { return w.gen }

// Unchanged reports whether key certainly was not written after generation
// since.
func (w *Writes) Unchanged(key []byte, since uint64) bool {
	return w.barrier <= since && w.slots[maphash.Bytes(w.seed, key)&(writeSlots-1)] <= since
}
