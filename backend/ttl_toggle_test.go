package backend_test

// TTL switched on and off across reopens (Flink 2.2's TtlAwareSerializer
// migration): stored entries are rewritten under a new state id, stamped
// with the reopen time when TTL comes on and stripped when it goes off;
// nothing is left under the old id, and a migration cut short is undone at
// the next open.

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/ttl"
)

// ttlToggleMode is what a toggle dataset does with its states.
type ttlToggleMode int

const (
	ttlRegisterOnly ttlToggleMode = iota // register, touch nothing
	ttlWrite                             // write the dataset
	ttlWantPresent                       // read everything back, exactly
	ttlWantAbsent                        // read nothing back
)

// The dataset: every state holds entries for keys k0..k3 in namespaces
// n1 and n2.
var (
	ttlToggleKeys = []string{"k0", "k1", "k2", "k3"}
	ttlToggleNS   = []string{"n1", "n2"}
)

// ttlToggleKind registers its state with cfg and does mode on every (key,
// namespace) of the dataset. entries is what the dataset stores.
type ttlToggleKind struct {
	name    string
	entries int
	run     func(t *testing.T, e *env, cfg ttl.Config, mode ttlToggleMode)
}

// ttlEach calls fn for every (key, namespace) of the dataset, with the key
// set, and their indexes.
func ttlEach(t *testing.T, e *env, setNS func(string) error, fn func(i, j int)) {
	t.Helper()
	for i, k := range ttlToggleKeys {
		e.setKey(k)
		for j, ns := range ttlToggleNS {
			noErr(t, setNS(ns))
			fn(i, j)
		}
	}
}

