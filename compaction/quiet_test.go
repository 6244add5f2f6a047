package compaction

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/internal/ttltest"
)

// sweepScanned runs one paced background sweep and returns how many
// entries it checked.
func (x *fixture) sweepScanned() uint64 {
	x.t.Helper()
	before := x.scanned.Load()
	if err := x.f.sweep(context.Background(), true); err != nil {
		x.t.Fatal(err)
	}
	return x.scanned.Load() - before
}

// TestFilterSweepSkipsQuietStates checks that after a complete pass the
// background sweep leaves a state alone until its earliest entry can have
// expired, then scans it again and removes that entry on time.
func TestFilterSweepSkipsQuietStates(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	// Stamps t0-50 .. t0-41: the earliest expires at t0-50+ttltest.TTLMillis = t0+50.
	for i := range 10 {
		x.set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("k%d", i)), ttltest.StampedValue(t0-50+int64(i), "v"))
	}
	if err := x.st.Merge(ttltest.StateKey(ttltest.IDList, 0, "l"), ttltest.StampedList(int(t0-20), "a", int(t0-45), "b")); err != nil {
		t.Fatal(err)
	}
	if n := x.sweepScanned(); n != 11 {
		t.Fatalf("first sweep checked %d entries; want 11", n)
	}
	if n := x.sweepScanned(); n != 0 {
		t.Fatalf("second sweep at the same time checked %d entries; want 0", n)
	}
	// The list's element b expires at t0+55, the values from t0+50.
	x.clock.Set(time.UnixMilli(t0 + 49))
	if n := x.sweepScanned(); n != 0 {
		t.Fatalf("sweep 1 ms before the earliest expiry checked %d entries; want 0", n)
	}
	// Each state has its own bound: the list stays quiet until t0+55.
	x.clock.Set(time.UnixMilli(t0 + 50))
	if n := x.sweepScanned(); n != 10 {
		t.Fatalf("sweep at the earliest expiry checked %d entries; want the 10 values", n)
	}
	if _, ok := x.get(ttltest.StateKey(ttltest.IDValue, 0, "k0")); ok {
		t.Fatal("the entry expired at t0+50 survived the sweep at t0+50")
	}
	if got := x.count(ttltest.IDValue); got != 9 {
		t.Fatalf("%d values left; want 9", got)
	}
	// Next is k1 at t0+51.
	if n := x.sweepScanned(); n != 0 {
		t.Fatalf("sweep before k1 expires checked %d entries; want 0", n)
	}
	x.clock.Set(time.UnixMilli(t0 + 51))
	if n := x.sweepScanned(); n != 9 {
		t.Fatalf("sweep at k1's expiry checked %d entries; want 9", n)
	}
	// At t0+55 values k1..k5 and the list's element b have expired. (The
	// removals are dense, so the sweep compacts and the worker may rescan
	// the output: count what is left, not what was checked.)
	x.clock.Set(time.UnixMilli(t0 + 55))
	x.sweepScanned()
	if got := x.count(ttltest.IDValue); got != 4 {
		t.Fatalf("%d values left at t0+55; want 4", got)
	}
	if raw, ok := x.get(ttltest.StateKey(ttltest.IDList, 0, "l")); !ok || len(ttltest.ListUsers(t, raw)) != 1 || ttltest.ListUsers(t, raw)[0] != "a" {
		t.Fatalf("list after t0+55 = %x, %v; want [a]", raw, ok)
	}
}

// TestFilterQuietCoversNewWrites checks the bound for entries written
// after a pass: an empty state is quiet only until an entry stamped as the
// pass began would expire, so a later write is cleaned on time.
func TestFilterQuietCoversNewWrites(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	if n := x.sweepScanned(); n != 0 {
		t.Fatalf("sweep of empty states checked %d entries", n)
	}
	x.clock.Set(time.UnixMilli(t0 + 10))
	x.set(ttltest.StateKey(ttltest.IDValue, 0, "new"), ttltest.StampedValue(t0+10, "v"))
	x.clock.Set(time.UnixMilli(t0 + ttltest.TTLMillis - 1))
	if n := x.sweepScanned(); n != 0 {
		t.Fatalf("sweep before t0+ttl checked %d entries; want 0 (quiet)", n)
	}
	x.clock.Set(time.UnixMilli(t0 + ttltest.TTLMillis))
	if n := x.sweepScanned(); n != 1 {
		t.Fatalf("sweep at t0+ttl checked %d entries; want 1", n)
	}
	x.clock.Set(time.UnixMilli(t0 + 10 + ttltest.TTLMillis))
	if n := x.sweepScanned(); n != 1 {
		t.Fatalf("sweep at the new entry's expiry checked %d entries; want 1", n)
	}
	if _, ok := x.get(ttltest.StateKey(ttltest.IDValue, 0, "new")); ok {
		t.Fatal("the new entry survived its expiry")
	}
}

// TestFilterQuietForgottenWhenClockGoesBack checks that a clock that goes
// back makes the next sweep scan everything again: entries stamped by the
// earlier clock may expire before what the last pass learnt.
func TestFilterQuietForgottenWhenClockGoesBack(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	// Five live entries keep the removal of b sparse, so that the sweep
	// does not compact (and the worker does not rescan) the span.
	for i := range 5 {
		x.set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("a%d", i)), ttltest.StampedValue(t0, "v"))
	}
	if n := x.sweepScanned(); n != 5 {
		t.Fatalf("first sweep checked %d; want 5", n)
	}
	x.clock.Set(time.UnixMilli(t0 - 90))
	x.set(ttltest.StateKey(ttltest.IDValue, 0, "b"), ttltest.StampedValue(t0-90, "v"))
	if n := x.sweepScanned(); n != 6 {
		t.Fatalf("sweep after the clock went back checked %d; want 6", n)
	}
	x.clock.Set(time.UnixMilli(t0 + 10)) // b expires at t0+10
	if n := x.sweepScanned(); n != 6 {
		t.Fatalf("sweep at b's expiry checked %d; want 6", n)
	}
	if _, ok := x.get(ttltest.StateKey(ttltest.IDValue, 0, "b")); ok {
		t.Fatal("b survived its expiry")
	}
}

// TestFilterQuietSpansAndCleanup checks that span scans from flushes skip
// quiet states and that CleanupExpired never does.
func TestFilterQuietSpansAndCleanup(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	for i := range 5 {
		x.set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("k%d", i)), ttltest.StampedValue(t0, "v"))
		x.set(ttltest.StateKey(ttltest.IDPlain, 0, fmt.Sprintf("k%d", i)), []byte("plain"))
	}
	if n := x.sweepScanned(); n != 5 {
		t.Fatalf("sweep checked %d; want 5", n)
	}
	before := x.scanned.Load()
	if _, err := x.f.scanSpan(context.Background(), span{lo: ttltest.StateKey(ttltest.IDValue, 0, ""), hi: ttltest.StateKey(ttltest.IDPlain, 9, "")}, true); err != nil {
		t.Fatal(err)
	}
	if n := x.scanned.Load() - before; n != 0 {
		t.Fatalf("paced span scan over a quiet state checked %d; want 0", n)
	}
	before = x.scanned.Load()
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := x.scanned.Load() - before; n != 5 {
		t.Fatalf("CleanupExpired checked %d; want 5, quiet or not", n)
	}
}
