package compaction

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func TestWritesUnchanged(t *testing.T) {
	w := NewWrites()
	a, b := []byte("key-a"), []byte("key-b")
	g0 := w.Gen()
	if !w.Unchanged(a, g0) || !w.Unchanged(b, g0) {
		t.Fatal("a fresh table reports a write")
	}
	w.Note(a)
	if w.Unchanged(a, g0) {
		t.Fatal("a write after g0 is not seen")
	}
	g1 := w.Gen()
	if g1 <= g0 {
		t.Fatalf("Gen did not advance: %d after %d", g1, g0)
	}
	if !w.Unchanged(a, g1) {
		t.Fatal("a write before g1 is seen as after it")
	}
	// Unless b shares a's slot, it is unchanged since g0.
	if w.slotOf(a) != w.slotOf(b) && !w.Unchanged(b, g0) {
		t.Fatal("a write of a marks b")
	}
	w.NoteAll()
	if w.Unchanged(b, g1) || w.Unchanged(a, g1) {
		t.Fatal("NoteAll does not mark every key")
	}
	if !w.Unchanged(b, w.Gen()) {
		t.Fatal("nothing was written after the last generation")
	}
}

// TestWritesCollisionsAreConservative writes many keys and checks that no
// written key is ever reported unchanged, whatever else shares its slot.
func TestWritesCollisionsAreConservative(t *testing.T) {
	w := NewWrites()
	g0 := w.Gen()
	for i := range 3 * writeSlots {
		w.Note(fmt.Appendf(nil, "k%d", i))
	}
	for i := range 3 * writeSlots {
		if w.Unchanged(fmt.Appendf(nil, "k%d", i), g0) {
			t.Fatalf("key %d reported unchanged after its write", i)
		}
	}
}

func (w *Writes) slotOf(key []byte) uint64 {
	g := w.Gen()
	saved := w.slots
	w.Note(key)
	for i := range w.slots {
		if w.slots[i] != saved[i] {
			w.slots = saved
			w.gen = g
			return uint64(i)
		}
	}
	panic("Note changed no slot")
}

// notedFixture is a filter fixture whose writes are noted in a Writes
// table under the filter's lock, as the backend's are.
func notedFixture(t *testing.T) (*fixture, *Writes) {
	w := NewWrites()
	return newFixture(t, Config{SweepInterval: -1, Writes: w}), w
}

func (x *fixture) setNoted(w *Writes, k, v []byte) {
	x.t.Helper()
	x.mu.Mutex.Lock()
	defer x.mu.Mutex.Unlock()
	x.set(k, v)
	w.Note(k)
}

// cleanupWritingBeforeConfirm runs a full pass and calls write once, just
// before the pass's second hold of the lock: hold 1 is the scan reading the
// write generation as its iterator opens, hold 2 the first confirm, after
// the scan condemned everything (fewer than confirmBatch entries).
func (x *fixture) cleanupWritingBeforeConfirm(write func()) {
	x.t.Helper()
	var once sync.Once
	hook := func() {
		if x.mu.holds.Load() == 1 {
			once.Do(write)
		}
	}
	x.mu.before.Store(&hook)
	defer x.mu.before.Store(nil)
	if err := x.f.Cleanup(context.Background()); err != nil {
		x.t.Fatal(err)
	}
}