func ttlToggleKinds() []ttlToggleKind {
	return []ttlToggleKind{
		{"value", 8, func(t *testing.T, e *env, cfg ttl.Config, mode ttlToggleMode) {
			s := must(backend.GetValueNS(e.b, backend.String, backend.ValueDescriptor[int64]{Name: "s", Codec: backend.Int64, TTL: cfg})).in(t)
			if mode == ttlRegisterOnly {
				return
			}
			ttlEach(t, e, s.SetCurrentNamespace, func(i, j int) {
				want := int64(10*i + j)
				if mode == ttlWrite {
					noErr(t, s.Update(want))
					return
				}
				got, ok, err := s.Get()
				noErr(t, err)
				if ok != (mode == ttlWantPresent) || ok && got != want {
					t.Fatalf("(%d, %d): Get = %d, %v; want %d, present %v", i, j, got, ok, want, mode == ttlWantPresent)
				}
			})
		}},
		{"list", 8, func(t *testing.T, e *env, cfg ttl.Config, mode ttlToggleMode) {
			s := must(backend.GetListNS(e.b, backend.String, backend.ListDescriptor[int64]{Name: "s", Codec: backend.Int64, TTL: cfg})).in(t)
			if mode == ttlRegisterOnly {
				return
			}
			ttlEach(t, e, s.SetCurrentNamespace, func(i, j int) {
				want := []int64{int64(i), int64(j), 100, 7}
				if mode == ttlWrite {
					noErr(t, s.AddAll(want[:3]))
					noErr(t, s.Add(want[3])) // a second merge operand
					return
				}
				got, err := s.Get()
				noErr(t, err)
				if mode == ttlWantAbsent {
					want = nil
				}
				if !slices.Equal(got, want) {
					t.Fatalf("(%d, %d): list = %v; want %v", i, j, got, want)
				}
			})
		}},
		{"map", 24, func(t *testing.T, e *env, cfg ttl.Config, mode ttlToggleMode) {
			s := must(backend.GetMapNS(e.b, backend.String, backend.MapDescriptor[string, int64]{Name: "s", KeyCodec: backend.String, ValueCodec: backend.Int64, TTL: cfg})).in(t)
			if mode == ttlRegisterOnly {
				return
			}
			ttlEach(t, e, s.SetCurrentNamespace, func(i, j int) {
				want := map[string]int64{"a": int64(i), "b": int64(j), "c": int64(i + j)}
				if mode == ttlWrite {
					noErr(t, s.PutAll(maps.All(want)))
					return
				}
				got := map[string]int64{}
				for en, err := range s.Entries() {
					noErr(t, err)
					got[en.Key] = en.Value
				}
				if mode == ttlWantAbsent {
					want = map[string]int64{}
				}
				if !maps.Equal(got, want) {
					t.Fatalf("(%d, %d): map = %v; want %v", i, j, got, want)
				}
			})
		}},
		{"reducing", 8, func(t *testing.T, e *env, cfg ttl.Config, mode ttlToggleMode) {
			s := must(backend.GetReducingNS(e.b, backend.String, backend.ReducingDescriptor[int64]{Name: "s", Codec: backend.Int64, Reduce: sum, TTL: cfg})).in(t)
			if mode == ttlRegisterOnly {
				return
			}
			ttlEach(t, e, s.SetCurrentNamespace, func(i, j int) {
				if mode == ttlWrite {
					noErr(t, s.Add(int64(i)))
					noErr(t, s.Add(int64(100*j+1)))
					return
				}
				want := int64(i + 100*j + 1)
				got, ok, err := s.Get()
				noErr(t, err)
				if ok != (mode == ttlWantPresent) || ok && got != want {
					t.Fatalf("(%d, %d): Get = %d, %v; want %d, present %v", i, j, got, ok, want, mode == ttlWantPresent)
				}
			})
		}},
		{"aggregating", 8, func(t *testing.T, e *env, cfg ttl.Config, mode ttlToggleMode) {
			s := must(backend.GetAggregatingNS(e.b, backend.String, backend.AggregatingDescriptor[int64, avgAcc, int64]{
				Name: "s", Codec: backend.JSON[avgAcc](), Function: sumAgg{}, TTL: cfg})).in(t)
			if mode == ttlRegisterOnly {
				return
			}
			ttlEach(t, e, s.SetCurrentNamespace, func(i, j int) {
				if mode == ttlWrite {
					noErr(t, s.Add(int64(i)))
					noErr(t, s.Add(int64(100*j+1)))
					return
				}
				want := int64(i + 100*j + 1)
				got, ok, err := s.Get()
				noErr(t, err)
				if ok != (mode == ttlWantPresent) || ok && got != want {
					t.Fatalf("(%d, %d): Get = %d, %v; want %d, present %v", i, j, got, ok, want, mode == ttlWantPresent)
				}
			})
		}},
	}
}

// ttlWantStored checks the stored form of state "s" after a toggle: its
// record says TTL on or off, it lives under a new id with nothing left
// under the old one or any id no record names, and with TTL on every
// entry (every list element) is stamped at stamp.
func ttlWantStored(t *testing.T, raw *rawView, k ttlToggleKind, ttlOn bool, oldID uint16, stamp int64) uint16 {
	t.Helper()
	rec := raw.record(t, "s")
	if rec.TTL != ttlOn {
		t.Fatalf("record says TTL %v; want %v", rec.TTL, ttlOn)
	}
	if rec.ID == oldID {
		t.Fatalf("the toggled state kept its id %d", oldID)
	}
	if n := len(raw.byID[oldID]); n != 0 {
		t.Fatalf("%d entries left under the old id %d", n, oldID)
	}
	if n := raw.orphans(); n != 0 {
		t.Fatalf("%d entries under ids no record names", n)
	}
	if n := len(raw.entries(t, "s")); n != k.entries || raw.total() != k.entries {
		t.Fatalf("%d entries under the new id, %d in all; want %d (no duplicates, none lost)", n, raw.total(), k.entries)
	}
	if ttlOn {
		stamps := raw.stamps(t, "s")
		for _, s := range stamps {
			if s != stamp {
				t.Fatalf("entry stamped %d; want the reopen time %d", s, stamp)
			}
		}
		if k.name == "list" && len(stamps) != 4*k.entries {
			t.Fatalf("%d stamped list elements; want %d", len(stamps), 4*k.entries)
		}
	}
	return rec.ID
}

