package backend_test

// Reading and changing a closed backend's directory with Pebble directly:
// for tests that check what is stored, corrupt stored bytes or force
// compactions.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// rawDB opens a closed backend's directory with Pebble directly, with the
// backend's merge operator. The caller closes it.
func rawDB(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	return openRaw(t, dir, false)
}

func openRaw(t testing.TB, dir string, readOnly bool) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{
		ReadOnly: readOnly, Merger: listfmt.Merger, FormatMajorVersion: pebble.FormatNewest, Logger: testLogger{t},
	})
	if err != nil {
		t.Fatalf("pebble.Open(%s): %v", dir, err)
	}
	return db
}

// testLogger sends Pebble's errors to the test log and drops the rest.
type testLogger struct{ t testing.TB }

func (testLogger) Infof(string, ...any)                {}
func (l testLogger) Errorf(format string, args ...any) { l.t.Logf("pebble: "+format, args...) }
func (l testLogger) Fatalf(format string, args ...any) {
	l.t.Errorf("pebble fatal: "+format, args...)
	panic(fmt.Sprintf(format, args...)) // Pebble requires Fatalf not to return
}

// compactAll opens the closed backend directory dir with Pebble, flushes,
// compacts every key into one level (running the list merge operator over
// all of a key's operands), and closes it again.
func compactAll(t testing.TB, dir string) {
	t.Helper()
	db := rawDB(t, dir)
	noErr(t, db.Flush())
	noErr(t, db.Compact(context.Background(), []byte{0}, []byte{0xff, 0xff, 0xff}, false))
	noErr(t, db.Close())
}

// singleStateKey returns the only key of user state data in the closed
// backend directory dir (state ids start at 1; id 0 holds metadata).
func singleStateKey(t testing.TB, dir string) []byte {
	t.Helper()
	db := openRaw(t, dir, true)
	defer db.Close()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{0, 1}})
	noErr(t, err)
	defer it.Close()
	var found [][]byte
	for valid := it.First(); valid; valid = it.Next() {
		found = append(found, slices.Clone(it.Key()))
	}
	if len(found) != 1 {
		t.Fatalf("found %d state entries, want 1: %x", len(found), found)
	}
	return found[0]
}

// overwriteRaw stores value under key in the closed backend directory dir.
func overwriteRaw(t testing.TB, dir string, key, value []byte) {
	t.Helper()
	db := rawDB(t, dir)
	noErr(t, db.Set(key, value, pebble.NoSync))
	noErr(t, db.Flush())
	noErr(t, db.Close())
}

// rawEntry is one stored key and value.
type rawEntry struct{ key, value []byte }

// rawView is the content of a closed backend directory, read with Pebble
// directly (read-only, with the backend's merge operator, so list operands
// come back merged).
type rawView struct {
	records map[string]meta.State
	byID    map[uint16][]rawEntry
}

// readRaw reads the closed backend directory dir.
func readRaw(t testing.TB, dir string) *rawView {
	t.Helper()
	db := openRaw(t, dir, true)
	defer db.Close()
	it, err := db.NewIter(nil)
	noErr(t, err)
	defer it.Close()
	v := &rawView{records: map[string]meta.State{}, byID: map[uint16][]rawEntry{}}
	recPrefix := keys.StateMetaPrefix()
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) < keys.StateIDLen {
			t.Fatalf("raw: key %x shorter than a state id", k)
		}
		val, err := it.ValueAndErr()
		noErr(t, err)
		id := binary.BigEndian.Uint16(k)
		if id == keys.SystemID {
			if bytes.HasPrefix(k, recPrefix) {
				m, err := meta.DecodeState(val)
				if err != nil {
					t.Fatalf("raw: state record %q: %v", k, err)
				}
				v.records[m.Name] = m
			}
			continue
		}
		v.byID[id] = append(v.byID[id], rawEntry{bytes.Clone(k), bytes.Clone(val)})
	}
	noErr(t, it.Error())
	return v
}

// record returns the stored record of the named state.
func (v *rawView) record(t testing.TB, name string) meta.State {
	t.Helper()
	m, ok := v.records[name]
	if !ok {
		t.Fatalf("raw: no record of state %q (have %v)", name, slices.Sorted(maps.Keys(v.records)))
	}
	return m
}

// entries returns the stored entries of the named state.
func (v *rawView) entries(t testing.TB, name string) []rawEntry {
	t.Helper()
	return v.byID[v.record(t, name).ID]
}

// units counts what the named state stores: list elements for a list
// state, entries otherwise (values, accumulators, map entries). It is the
// unit TTLMetrics counts removals in.
func (v *rawView) units(t testing.TB, name string) int {
	t.Helper()
	m := v.record(t, name)
	if m.Kind != meta.KindList {
		return len(v.byID[m.ID])
	}
	n := 0
	for _, e := range v.byID[m.ID] {
		c, err := listfmt.Count(e.value)
		if err != nil {
			t.Fatalf("raw: list %x: %v", e.key, err)
		}
		n += c
	}
	return n
}

// total is the number of stored entries of user states, under any id.
func (v *rawView) total() int {
	n := 0
	for _, es := range v.byID {
		n += len(es)
	}
	return n
}

// orphans is the number of stored entries under ids no record names.
func (v *rawView) orphans() int {
	used := map[uint16]bool{}
	for _, m := range v.records {
		used[m.ID] = true
	}
	n := 0
	for id, es := range v.byID {
		if !used[id] {
			n += len(es)
		}
	}
	return n
}

// stamps returns the TTL stamps stored for the named state: one per entry,
// or one per element for a list.
func (v *rawView) stamps(t testing.TB, name string) []int64 {
	t.Helper()
	m := v.record(t, name)
	var out []int64
	for _, e := range v.byID[m.ID] {
		if m.Kind != meta.KindList {
			ts, _, err := ttl.SplitStamp(e.value)
			noErr(t, err)
			out = append(out, ts)
			continue
		}
		for rest := e.value; len(rest) > 0; {
			elem, r, err := listfmt.Next(rest)
			noErr(t, err)
			ts, _, err := ttl.SplitStamp(elem)
			noErr(t, err)
			out = append(out, ts)
			rest = r
		}
	}
	return out
}

// userInt64 decodes the int64 after the TTL stamp of a stored value.
func userInt64(t testing.TB, raw []byte) int64 {
	t.Helper()
	_, user, err := ttl.SplitStamp(raw)
	noErr(t, err)
	return must(backend.Int64.Decode(user)).in(t)
}
