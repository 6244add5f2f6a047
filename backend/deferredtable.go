package backend

import (
	"hash/maphash"
	"math"
)

// deferredTable maps keys to their deferred TTL work: an open-addressing
// hash table with linear probing whose keys live in one byte arena. It
// holds no pointers but the two slices, so the garbage collector never
// scans its entries, and adding a key allocates nothing once the slices
// have grown: a Go map with string keys would allocate each key and keep
// the collector marking them (bench/RESULTS.md, "TTL read buffer").
type deferredTable struct {
	seed    maphash.Seed
	slots   []deferredSlot // a power of two; empty slots have hash 0
	n       int            // keys held
	arena   []byte         // the keys, appended; forgotten ones are garbage
	garbage int            // bytes of arena no slot refers to
	// The last find, which raise reuses when nothing moved since: a read
	// looks its key up, then records its access.
	memo struct {
		key        []byte
		h, version uint64
		i          int
		found      bool
	}
	version uint64 // bumped by every change of slot positions
}

// deferredSlot is one key's place in the table.
type deferredSlot struct {
	hash uint64 // of the key, never 0
	off  uint32 // the key is arena[off : off+klen]
	klen uint32
	e    deferredEntry
}

func newDeferredTable() deferredTable {
	return deferredTable{seed: maphash.MakeSeed(), slots: make([]deferredSlot, 64)}
}

func (t *deferredTable) hash(key []byte) uint64 {
	// The top bit keeps it off 0, the empty mark, without touching the low
	// bits that pick the home slot (setting the lowest bit instead left
	// every even slot without keys of its own, doubling the probe runs).
	return maphash.Bytes(t.seed, key) | 1<<63
}

func (t *deferredTable) key(s *deferredSlot) []byte {
	return t.arena[s.off : s.off+s.klen : s.off+s.klen]
}

// find returns the slot of key, or of the empty slot where it would go.
func (t *deferredTable) find(key []byte, h uint64) (int, bool) {
	m := &t.memo
	if m.h == h && m.version == t.version && string(m.key) == string(key) {
		return m.i, m.found
	}
	i, found := t.probe(key, h)
	m.key = append(m.key[:0], key...)
	m.h, m.version, m.i, m.found = h, t.version, i, found
	return i, found
}

// probe is find without the memo.
func (t *deferredTable) probe(key []byte, h uint64) (int, bool) {
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == 0 {
			return i, false
		}
		if s.hash == h && string(t.key(s)) == string(key) {
			return i, true
		}
	}
}

// get returns the entry of key.
func (t *deferredTable) get(key []byte) (deferredEntry, bool) {
	if t.n == 0 {
		return deferredEntry{}, false
	}
	i, ok := t.find(key, t.hash(key))
	return t.slots[i].e, ok
}

// lookup is get without the memo, for goroutines other than the task's:
// it changes nothing, so it may run beside the task's lookups (which write
// the memo), though not beside changes to the table.
func (t *deferredTable) lookup(key []byte) (deferredEntry, bool) {
	if t.n == 0 {
		return deferredEntry{}, false
	}
	i, ok := t.probe(key, t.hash(key))
	return t.slots[i].e, ok
}

// put records e for key, replacing what it had, and reports whether key
// is new.
func (t *deferredTable) put(key []byte, e deferredEntry) bool {
	h := t.hash(key)
	i, ok := t.find(key, h)
	if ok {
		t.slots[i].e = e
		return false
	}
	if len(t.arena)+len(key) > math.MaxUint32 {
		t.compact() // offsets are 32-bit; TTLReadBuffer is at most 1 GiB
	}
	t.insertAt(i, h, key, e)
	return true
}

// insertAt puts key, which the table does not hold, into the empty slot i
// that find returned for it.
func (t *deferredTable) insertAt(i int, h uint64, key []byte, e deferredEntry) {
	t.version++
	t.slots[i] = deferredSlot{hash: h, off: uint32(len(t.arena)), klen: uint32(len(key)), e: e}
	t.arena = append(t.arena, key...)
	// At most three quarters full. Half full would shorten the probes of a
	// miss (2.5 slots on average rather than 8.5, but those are adjacent,
	// two to a cache line) at the price of twice the table, and the cache
	// misses of a table larger than the L3 cost more: OnReadAndWrite reads
	// ran about 0.15x slower half full (bench/RESULTS.md).
	if t.n++; t.n*4 > len(t.slots)*3 {
		t.resize(len(t.slots) * 2)
	}
}

// raise records that key was accessed at now, with one probe: it raises a
// held key's access time, or adds the key if add allows. It reports
// whether the table now covers the access, and whether the key is new.
func (t *deferredTable) raise(key []byte, now int64, add bool) (covered, isNew bool) {
	h := t.hash(key)
	i, ok := t.find(key, h)
	if ok {
		if e := &t.slots[i].e; !e.removed && e.at < now {
			e.at = now
		}
		return true, false
	}
	if !add {
		return false, false
	}
	if len(t.arena)+len(key) > math.MaxUint32 {
		t.compact()
	}
	t.insertAt(i, h, key, deferredEntry{at: now})
	return true, true
}

// remove forgets key and reports whether it was there.
func (t *deferredTable) remove(key []byte) bool {
	if t.n == 0 {
		return false
	}
	i, ok := t.find(key, t.hash(key))
	if !ok {
		return false
	}
	t.garbage += int(t.slots[i].klen)
	t.deleteAt(i)
	if t.n--; t.n == 0 {
		t.arena, t.garbage = t.arena[:0], 0
	} else if t.garbage > 1<<20 && t.garbage > len(t.arena)/2 {
		t.compact()
	}
	return true
}

// deleteAt empties slot i, moving later slots of its probe run back so
// that every key stays reachable from its home slot (no tombstones).
func (t *deferredTable) deleteAt(i int) {
	t.version++
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].hash != 0; j = (j + 1) & mask {
		home := int(t.slots[j].hash) & mask
		// Slot j may move to i unless its home lies cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = deferredSlot{}
}

// resize rehashes into n slots.
func (t *deferredTable) resize(n int) {
	t.version++
	old := t.slots
	t.slots = make([]deferredSlot, n)
	mask := n - 1
	for _, s := range old {
		if s.hash == 0 {
			continue
		}
		i := int(s.hash) & mask
		for t.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// compact copies the live keys into a new arena.
func (t *deferredTable) compact() {
	arena := make([]byte, 0, len(t.arena)-t.garbage)
	for i := range t.slots {
		s := &t.slots[i]
		if s.hash == 0 {
			continue
		}
		off := len(arena)
		arena = append(arena, t.key(s)...)
		s.off = uint32(off)
	}
	t.arena, t.garbage = arena, 0
}

// keyed is a key, copied out of the table, with its entry.
type keyed struct {
	key string
	e   deferredEntry
}

// entries appends every key, copied, with its entry to dst.
func (t *deferredTable) entries(dst []keyed) []keyed {
	for i := range t.slots {
		if s := &t.slots[i]; s.hash != 0 {
			dst = append(dst, keyed{string(t.key(s)), s.e})
		}
	}
	return dst
}

// reset empties the table, keeping its memory.
func (t *deferredTable) reset() {
	clear(t.slots)
	t.n, t.arena, t.garbage = 0, t.arena[:0], 0
	t.version++
}
