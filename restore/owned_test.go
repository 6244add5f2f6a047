package restore

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/invariants"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
)

// ownedKey is a state entry key of state id in key group kg.
func ownedKey(id uint16, kg, width int, rest string) []byte {
	return append(keys.AppendKeyGroup(keys.AppendStateID(nil, id), kg, width), rest...)
}

// ownedDB opens a database in a temporary directory holding keys, some
// flushed to a table and the rest in the memtable.
func ownedDB(t *testing.T, ks ...[]byte) DB {
	t.Helper()
	o := &pebble.Options{FormatMajorVersion: pebble.FormatNewest}
	db, err := pebble.Open(filepath.Join(t.TempDir(), "db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i, k := range ks {
		if err := db.Set(k, []byte("v"), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if i == len(ks)/2 {
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return Pebble(db, o)
}

// TestStrayKey checks the scan behind checkOwned on databases that hold
// only their key groups and on ones with one key too many, at both key
// group widths and at the edges of the range.
func TestStrayKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		maxPar int
		r      keygroup.Range
	}{
		{"one byte, middle", 128, keygroup.Range{Start: 40, End: 90}},
		{"one byte, all", 128, keygroup.Range{Start: 0, End: 128}},
		{"two bytes, middle", 4096, keygroup.Range{Start: 300, End: 2000}},
		{"two bytes, top", 1 << 15, keygroup.Range{Start: 1 << 14, End: 1 << 15}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := keys.KeyGroupBytes(tc.maxPar)
			first, last := tc.r.Start, tc.r.End-1
			good := [][]byte{
				append(keys.AppendStateID(nil, keys.SystemID), "backend record"...),
				ownedKey(1, first, w, ""), ownedKey(1, last, w, "zzz"),
				ownedKey(7, first, w, "a"), ownedKey(7, (first+last)/2, w, "b"), ownedKey(7, last, w, "\xff\xff"),
				ownedKey(keys.MaxStateID, last, w, "c"),
			}
			db := ownedDB(t, good...)
			if stray, err := strayKey(db, tc.r, tc.maxPar); err != nil || stray != nil {
				t.Fatalf("strayKey of a database holding only its key groups = %x, %v", stray, err)
			}
			bad := [][]byte{
				ownedKey(7, tc.r.End, w, "a"), // the first group past the range
				{0x00, 0x05},                  // a state prefix alone, no key group
				{0x03},                        // shorter than a state id
				{0xff, 0xff, 0x00},            // above every state id
			}
			if tc.r.Start > 0 {
				bad = append(bad, ownedKey(1, tc.r.Start-1, w, "z"), ownedKey(9, 0, w, ""))
			}
			for _, k := range bad {
				db := ownedDB(t, append(append([][]byte(nil), good...), k)...)
				if stray, err := strayKey(db, tc.r, tc.maxPar); err != nil || !bytes.Equal(stray, k) {
					t.Errorf("strayKey with %x added = %x, %v; want %x", k, stray, err, k)
				}
			}
			// An empty range owns nothing.
			if stray, err := strayKey(db, keygroup.Range{Start: first, End: first}, tc.maxPar); err != nil || !bytes.Equal(stray, good[1]) {
				t.Errorf("strayKey for no key groups = %x, %v; want %x", stray, err, good[1])
			}
		})
	}
}

// TestCheckOwned checks the assertion itself: quiet on a database of its
// key groups; on a stray key, a panic with ErrViolated under the
// invariants tag and nothing without it.
func TestCheckOwned(t *testing.T) {
	r := keygroup.Range{Start: 10, End: 20}
	db := ownedDB(t, ownedKey(3, 10, 1, "a"), ownedKey(3, 19, 1, "b"))
	if v := panicOf(func() { checkOwned(db, r, 128) }); v != nil {
		t.Fatalf("checkOwned of a database holding only its key groups panicked: %v", v)
	}
	db = ownedDB(t, ownedKey(3, 10, 1, "a"), ownedKey(3, 20, 1, "b"))
	v := panicOf(func() { checkOwned(db, r, 128) })
	err, _ := v.(error)
	switch {
	case !invariants.Enabled && v != nil:
		t.Fatalf("checkOwned without the invariants tag panicked: %v", v)
	case invariants.Enabled && !errors.Is(err, invariants.ErrViolated):
		t.Fatalf("checkOwned of a stray key under the invariants tag: panic %v; want ErrViolated", v)
	}
}

// panicOf runs fn and returns what it panicked with, or nil.
func panicOf(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}
