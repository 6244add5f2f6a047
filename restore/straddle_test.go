package restore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Whether a table of a non-base handle is ingested whole must not depend
// on where its boundaries fall: on the key groups of the new instance, on
// the end of one state and the start of the next, or on the handle's own
// backend records (state id 0) that share the first table with the first
// state. These tests build handles whose bottom-level tables straddle all
// of those, and check that nothing is rewritten and that the result holds
// exactly the owned key groups.

// straddleStates are the states of every straddle source, with the same
// ids in each, so that every table may be ingested whole.
var straddleStates = map[string]uint16{"x": 1, "y": 2, "z": 3}

// straddleShape says how a straddle source's bottom level comes about.
type straddleShape int

const (
	// compacted: written at random, then compacted into many small
	// bottom-level tables, whose sequence numbers are zero.
	compacted straddleShape = iota
	// moved: written in key order and flushed often, so that compaction
	// moves the flushed tables to the bottom level as they are, with
	// their sequence numbers: Pebble cannot ingest those.
	moved
	// ingested: the bottom level was itself ingested, as after an earlier
	// rescaled restore: one sequence number per table in the database,
	// zero in the files.
	ingested
)

// straddleSource builds an instance database of key groups r in the given
// shape, with its backend records, and returns it with its entries, as
// incDump lines, excluding the backend records.
func straddleSource(t *testing.T, inst string, r keygroup.Range, shape straddleShape) (*incSource, []string) {
	t.Helper()
	o := incPebbleOpts()
	for i := range o.TargetFileSizes {
		o.TargetFileSizes[i] = 4 << 10 // many small tables
	}
	dir := t.TempDir()
	db, err := pebble.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	src := &incSource{inst: inst, r: r, db: db}
	for name, id := range straddleStates {
		src.states = append(src.states, snapshot.State{
			FormatVersion: snapshot.StateFormatVersion, Name: name, ID: id, Kind: snapshot.StateKindValue,
			KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "string",
		})
	}
	slices.SortFunc(src.states, func(a, b snapshot.State) int { return int(a.ID) - int(b.ID) })
	type kv struct{ k, v []byte }
	var all []kv
	all = append(all, kv{keys.BackendMetaKey(), []byte("backend record of " + inst)})
	for _, s := range src.states {
		all = append(all, kv{keys.StateMetaKey(s.Name), []byte("state record of " + s.Name + " in " + inst)})
	}
	var want []string
	for _, s := range src.states {
		for kg := r.Start; kg < r.End; kg++ {
			for i := range incPerKG {
				k := incKey(s.ID, kg, i)
				v := fmt.Appendf(incValue(s.Name, kg, i), "/%080d", 0) // padded: more tables
				all = append(all, kv{k, v})
				want = append(want, fmt.Sprintf("%x=%s", k, v))
			}
		}
	}
	slices.Sort(want)
	ctx := context.Background()
	switch shape {
	case compacted:
		for i := range all { // an order unrelated to the keys'
			e := all[(i*7919)%len(all)]
			if err := db.Set(e.k, e.v, pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if err := db.Compact(ctx, []byte{0}, []byte{0xFF}, false); err != nil {
				t.Fatal(err)
			}
		}
	case moved:
		slices.SortFunc(all, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		for i, e := range all {
			if err := db.Set(e.k, e.v, pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			if i%100 == 99 || i == len(all)-1 {
				// One table at a time, over nothing: moved, not rewritten.
				if err := db.Flush(); err != nil {
					t.Fatal(err)
				}
				if err := db.Compact(ctx, all[i-i%100].k, append(bytes.Clone(e.k), 0), false); err != nil {
					t.Fatal(err)
				}
			}
		}
	case ingested:
		var paths []string
		var w *sstable.Writer
		for i, e := range all {
			if w == nil {
				p := filepath.Join(t.TempDir(), fmt.Sprintf("in-%d.sst", i))
				f, err := vfs.Default.Create(p, vfs.WriteCategoryUnspecified)
				if err != nil {
					t.Fatal(err)
				}
				w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), o.MakeWriterOptions(6, db.TableFormat()))
				paths = append(paths, p)
			}
			if err := w.Set(e.k, e.v); err != nil {
				t.Fatal(err)
			}
			if i%150 == 149 || i == len(all)-1 {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				w = nil
			}
		}
		if err := db.Ingest(ctx, paths); err != nil {
			t.Fatal(err)
		}
	}
	return src, want
}

// straddleLevels describes a database's tables: how many are in the bottom
// level, how many of those have non-zero sequence numbers, and whether any
// straddles the end of state 0, of a state, or of key group 32 of a
// state.
func straddleLevels(t *testing.T, db *pebble.DB) (bottom, nonZero int, straddles []string) {
	t.Helper()
	levels, err := db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tb := range levels[len(levels)-1] {
		bottom++
		if tb.LargestSeqNum != 0 {
			nonZero++
		}
		lo, hi := tb.Smallest.UserKey, tb.Largest.UserKey
		switch {
		case lo[1] == 0 && hi[1] != 0:
			seen["backend records"] = true
		case lo[1] != hi[1]:
			seen["states"] = true
		case len(lo) > 2 && len(hi) > 2 && lo[2] < 32 && hi[2] >= 32:
			seen["key group 32"] = true
		}
	}
	for k := range seen {
		straddles = append(straddles, k)
	}
	slices.Sort(straddles)
	return bottom, nonZero, straddles
}

// straddleWant returns the lines of wants in key groups r.
func straddleWant(r keygroup.Range, wants ...[]string) []string {
	var out []string
	for _, w := range wants {
		for _, line := range w {
			var k []byte
			fmt.Sscanf(line[:strings.IndexByte(line, '=')], "%x", &k)
			if r.Contains(int(k[2])) {
				out = append(out, line)
			}
		}
	}
	slices.Sort(out)
	return out
}

// straddleTarget is an empty target database with backend records of its
// own, which a restore must leave as they are.
func straddleTarget(t *testing.T, r keygroup.Range) (restore.Target, string, []string) {
	t.Helper()
	tgt, staging := incTarget(t, r, nil, straddleStates)
	mine := []string{fmt.Sprintf("%x=target record", keys.BackendMetaKey())}
	if err := tgt.DB.Set(keys.BackendMetaKey(), []byte("target record")); err != nil {
		t.Fatal(err)
	}
	for name := range straddleStates {
		k := keys.StateMetaKey(name)
		if err := tgt.DB.Set(k, []byte("target state "+name)); err != nil {
			t.Fatal(err)
		}
		mine = append(mine, fmt.Sprintf("%x=target state %s", k, name))
	}
	slices.Sort(mine)
	return tgt, staging, mine
}

func TestHandlesIngestsStraddlingTablesWhole(t *testing.T) {
	ctx := context.Background()
	for _, shape := range []straddleShape{compacted, ingested} {
		st := incStorage(t)
		a, wantA := straddleSource(t, "aaaa", keygroup.Range{Start: 0, End: 64}, shape)
		b, wantB := straddleSource(t, "bbbb", keygroup.Range{Start: 64, End: 128}, shape)
		bottom, nonZero, straddles := straddleLevels(t, a.db)
		t.Logf("shape %d: %d bottom-level tables, %d with non-zero sequence numbers, straddling %v", shape, bottom, nonZero, straddles)
		if bottom < 10 || len(straddles) < 3 {
			t.Fatalf("shape %d: the source has %d bottom-level tables straddling %v, want many straddling backend records, states and key group 32",
				shape, bottom, straddles)
		}
		handles := []snapshot.Handle{a.handle(t, st, 1), b.handle(t, st, 1)}
		for _, r := range []keygroup.Range{{Start: 0, End: 128}, {Start: 32, End: 96}, {Start: 0, End: 32}, {Start: 31, End: 33}, {Start: 64, End: 128}} {
			t.Run(fmt.Sprintf("shape=%d/%s", shape, r), func(t *testing.T) {
				tgt, staging, mine := straddleTarget(t, r)
				stats, err := restore.Handles(ctx, st, handles, tgt)
				if err != nil {
					t.Fatal(err)
				}
				want := append(straddleWant(r, wantA, wantB), mine...)
				slices.Sort(want)
				if got := incDump(t, tgt.DB); !slices.Equal(got, want) {
					t.Fatalf("restored %d entries, want %d; first differences:\n%s", len(got), len(want), firstDiff(got, want))
				}
				if stats.Rewritten != 0 || stats.TablesIngested == 0 {
					t.Errorf("%d entries rewritten, %d tables ingested whole: want every table ingested whole", stats.Rewritten, stats.TablesIngested)
				}
				if n := int64(len(want) - len(mine)); stats.Entries != n {
					t.Errorf("stats count %d entries, %d restored", stats.Entries, n)
				}
				incStagingEmpty(t, staging)
			})
		}
	}
}

// A bottom level that compaction moved into place keeps the sequence
// numbers of its flushes: Pebble will not ingest those tables, so their
// entries are rewritten; the result must be the same.
func TestHandlesRewritesTablesPebbleCannotIngest(t *testing.T) {
	ctx := context.Background()
	st := incStorage(t)
	a, wantA := straddleSource(t, "aaaa", keygroup.Range{Start: 0, End: 64}, moved)
	b, wantB := straddleSource(t, "bbbb", keygroup.Range{Start: 64, End: 128}, compacted)
	if _, nonZero, _ := straddleLevels(t, a.db); nonZero == 0 {
		t.Fatal("no bottom-level table of the moved source has non-zero sequence numbers")
	}
	handles := []snapshot.Handle{a.handle(t, st, 1), b.handle(t, st, 1)}
	for _, r := range []keygroup.Range{{Start: 0, End: 128}, {Start: 20, End: 100}} {
		t.Run(r.String(), func(t *testing.T) {
			tgt, staging, mine := straddleTarget(t, r)
			stats, err := restore.Handles(ctx, st, handles, tgt)
			if err != nil {
				t.Fatal(err)
			}
			want := append(straddleWant(r, wantA, wantB), mine...)
			slices.Sort(want)
			if got := incDump(t, tgt.DB); !slices.Equal(got, want) {
				t.Fatalf("restored %d entries, want %d; first differences:\n%s", len(got), len(want), firstDiff(got, want))
			}
			if stats.Rewritten == 0 || stats.TablesIngested == 0 {
				t.Errorf("%d entries rewritten, %d tables ingested whole: want both", stats.Rewritten, stats.TablesIngested)
			}
			incStagingEmpty(t, staging)
		})
	}
}

// A restore checksums the tables it reads or ingests, and only those: a
// damaged table wholly outside the new instance's key groups does not fail
// it, a damaged table it needs does, naming the file.
func TestHandlesChecksumsOnlyTheTablesTheyUse(t *testing.T) {
	ctx := context.Background()
	r := keygroup.Range{Start: 0, End: 20}
	for _, outside := range []bool{true, false} {
		t.Run(fmt.Sprintf("outside=%v", outside), func(t *testing.T) {
			st := incStorage(t)
			a, wantA := straddleSource(t, "aaaa", keygroup.Range{Start: 0, End: 64}, compacted)
			h := a.handle(t, st, 1)
			levels, err := a.db.SSTables()
			if err != nil {
				t.Fatal(err)
			}
			var victim string
			for _, tb := range levels[len(levels)-1] {
				lo, hi := tb.Smallest.UserKey, tb.Largest.UserKey
				in := bytes.Equal(lo[:2], hi[:2]) && len(lo) > 2 && len(hi) > 2
				if outside && in && lo[2] >= 30 && hi[2] < 64 || !outside && in && int(hi[2]) < r.End {
					victim = fmt.Sprintf("%06d.sst", tb.BackingSSTNum)
					break
				}
			}
			var ref snapshot.FileRef
			for _, f := range h.Shared {
				if f.LocalName == victim {
					ref = f.FileRef
				}
			}
			if ref.Name == "" {
				t.Fatalf("no table to damage (outside=%v)", outside)
			}
			incFlip(t, st.Path(ref.Name))
			tgt, staging, mine := straddleTarget(t, r)
			_, err = restore.Handles(ctx, st, []snapshot.Handle{h}, tgt)
			if outside {
				if err != nil {
					t.Fatalf("restore that does not need the damaged %s: %v", ref.Name, err)
				}
				want := append(straddleWant(r, wantA), mine...)
				slices.Sort(want)
				if got := incDump(t, tgt.DB); !slices.Equal(got, want) {
					t.Fatalf("restored %d entries, want %d", len(got), len(want))
				}
			} else {
				if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), ref.Name) {
					t.Fatalf("restore with the damaged %s = %v", ref.Name, err)
				}
				if got := incDump(t, tgt.DB); !slices.Equal(got, mine) {
					t.Errorf("a failed restore changed the database: %d entries", len(got))
				}
			}
			incStagingEmpty(t, staging)
		})
	}
}

