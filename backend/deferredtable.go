package backend

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"

	"github.com/pebblestate/pebblestate/ttl"
)

// deferredTable maps keys to their deferred TTL work: an open-addressing
// hash table with linear probing whose keys live in one byte arena. It
// holds no pointers but the two slices, so the garbage collector never
// scans its entries, and adding a key allocates nothing once the slices
// have grown: a Go map with string keys would allocate each key and keep
// the collector marking them (bench/RESULTS.md, "TTL read buffer").
//
// A slot is 16 bytes, so that more of the table stays in the CPU's caches:
// under OnReadAndWrite every read of a key not yet held adds it, and the
// cache and TLB misses of that addition are most of what a buffered read
// costs beyond a plain one (32-byte slots cost about 0.1x of a list read
// more, bench/RESULTS.md).
type deferredTable struct {
	seed    maphash.Seed
	slots   []deferredSlot // a power of two; empty slots have hash 0
	n       int            // keys held
	arena   []byte         // the keys, each after its length (uvarint); forgotten ones are garbage
	garbage int            // bytes of arena no slot refers to
	// The last find, which raise reuses when nothing moved since: a read
	// looks its key up, then records its access.
	memo struct {
		key     []byte
		h       uint32
		version uint64
		i       int
		found   bool
	}
	version uint64 // bumped by every change of slot positions
	epoch   uint32 // 0 or epochBit: the mark of slots changed since the last flip
}

// epochBit marks, in a slot's hash, the epoch the slot was last changed
// in. A snapshot flips the table's epoch and hands a copy of the table to
// a background write-back; once that is done, the slots still of the old
// epoch are in Pebble as they are, and dropOld forgets them. The bit is
// above the home slot's bits (tables have at most 2^26 slots).
const epochBit = 1 << 30

// deferredSlot is one key's place in the table.
type deferredSlot struct {
	hash uint32 // of the key, never 0
	off  uint32 // the key's length and bytes start at arena[off]
	at   int64  // the entry's access time, or removedAt
}

// removedAt is the at of a slot whose key reads removed. An entry that is
// not removed has a later at: reads record access times.
const removedAt = math.MinInt64

func (s *deferredSlot) entry() deferredEntry {
	if s.at == removedAt {
		return deferredEntry{at: ttl.NoFloor, removed: true}
	}
	return deferredEntry{at: s.at}
}

func (s *deferredSlot) set(e deferredEntry) {
	if e.removed {
		s.at = removedAt
	} else {
		s.at = e.at
	}
}

func newDeferredTable() deferredTable { return newDeferredTableSeed(maphash.MakeSeed()) }

// newDeferredTableSeed returns an empty table that hashes with seed, so
// that tables sharing a seed agree on every key's hash.
func newDeferredTableSeed(seed maphash.Seed) deferredTable {
	return deferredTable{seed: seed, slots: make([]deferredSlot, 64)}
}

func (t *deferredTable) hash(key []byte) uint32 {
	// The top bit keeps it off 0, the empty mark, without touching the low
	// bits that pick the home slot (setting the lowest bit instead left
	// every even slot without keys of its own, doubling the probe runs).
	// Tables have at most 2^26 slots (1 GiB of 16-byte slots).
	return (uint32(maphash.Bytes(t.seed, key)) | 1<<31) &^ epochBit
}

// key returns the key of s, and the bytes it takes in the arena.
func (t *deferredTable) key(s *deferredSlot) []byte {
	k, _ := t.record(s)
	return k
}

func (t *deferredTable) record(s *deferredSlot) (key []byte, size int) {
	klen, n := binary.Uvarint(t.arena[s.off:])
	start := int(s.off) + n
	end := start + int(klen)
	return t.arena[start:end:end], end - int(s.off)
}

