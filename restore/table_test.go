package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
)

// A bottom-level table that compaction moved into place keeps the sequence
// numbers of its flush, and with a snapshot open during the flush it keeps
// older versions, tombstones and merge operands too. The restore reads
// such tables straight from their files and must resolve every key as
// Pebble would; where it cannot (a merge over an older version) it reads
// through the database instead.

// movedVariant says what the flushed, then moved, tables of a source hold
// besides one SET per key.
type movedVariant string

const (
	movedSets       movedVariant = "sets"           // one SET per key
	movedOverwrites movedVariant = "overwrites"     // newer SETs and DELs over older SETs
	movedDeletes    movedVariant = "deletes"        // lone DELs of keys never set
	movedMerges     movedVariant = "merges"         // lone MERGEs of keys never set
	movedMergeOver  movedVariant = "merge-over-set" // MERGEs over older SETs: read through the database
)

// movedSource builds a database of state x (id 1) over key groups r, in
// batches of eight key groups written in key order, each flushed into one
// table and moved to the bottom level by a compaction over nothing. It
// returns the source, its handle as checkpoint 1 in st, and the entries
// the database holds (incDump lines).
func movedSource(t *testing.T, st snapshot.Storage, r keygroup.Range, v movedVariant) (snapshot.Handle, []string) {
	t.Helper()
	o := incPebbleOpts()
	o.DisableAutomaticCompactions = true
	db, err := pebble.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	src := &incSource{inst: "mmmm", r: r, db: db, states: []snapshot.State{{
		FormatVersion: snapshot.StateFormatVersion, Name: "x", ID: 1, Kind: snapshot.StateKindValue,
		KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "string",
	}}}
	ctx := context.Background()
	var snaps []*pebble.Snapshot
	do := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for start := r.Start; start < r.End; start += 8 {
		end := min(start+8, r.End)
		for kg := start; kg < end; kg++ {
			for i := range incPerKG {
				k, val := incKey(1, kg, i), incValue("x", kg, i)
				switch {
				case v == movedDeletes && i%4 == 1:
					do(db.Delete(k, pebble.NoSync))
				case v == movedMerges && i%4 == 1:
					do(db.Merge(k, append(val, "/merged"...), pebble.NoSync))
				default:
					do(db.Set(k, val, pebble.NoSync))
				}
			}
		}
		// Merges over older versions in the first table only: the others
		// are read straight from their files.
		if v == movedOverwrites || v == movedMergeOver && start == r.Start {
			// Older versions survive the flush under an open snapshot.
			snaps = append(snaps, db.NewSnapshot())
			for kg := start; kg < end; kg++ {
				for i := range incPerKG {
					k := incKey(1, kg, i)
					switch {
					case v == movedOverwrites && i%3 == 0:
						do(db.Set(k, fmt.Appendf(nil, "x/%d/%d/new", kg, i), pebble.NoSync))
					case v == movedOverwrites && i%5 == 1:
						do(db.Delete(k, pebble.NoSync))
					case v == movedMergeOver && i%4 == 2:
						do(db.Merge(k, []byte("+more"), pebble.NoSync))
					}
				}
			}
		}
		do(db.Flush())
		do(db.Compact(ctx, incKey(1, start, 0), append(incKey(1, end-1, incPerKG), 0), false))
	}
	if _, nonZero, _ := straddleLevels(t, db); nonZero == 0 {
		t.Fatalf("%s: no bottom-level table has non-zero sequence numbers", v)
	}
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	for l, lvl := range levels[:len(levels)-1] {
		if len(lvl) != 0 {
			t.Fatalf("%s: %d tables in level %d, want all in the bottom level", v, len(lvl), l)
		}
	}
	var entries, dels, merges uint64
	for _, tb := range levels[len(levels)-1] {
		entries += tb.Properties.NumEntries
		dels += tb.Properties.NumDeletions
		merges += tb.Properties.NumMergeOperands
	}
	h := src.handle(t, st, 1)
	for _, s := range snaps {
		do(s.Close())
	}
	live := incDump(t, incRaw(db))
	// The tables hold what the variant says, or the test proves nothing.
	keys := uint64(r.Len() * incPerKG)
	switch {
	case (v == movedOverwrites || v == movedMergeOver) && entries <= keys,
		(v == movedOverwrites || v == movedDeletes) && dels == 0,
		(v == movedMerges || v == movedMergeOver) && merges == 0:
		t.Fatalf("%s: the bottom-level tables hold %d entries (%d deletions, %d merges) for %d keys", v, entries, dels, merges, keys)
	}
	return h, live
}

func TestHandlesReadMovedTablesExactly(t *testing.T) {
	ctx := context.Background()
	for _, v := range []movedVariant{movedSets, movedOverwrites, movedDeletes, movedMerges, movedMergeOver} {
		t.Run(string(v), func(t *testing.T) {
			st := incStorage(t)
			h, all := movedSource(t, st, keygroup.Range{Start: 0, End: 64}, v)
			for _, r := range []keygroup.Range{{Start: 0, End: 64}, {Start: 10, End: 37}, {Start: 60, End: 128}} {
				t.Run(r.String(), func(t *testing.T) {
					tgt, staging := incTarget(t, r, nil, map[string]uint16{"x": 1})
					stats, err := restore.Handles(ctx, st, []snapshot.Handle{h}, tgt)
					if err != nil {
						t.Fatal(err)
					}
					want := straddleWant(r, all)
					got := incDump(t, tgt.DB)
					if !slices.Equal(got, want) {
						t.Fatalf("restored %d entries, want %d; first differences:\n%s", len(got), len(want), firstDiff(got, want))
					}
					if stats.Entries != int64(len(want)) {
						t.Errorf("stats count %d entries, %d restored", stats.Entries, len(want))
					}
					// The merges over older versions are in key groups [0, 8).
					fallback := v == movedMergeOver && r.Start < 8
					switch {
					case stats.ReadFromTables == 0:
						t.Errorf("no entry was read straight from a table: %+v", stats)
					case fallback && stats.ReadFromTables >= stats.Rewritten:
						t.Errorf("%d of %d rewritten entries read from tables: want the tables with merges over older versions read through the database", stats.ReadFromTables, stats.Rewritten)
					case !fallback && stats.ReadFromTables != stats.Rewritten:
						t.Errorf("%d of %d rewritten entries read from tables, want all", stats.ReadFromTables, stats.Rewritten)
					}
					incStagingEmpty(t, staging)
				})
			}
		})
	}
}

// The merges of movedMerges must come back as merges: a later merge into
// the restored database appends to them, as in the source.
func TestHandlesKeepLoneMergesAsMerges(t *testing.T) {
	ctx := context.Background()
	st := incStorage(t)
	r := keygroup.Range{Start: 0, End: 64}
	h, _ := movedSource(t, st, r, movedMerges)
	tgt, _ := incTarget(t, r, nil, map[string]uint16{"x": 1})
	if _, err := restore.Handles(ctx, st, []snapshot.Handle{h}, tgt); err != nil {
		t.Fatal(err)
	}
	k := incKey(1, 5, 1) // i%4 == 1: a lone merge
	it, err := tgt.DB.NewIter(k, append(bytes.Clone(k), 0))
	if err != nil {
		t.Fatal(err)
	}
	if !it.First() {
		t.Fatalf("key %x not restored", k)
	}
	v, err := it.Value()
	if err != nil {
		t.Fatal(err)
	}
	if want := string(incValue("x", 5, 1)) + "/merged"; string(v) != want {
		t.Fatalf("key %x = %q, want %q", k, v, want)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
}