// TestFilterConfirmWithWrites checks both sides of confirming with a
// Writes table: an entry written after the scan read it (and noted) is read
// again and kept; an entry nobody noted is deleted as the scan judged it,
// without a second read. The second half proves the read is skipped: the
// fixture rewrites those keys behind the table's back, which the contract
// forbids, and the filter deletes them anyway.
func TestFilterConfirmWithWrites(t *testing.T) {
	x, w := notedFixture(t)
	t0 := x.now()
	var noted, unnoted [][]byte
	for i := range 10 {
		noted = append(noted, stateKey(idValue, 0, fmt.Sprintf("n%d", i)))
		unnoted = append(unnoted, stateKey(idValue, 0, fmt.Sprintf("u%d", i)))
		x.setNoted(w, noted[i], stampedValue(t0, "old"))
		x.setNoted(w, unnoted[i], stampedValue(t0, "old"))
	}
	x.clock.Advance(time.Hour)
	now := x.now()
	x.cleanupWritingBeforeConfirm(func() {
		for i := range noted {
			x.set(noted[i], stampedValue(now, "rewritten"))
			w.Note(noted[i])
			x.set(unnoted[i], stampedValue(now, "rewritten"))
		}
	})
	for i := range noted {
		if raw, ok := x.get(noted[i]); !ok || !bytes.Equal(raw, stampedValue(now, "rewritten")) {
			t.Fatalf("noted key %d rewritten after the scan was lost: %x, %v", i, raw, ok)
		}
	}
	// Some unnoted keys may share a slot with a noted one; they were read
	// again and kept. Most were not.
	kept := 0
	for i := range unnoted {
		if _, ok := x.get(unnoted[i]); ok {
			kept++
		}
	}
	if kept > 2 {
		t.Fatalf("%d of %d unnoted keys kept: the filter re-read them", kept, len(unnoted))
	}
}

// TestFilterConfirmWithWritesBatch checks that a batch write (NoteAll)
// after the scan makes every condemned entry be read again.
func TestFilterConfirmWithWritesBatch(t *testing.T) {
	x, w := notedFixture(t)
	t0 := x.now()
	var ks [][]byte
	for i := range 10 {
		ks = append(ks, stateKey(idValue, 0, fmt.Sprintf("k%d", i)))
		x.setNoted(w, ks[i], stampedValue(t0, "old"))
	}
	x.clock.Advance(time.Hour)
	now := x.now()
	x.cleanupWritingBeforeConfirm(func() {
		b := x.db.NewBatch()
		for _, k := range ks {
			_ = b.Set(k, stampedValue(now, "batched"), nil)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Error(err)
		}
		w.NoteAll()
	})
	for i, k := range ks {
		if raw, ok := x.get(k); !ok || !bytes.Equal(raw, stampedValue(now, "batched")) {
			t.Fatalf("key %d written by a batch after the scan was lost: %x, %v", i, raw, ok)
		}
	}
	if got := x.removed.Load(); got != 0 {
		t.Fatalf("removed %d; want 0", got)
	}
}

// TestFilterScanReopensIterator scans more entries than refreshEvery, with
// expired and live entries interleaved and writes noted throughout, and
// checks that every expired entry and only those were removed: reopening
// the iterator mid-span neither skips nor repeats entries.
func TestFilterScanReopensIterator(t *testing.T) {
	x, w := notedFixture(t)
	t0 := x.now()
	n := 3*refreshEvery + 17
	x.clock.Advance(time.Hour)
	now := x.now()
	for i := range n {
		ts := now
		if i%3 == 0 {
			ts = t0 // expired
		}
		x.setNoted(w, stateKey(idValue, 0, fmt.Sprintf("k%06d", i)), stampedValue(ts, "v"))
	}
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := n - (n+2)/3
	if got := x.removed.Load(); got != uint64((n+2)/3) {
		t.Fatalf("removed %d; want %d", got, (n+2)/3)
	}
	if got := x.count(idValue); got != want {
		t.Fatalf("%d entries left; want %d", got, want)
	}
	// The pass compacts the span it emptied, and the background worker may
	// then scan the compaction's output too.
	if got := x.scanned.Load(); got < uint64(n) {
		t.Fatalf("scanned %d; want %d (removed %d)", got, n, x.removed.Load())
	}
	for i := 0; i < n; i += 3 {
		if _, ok := x.get(stateKey(idValue, 0, fmt.Sprintf("k%06d", i))); ok {
			t.Fatalf("expired entry %d survived", i)
		}
	}
}