// TestTTLToggle switches TTL on, off and on again across reopens for
// every state kind, with namespaces, checking both what reads return and
// what is stored.
func TestTTLToggle(t *testing.T) {
	on := ttl.Config{TTL: ttlD, Cleanup: ttl.Cleanup{DisableBackground: true}}
	off := ttl.Config{}
	// Update Disabled turns TTL off whatever the duration.
	offByUpdate := ttl.Config{TTL: time.Hour, Update: ttl.Disabled}
	for _, k := range ttlToggleKinds() {
		t.Run(k.name, func(t *testing.T) {
			e := newEnv(t)
			e.t = t
			k.run(t, e, off, ttlWrite)
			k.run(t, e, off, ttlWantPresent)
			raw := e.raw()
			if rec := raw.record(t, "s"); rec.TTL || len(raw.entries(t, "s")) != k.entries {
				t.Fatalf("before any toggle: record %+v, %d entries; want no TTL, %d", rec, len(raw.entries(t, "s")), k.entries)
			}
			id := raw.record(t, "s").ID

			// On: everything readable, stamped with the reopen time, so it
			// lives TTL from the reopen.
			e.advance(time.Hour)
			t1 := e.now()
			e.open()
			k.run(t, e, on, ttlWantPresent)
			e.advance(ttlD - time.Millisecond)
			k.run(t, e, on, ttlWantPresent) // reads do not restamp (OnCreateAndWrite)
			id = ttlWantStored(t, e.raw(), k, true, id, t1)

			// Off: everything readable, and it never expires.
			e.open()
			k.run(t, e, offByUpdate, ttlWantPresent)
			e.advance(10 * time.Hour)
			k.run(t, e, offByUpdate, ttlWantPresent)
			id = ttlWantStored(t, e.raw(), k, false, id, 0)

			// On again: stamped at this reopen, expired exactly TTL later.
			e.advance(time.Hour)
			t2 := e.now()
			e.open()
			k.run(t, e, on, ttlRegisterOnly)
			ttlWantStored(t, e.raw(), k, true, id, t2)
			e.open()
			e.advance(ttlD - time.Millisecond)
			k.run(t, e, on, ttlWantPresent)
			e.advance(time.Millisecond)
			k.run(t, e, on, ttlWantAbsent)
			// The reads removed what they found expired.
			if n := e.raw().total(); n != 0 {
				t.Fatalf("%d entries stored after every entry expired and was read", n)
			}
		})
	}
}

// TestTTLToggleSameTTLNoMigration checks that reopening with TTL still on
// (even with another duration) keeps the state's id and stamps.
func TestTTLToggleSameTTLNoMigration(t *testing.T) {
	e := newEnv(t)
	k := ttlToggleKinds()[1] // list: per-element stamps
	on := ttl.Config{TTL: ttlD, Cleanup: ttl.Cleanup{DisableBackground: true}}
	k.run(t, e, on, ttlWrite)
	t0 := e.now()
	raw := e.raw()
	id := raw.record(t, "s").ID
	e.advance(10 * time.Millisecond)
	e.open()
	longer := on
	longer.TTL = time.Hour
	k.run(t, e, longer, ttlRegisterOnly)
	raw = e.raw()
	if got := raw.record(t, "s").ID; got != id {
		t.Fatalf("changing only the duration moved the state from id %d to %d", id, got)
	}
	for _, s := range raw.stamps(t, "s") {
		if s != t0 {
			t.Fatalf("changing only the duration restamped an element: %d; want %d", s, t0)
		}
	}
	// The new duration applies to the old stamps.
	e.open()
	e.advance(ttlD)
	k.run(t, e, longer, ttlWantPresent)
}