// find returns the slot of key, or of the empty slot where it would go.
func (t *deferredTable) find(key []byte, h uint32) (int, bool) {
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
func (t *deferredTable) probe(key []byte, h uint32) (int, bool) {
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == 0 {
			return i, false
		}
		if s.hash&^epochBit == h && string(t.key(s)) == string(key) {
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
	if !ok {
		return deferredEntry{}, false
	}
	return t.slots[i].entry(), true
}

// lookup is get without the memo, for goroutines other than the task's:
// it changes nothing, so it may run beside the task's lookups (which write
// the memo), though not beside changes to the table.
func (t *deferredTable) lookup(key []byte) (deferredEntry, bool) {
	if t.n == 0 {
		return deferredEntry{}, false
	}
	i, ok := t.probe(key, t.hash(key))
	if !ok {
		return deferredEntry{}, false
	}
	return t.slots[i].entry(), true
}

// put records e for key, replacing what it had, and reports whether key
// is new.
func (t *deferredTable) put(key []byte, e deferredEntry) bool {
	h := t.hash(key)
	i, ok := t.find(key, h)
	if ok {
		s := &t.slots[i]
		s.set(e)
		s.hash = s.hash&^epochBit | t.epoch
		return false
	}
	t.insertAt(i, h, key, e)
	return true
}

// insertAt puts key, which the table does not hold, into the empty slot i
// that find returned for it.
func (t *deferredTable) insertAt(i int, h uint32, key []byte, e deferredEntry) {
	if len(t.arena)+binary.MaxVarintLen64+len(key) > math.MaxUint32 {
		t.compact() // offsets are 32-bit; TTLReadBuffer is at most 1 GiB
	}
	t.version++
	t.slots[i] = deferredSlot{hash: h | t.epoch, off: uint32(len(t.arena))}
	t.slots[i].set(e)
	t.arena = binary.AppendUvarint(t.arena, uint64(len(key)))
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
		if s := &t.slots[i]; s.at != removedAt && s.at < now {
			s.at = now
			s.hash = s.hash&^epochBit | t.epoch
		}
		return true, false
	}
	if !add {
		return false, false
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
	_, size := t.record(&t.slots[i])
	t.garbage += size
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
		_, size := t.record(s)
		arena = append(arena, t.arena[s.off:int(s.off)+size]...)
		s.off = uint32(off)
	}
	t.arena, t.garbage = arena, 0
}

// keyed is a key with its entry.
type keyed struct {
	key []byte
	e   deferredEntry
}

// sortItem is a key of the table with the first 16 bytes of the key
// (zero-padded, big endian), which decide most comparisons without
// reaching the arena.
type sortItem struct {
	p0, p1    uint64
	off, klen uint32 // the key is arena[off : off+klen]
	at        int64  // the slot's at
}

// sorted appends every key with its entry to dst, in key order, using
// items as scratch, and returns both. The keys are the arena's
// bytes: they stay valid until the table next changes (a write-back holds
// b.mu, so nothing changes it meanwhile). Sorting prefixes, and reading
// each key from the arena once, wrote back a fifth faster than sorting
// string copies of the keys (bench/RESULTS.md).
func (t *deferredTable) sorted(dst []keyed, items []sortItem) ([]keyed, []sortItem) {
	items = slices.Grow(items[:0], t.n)
	for i := range t.slots {
		if s := &t.slots[i]; s.hash != 0 {
			k, size := t.record(s)
			var p [16]byte
			copy(p[:], k)
			off := int(s.off) + size - len(k)
			items = append(items, sortItem{binary.BigEndian.Uint64(p[:8]), binary.BigEndian.Uint64(p[8:]), uint32(off), uint32(len(k)), s.at})
		}
	}
	key := func(it *sortItem) []byte { return t.arena[it.off : it.off+it.klen : it.off+it.klen] }
	slices.SortFunc(items, func(a, b sortItem) int {
		if c := cmp.Compare(a.p0, b.p0); c != 0 {
			return c
		}
		if c := cmp.Compare(a.p1, b.p1); c != 0 {
			return c
		}
		return bytes.Compare(key(&a), key(&b))
	})
	dst = slices.Grow(dst, len(items))
	for i := range items {
		s := deferredSlot{at: items[i].at}
		dst = append(dst, keyed{key(&items[i]), s.entry()})
	}
	return dst, items
}

// reset empties the table, keeping its memory.
func (t *deferredTable) reset() {
	clear(t.slots)
	t.n, t.arena, t.garbage = 0, t.arena[:0], 0
	t.version++
}

// clone returns a copy of the table for other goroutines to read (with
// lookup and sorted, which change nothing) while this one changes.
func (t *deferredTable) clone() *deferredTable {
	return &deferredTable{
		seed:    t.seed,
		slots:   slices.Clone(t.slots),
		n:       t.n,
		arena:   slices.Clone(t.arena),
		garbage: t.garbage,
		epoch:   t.epoch,
	}
}

// flip starts a new epoch: the slots present now are of the old one
// until they next change.
func (t *deferredTable) flip() { t.epoch ^= epochBit }

// dropOld forgets every key whose slot has not changed since the last
// flip, and returns the keys kept with their entries (as put would take
// them, for the caller's accounting).
func (t *deferredTable) dropOld() []keyed {
	var kept []keyed
	for i := range t.slots {
		if s := &t.slots[i]; s.hash != 0 && s.hash&epochBit == t.epoch {
			kept = append(kept, keyed{bytes.Clone(t.key(s)), s.entry()})
		}
	}
	t.reset()
	for _, k := range kept {
		t.put(k.key, k.e)
	}
	return kept
}