// Rescaling out checksums only the tables that survive the clip: a
// damaged table inside the key groups Clip cuts is never read, a damaged
// table Clip cuts in part is caught before Clip reads it.
func TestKeptSelectsTheTablesClipLeaves(t *testing.T) {
	ctx := context.Background()
	had, keep := keygroup.Range{Start: 0, End: 128}, keygroup.Range{Start: 0, End: 64}
	for _, cut := range []bool{true, false} {
		t.Run(fmt.Sprintf("inside-cut=%v", cut), func(t *testing.T) {
			st := incStorage(t)
			src, want := straddleSource(t, "aaaa", had, compacted)
			h := src.handle(t, st, 1)
			levels, err := src.db.SSTables()
			if err != nil {
				t.Fatal(err)
			}
			var victim string
			for _, tb := range levels[len(levels)-1] {
				lo, hi := tb.Smallest.UserKey, tb.Largest.UserKey
				same := len(lo) > 2 && len(hi) > 2 && bytes.Equal(lo[:2], hi[:2]) && lo[1] != 0
				if cut && same && lo[2] >= 64 || !cut && same && lo[2] < 64 && hi[2] >= 64 {
					victim = fmt.Sprintf("%06d.sst", tb.BackingSSTNum)
					break
				}
			}
			var ref snapshot.FileRef
			for _, f := range h.Shared {
				if f.LocalName == victim {
					ref = f.FileRef
				}
			}
			if ref.Name == "" {
				t.Fatalf("no table to damage (inside cut: %v)", cut)
			}
			incFlip(t, st.Path(ref.Name))
			dir := filepath.Join(t.TempDir(), "db")
			u, err := restore.FetchUnverified(ctx, st, &h, dir)
			if err != nil {
				t.Fatalf("FetchUnverified read the SSTs it links: %v", err)
			}
			o := incPebbleOpts()
			o.DisableAutomaticCompactions = true
			o.DisableTableStats = true
			db, err := pebble.Open(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ids := []uint16{1, 2, 3}
			need, err := restore.Kept(db, ids, had, keep, incMaxPar)
			if err != nil {
				t.Fatal(err)
			}
			err = u.Verify(ctx, need)
			if !cut {
				if !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), ref.Name) {
					t.Fatalf("Verify of the tables Clip keeps, one of them damaged: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify of the tables Clip keeps: %v", err)
			}
			if err := restore.Clip(ctx, db, ids, had, keep, incMaxPar); err != nil {
				t.Fatal(err)
			}
			got := slices.DeleteFunc(incDump(t, incRaw(db)), func(line string) bool { return strings.HasPrefix(line, "0000") })
			if w := straddleWant(keep, want); !slices.Equal(got, w) {
				t.Fatalf("clipped database holds %d entries, want %d", len(got), len(w))
			}
		})
	}
}