// TestTTLToggleOnThenBackgroundCleanup checks that after TTL comes on,
// background cleanup covers the state under its new id.
func TestTTLToggleOnThenBackgroundCleanup(t *testing.T) {
	e := newEnv(t, func(o *backend.Options) { o.TTLSweepInterval = -1 })
	k := ttlToggleKinds()[2] // map
	k.run(t, e, ttl.Config{}, ttlWrite)
	e.reopen()
	k.run(t, e, ttl.Config{TTL: ttlD}, ttlRegisterOnly) // background cleanup on
	e.advance(ttlD)
	noErr(t, e.b.CleanupExpired(context.Background()))
	if got := e.b.TTLMetrics().BackgroundRemoved; got != uint64(k.entries) {
		t.Fatalf("background cleanup removed %d entries; want %d", got, k.entries)
	}
	if n := e.raw().total(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

// TestTTLToggleInterruptedMigration simulates a crash in the middle of a
// migration: entries already rewritten under the next state id, but the
// state's record not yet switched. The next open must drop them as
// orphans, migrate again, and leave neither duplicates nor strays, while
// other states are untouched.
func TestTTLToggleInterruptedMigration(t *testing.T) {
	e := newEnv(t)
	const n = 100
	vd := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64}
	od := backend.ValueDescriptor[int64]{Name: "other", Codec: backend.Int64}
	v := must(backend.GetValue(e.b, vd)).in(t)
	o := must(backend.GetValue(e.b, od)).in(t)
	for i := range n {
		e.setKey(fmt.Sprint("k", i))
		noErr(t, v.Update(int64(i)))
		noErr(t, o.Update(int64(-i)))
	}
	raw := e.raw()
	vid, oid := raw.record(t, "v").ID, raw.record(t, "other").ID
	next := max(vid, oid) + 1

	// What a migration to TTL cut short leaves: half the entries rewritten
	// under the next id, and a stray entry no live key has; plus debris
	// under a far-away id.
	db := rawDB(t, e.dir)
	for j, en := range raw.entries(t, "v") {
		if j%2 == 1 {
			continue
		}
		k := append(keys.AppendStateID(nil, next), en.key[keys.StateIDLen:]...)
		noErr(t, db.Set(k, append(ttl.AppendStamp(nil, 1), en.value...), pebble.NoSync))
	}
	stray := append(keys.AppendStateID(nil, next), "stray"...)
	noErr(t, db.Set(stray, ttl.AppendStamp(nil, e.now()), pebble.NoSync))
	noErr(t, db.Set(binary.BigEndian.AppendUint16(nil, 500), []byte("debris"), pebble.NoSync))
	noErr(t, db.Flush())
	noErr(t, db.Close())
	if got := readRaw(t, e.dir).orphans(); got != n/2+2 {
		t.Fatalf("simulated %d orphaned entries; want %d", got, n/2+2)
	}

	e.open()
	vd.TTL = ttl.Config{TTL: ttlD, Cleanup: ttl.Cleanup{DisableBackground: true}}
	v = must(backend.GetValue(e.b, vd)).in(t)
	o = must(backend.GetValue(e.b, od)).in(t)
	for i := range n {
		e.setKey(fmt.Sprint("k", i))
		if got, ok, err := v.Get(); err != nil || !ok || got != int64(i) {
			t.Fatalf("v at k%d = %d, %v, %v; want %d", i, got, ok, err, i)
		}
		if got, ok, err := o.Get(); err != nil || !ok || got != int64(-i) {
			t.Fatalf("other at k%d = %d, %v, %v; want %d", i, got, ok, err, -i)
		}
	}
	raw = e.raw()
	if got := raw.orphans(); got != 0 {
		t.Fatalf("%d orphaned entries survived the reopen", got)
	}
	if got := raw.total(); got != 2*n {
		t.Fatalf("%d entries stored; want %d", got, 2*n)
	}
	if rec := raw.record(t, "v"); !rec.TTL || rec.ID == vid {
		t.Fatalf("v's record after the migration: %+v", rec)
	}
	if got := raw.record(t, "other").ID; got != oid {
		t.Fatalf("other state moved from id %d to %d", oid, got)
	}
	// The migration stamped with the reopen time, not the debris' stamp 1.
	for _, s := range raw.stamps(t, "v") {
		if s != e.now() {
			t.Fatalf("v entry stamped %d; want %d", s, e.now())
		}
	}
}
