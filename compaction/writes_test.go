package compaction

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/internal/ttltest"
)

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

// TestFilterConfirmWithWrites checks confirming against the store's write
// tracking: an entry written after the scan read it is read again and
// kept; the entries nobody wrote are deleted as the scan judged them.
// (That those are deleted without a second read is checked in
// internal/store, where a test can write behind the tracking's back.)
func TestFilterConfirmWithWrites(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	var written, untouched [][]byte
	for i := range 10 {
		written = append(written, ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("n%d", i)))
		untouched = append(untouched, ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("u%d", i)))
		x.set(written[i], ttltest.StampedValue(t0, "old"))
		x.set(untouched[i], ttltest.StampedValue(t0, "old"))
	}
	x.clock.Advance(time.Hour)
	now := x.now()
	x.cleanupWritingBeforeConfirm(func() {
		for i := range written {
			x.set(written[i], ttltest.StampedValue(now, "rewritten"))
		}
	})
	for i := range written {
		if raw, ok := x.get(written[i]); !ok || !bytes.Equal(raw, ttltest.StampedValue(now, "rewritten")) {
			t.Fatalf("key %d rewritten after the scan was lost: %x, %v", i, raw, ok)
		}
	}
	for i := range untouched {
		if _, ok := x.get(untouched[i]); ok {
			t.Fatalf("expired key %d nobody wrote survived", i)
		}
	}
	if got := x.removed.Load(); got != uint64(len(untouched)) {
		t.Fatalf("removed %d; want %d", got, len(untouched))
	}
}

// TestFilterConfirmWithWritesBatch checks that a batch write after the
// scan makes every condemned entry be read again.
func TestFilterConfirmWithWritesBatch(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	var ks [][]byte
	for i := range 10 {
		ks = append(ks, ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("k%d", i)))
		x.set(ks[i], ttltest.StampedValue(t0, "old"))
	}
	x.clock.Advance(time.Hour)
	now := x.now()
	x.cleanupWritingBeforeConfirm(func() {
		b := x.st.NewBatch()
		defer b.Close()
		for _, k := range ks {
			_ = b.Set(k, ttltest.StampedValue(now, "batched"))
		}
		if err := x.st.Commit(b); err != nil {
			t.Error(err)
		}
	})
	for i, k := range ks {
		if raw, ok := x.get(k); !ok || !bytes.Equal(raw, ttltest.StampedValue(now, "batched")) {
			t.Fatalf("key %d written by a batch after the scan was lost: %x, %v", i, raw, ok)
		}
	}
	if got := x.removed.Load(); got != 0 {
		t.Fatalf("removed %d; want 0", got)
	}
}

// TestFilterScanReopensIterator scans more entries than refreshEvery, with
// expired and live entries interleaved, and checks that every expired
// entry and only those were removed: reopening the iterator mid-span
// neither skips nor repeats entries.
func TestFilterScanReopensIterator(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	n := 3*refreshEvery + 17
	x.clock.Advance(time.Hour)
	now := x.now()
	for i := range n {
		ts := now
		if i%3 == 0 {
			ts = t0 // expired
		}
		x.set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("k%06d", i)), ttltest.StampedValue(ts, "v"))
	}
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := n - (n+2)/3
	if got := x.removed.Load(); got != uint64((n+2)/3) {
		t.Fatalf("removed %d; want %d", got, (n+2)/3)
	}
	if got := x.count(ttltest.IDValue); got != want {
		t.Fatalf("%d entries left; want %d", got, want)
	}
	// The pass compacts the span it emptied, and the background worker may
	// then scan the compaction's output too.
	if got := x.scanned.Load(); got < uint64(n) {
		t.Fatalf("scanned %d; want %d (removed %d)", got, n, x.removed.Load())
	}
	for i := 0; i < n; i += 3 {
		if _, ok := x.get(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("k%06d", i))); ok {
			t.Fatalf("expired entry %d survived", i)
		}
	}
}
