package ttl_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/internal/ttltest"
	"github.com/pebblestate/pebblestate/ttl"
)

func TestEntryFilterApply(t *testing.T) {
	f := ttl.NewEntryFilter(ttltest.Targets(), 1_100)
	for _, tc := range []struct {
		name  string
		key   []byte
		value []byte
		want  ttl.Verdict
		kept  []string // list elements kept by Rewrite
		err   bool
	}{
		{"value fresh", ttltest.StateKey(ttltest.IDValue, 0, "a"), ttltest.StampedValue(1_001, "x"), ttl.Keep, nil, false},
		{"value exactly at expiry", ttltest.StateKey(ttltest.IDValue, 0, "a"), ttltest.StampedValue(1_000, "x"), ttl.Drop, nil, false},
		{"map entry expired", ttltest.StateKey(ttltest.IDMap, 5, "k\x01uk"), ttltest.StampedValue(10, "x"), ttl.Drop, nil, false},
		{"map entry fresh", ttltest.StateKey(ttltest.IDMap, 5, "k\x01uk"), ttltest.StampedValue(1_099, "x"), ttl.Keep, nil, false},
		{"list all fresh", ttltest.StateKey(ttltest.IDList, 1, "a"), ttltest.StampedList(1_050, "p", 1_060, "q"), ttl.Keep, nil, false},
		{"list all expired", ttltest.StateKey(ttltest.IDList, 1, "a"), ttltest.StampedList(900, "p", 1_000, "q"), ttl.Drop, nil, false},
		{"list partly expired", ttltest.StateKey(ttltest.IDList, 1, "a"), ttltest.StampedList(900, "p", 1_050, "q", 1_000, "r", 1_060, "s"), ttl.Rewrite, []string{"q", "s"}, false},
		// Entries of states that are not targets survive whatever they hold.
		{"plain state, unstamped", ttltest.StateKey(ttltest.IDPlain, 0, "a"), []byte("xy"), ttl.Keep, nil, false},
		{"plain state, looks expired", ttltest.StateKey(ttltest.IDPlain, 0, "a"), ttltest.StampedValue(1, "x"), ttl.Keep, nil, false},
		{"system record", append(keys.AppendStateID(nil, keys.SystemID), 'S'), []byte("{}"), ttl.Keep, nil, false},
		{"key shorter than a state id", []byte{0}, ttltest.StampedValue(1, "x"), ttl.Keep, nil, false},
		{"empty key", nil, ttltest.StampedValue(1, "x"), ttl.Keep, nil, false},
		// A key of a target is judged by its first two bytes only.
		{"bare state id", keys.AppendStateID(nil, ttltest.IDValue), ttltest.StampedValue(1, "x"), ttl.Drop, nil, false},
		// Malformed values of targets are kept and reported, never dropped.
		{"value too short", ttltest.StateKey(ttltest.IDValue, 0, "a"), []byte{1, 2, 3}, ttl.Keep, nil, true},
		{"list bad framing", ttltest.StateKey(ttltest.IDList, 0, "a"), []byte{0xff}, ttl.Keep, nil, true},
		{"list element too short", ttltest.StateKey(ttltest.IDList, 0, "a"), listfmt.AppendElement(nil, []byte("abc")), ttl.Keep, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, out, err := f.Apply(tc.key, tc.value)
			if (err != nil) != tc.err {
				t.Fatalf("Apply error = %v; want error: %v", err, tc.err)
			}
			if v != tc.want {
				t.Fatalf("Apply verdict = %v; want %v", v, tc.want)
			}
			if v == ttl.Rewrite {
				if got := ttltest.ListUsers(t, out); !slices.Equal(got, tc.kept) {
					t.Fatalf("Rewrite kept %q; want %q", got, tc.kept)
				}
			}
		})
	}
}

func TestEntryFilterTargetAndSetNow(t *testing.T) {
	f := ttl.NewEntryFilter(ttltest.Targets(), 0)
	if tg, ok := f.Target(ttltest.StateKey(ttltest.IDList, 3, "x")); !ok || tg.ID != ttltest.IDList || tg.Layout != ttl.ListElements || tg.TTLMillis != ttltest.TTLMillis {
		t.Fatalf("Target(list key) = %+v, %v", tg, ok)
	}
	for _, k := range [][]byte{nil, {0}, ttltest.StateKey(ttltest.IDPlain, 0, ""), ttltest.StateKey(keys.MaxStateID, 0, "")} {
		if _, ok := f.Target(k); ok {
			t.Fatalf("Target(%x) found a target", k)
		}
	}
	key, val := ttltest.StateKey(ttltest.IDValue, 0, "a"), ttltest.StampedValue(1_000, "x")
	for _, tc := range []struct {
		now  int64
		want ttl.Verdict
	}{{1_099, ttl.Keep}, {1_100, ttl.Drop}, {1_099, ttl.Keep}, {5_000, ttl.Drop}} {
		f.SetNow(tc.now)
		if v, _, err := f.Apply(key, val); err != nil || v != tc.want {
			t.Fatalf("at %d: Apply = %v, %v; want %v", tc.now, v, err, tc.want)
		}
	}
	// No targets: everything survives.
	empty := ttl.NewEntryFilter(nil, 1<<40)
	if v, _, err := empty.Apply(key, val); err != nil || v != ttl.Keep {
		t.Fatalf("filter without targets: Apply = %v, %v", v, err)
	}
	// Targets differ in TTL: each state's own TTL applies.
	f = ttl.NewEntryFilter([]ttl.Target{{ID: 1, Layout: ttl.Single, TTLMillis: 10}, {ID: 2, Layout: ttl.Single, TTLMillis: 1_000}}, 500)
	if v, _, _ := f.Apply(ttltest.StateKey(1, 0, "a"), ttltest.StampedValue(100, "")); v != ttl.Drop {
		t.Fatalf("short-TTL state: %v; want Drop", v)
	}
	if v, _, _ := f.Apply(ttltest.StateKey(2, 0, "a"), ttltest.StampedValue(100, "")); v != ttl.Keep {
		t.Fatalf("long-TTL state: %v; want Keep", v)
	}
}

// TestEntryFilterRewriteBufferReuse checks that a Rewrite result is valid
// until the next call, and that a following Rewrite does not corrupt the
// caller's copy.
func TestEntryFilterRewriteBufferReuse(t *testing.T) {
	f := ttl.NewEntryFilter(ttltest.Targets(), 1_100)
	_, out1, _ := f.Apply(ttltest.StateKey(ttltest.IDList, 0, "a"), ttltest.StampedList(1, "gone", 1_050, "first"))
	saved := bytes.Clone(out1)
	if got := ttltest.ListUsers(t, saved); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("first rewrite = %q", got)
	}
	_, out2, _ := f.Apply(ttltest.StateKey(ttltest.IDList, 0, "b"), ttltest.StampedList(1, "gone", 1_050, "second", 1_060, "third"))
	if got := ttltest.ListUsers(t, out2); !slices.Equal(got, []string{"second", "third"}) {
		t.Fatalf("second rewrite = %q", got)
	}
	if got := ttltest.ListUsers(t, saved); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("the caller's copy changed: %q", got)
	}
}

// TestEntryFilterFullSnapshot uses the filter the way full snapshots do: a
// real Pebble database with TTL state in its stored form (list elements
// written through the merge operator in several operands), a Pebble
// snapshot, and every entry of the snapshot passed through the filter.
// Exactly the unexpired entries and list elements must come out, and
// writes after the snapshot must not.
func TestEntryFilterFullSnapshot(t *testing.T) {
	db, err := pebble.Open(t.TempDir(), &pebble.Options{Merger: listfmt.Merger, FormatMajorVersion: pebble.FormatNewest, Logger: efQuiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	set := func(k, v []byte) {
		t.Helper()
		if err := db.Set(k, v, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	merge := func(k, v []byte) {
		t.Helper()
		if err := db.Merge(k, v, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	const now = 10_000 // expiry boundary: stamps <= 9_900 are expired
	want := map[string][]string{}

	// System records and a state without TTL: always kept as they are.
	set(keys.BackendMetaKey(), []byte(`{"x":1}`))
	want[string(keys.BackendMetaKey())] = []string{`{"x":1}`}
	for i := range 20 {
		k := ttltest.StateKey(ttltest.IDPlain, i%4, fmt.Sprintf("p%02d", i))
		set(k, []byte{byte(i)}) // too short to carry a stamp: must not matter
		want[string(k)] = []string{string([]byte{byte(i)})}
	}
	// Value and map state: stamps on both sides of the boundary.
	for i := range 200 {
		for _, id := range []uint16{ttltest.IDValue, ttltest.IDMap} {
			k := ttltest.StateKey(id, i%8, fmt.Sprintf("k%03d", i))
			ts := int64(9_800 + i) // 9_800..9_999: i < 101 expired
			set(k, ttltest.StampedValue(ts, fmt.Sprintf("v%d", i)))
			if !ttl.Expired(ts, ttltest.TTLMillis, now) {
				want[string(k)] = []string{fmt.Sprintf("v%d", i)}
			}
		}
	}
	// Lists, written in three merge operands, some flushed between, so the
	// iterator merges operands from memtable and sstables.
	for i := range 50 {
		k := ttltest.StateKey(ttltest.IDList, i%8, fmt.Sprintf("l%02d", i))
		var kept []string
		for op := range 3 {
			ts := int64(9_850 + 50*op - i) // op 0 mostly expired, op 2 fresh
			user := fmt.Sprintf("e%d.%d", i, op)
			merge(k, ttltest.StampedList(int(ts), user))
			if !ttl.Expired(ts, ttltest.TTLMillis, now) {
				kept = append(kept, user)
			}
		}
		if len(kept) > 0 {
			want[string(k)] = kept
		}
		if i == 20 {
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A list whose only element expired, and one with an expired element
	// between fresh ones.
	kAllGone := ttltest.StateKey(ttltest.IDList, 0, "all-gone")
	merge(kAllGone, ttltest.StampedList(100, "x"))
	kMiddle := ttltest.StateKey(ttltest.IDList, 0, "middle")
	merge(kMiddle, ttltest.StampedList(9_950, "a", 9_000, "b", 9_960, "c"))
	want[string(kMiddle)] = []string{"a", "c"}

	snap := db.NewSnapshot()
	defer snap.Close()
	// Writes after the snapshot are not in it.
	set(ttltest.StateKey(ttltest.IDValue, 0, "after"), ttltest.StampedValue(now, "late"))
	merge(ttltest.StateKey(ttltest.IDList, 1, "l01"), ttltest.StampedList(now, "late"))
	if err := db.Delete(ttltest.StateKey(ttltest.IDValue, 7, "k199"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}

	it, err := snap.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	f := ttl.NewEntryFilter(ttltest.Targets(), now)
	got := map[string][]string{}
	var order [][]byte
	dropped, rewritten := 0, 0
	for valid := it.First(); valid; valid = it.Next() {
		key := it.Key()
		order = append(order, bytes.Clone(key))
		v, out, err := f.Apply(key, it.Value())
		if err != nil {
			t.Fatalf("Apply(%x): %v", key, err)
		}
		tg, isTTL := f.Target(key)
		switch v {
		case ttl.Drop:
			dropped++
			continue
		case ttl.Rewrite:
			rewritten++
			got[string(key)] = ttltest.ListUsers(t, out)
		case ttl.Keep:
			switch {
			case !isTTL:
				got[string(key)] = []string{string(it.Value())}
			case tg.Layout == ttl.ListElements:
				got[string(key)] = ttltest.ListUsers(t, it.Value())
			default:
				_, u, _ := ttl.SplitStamp(it.Value())
				got[string(key)] = []string{string(u)}
			}
		}
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(order, bytes.Compare) {
		t.Fatal("snapshot iteration out of order")
	}
	if len(got) != len(want) {
		t.Errorf("snapshot kept %d entries; want %d", len(got), len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !slices.Equal(g, w) {
			t.Errorf("entry %x: got %q (present %v); want %q", k, g, ok, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("entry %x came out of the snapshot but should not: %q", k, got[k])
		}
	}
	if dropped == 0 || rewritten == 0 {
		t.Fatalf("dropped %d, rewrote %d: the test data should exercise both", dropped, rewritten)
	}
	// The filter judged a snapshot, not the live database, which it left
	// alone: the expired entries are still stored.
	if _, closer, err := db.Get(kAllGone); err != nil {
		t.Fatalf("live database lost %x: %v", kAllGone, err)
	} else {
		closer.Close()
	}
	if _, _, err := db.Get(ttltest.StateKey(ttltest.IDValue, 7, "k199")); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("delete after the snapshot not applied to the live database: %v", err)
	}
}

// efQuiet drops Pebble's messages but a fatal one.
type efQuiet struct{}

func (efQuiet) Infof(string, ...any)         {}
func (efQuiet) Errorf(string, ...any)        {}
func (efQuiet) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
