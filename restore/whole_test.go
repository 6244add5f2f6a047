package restore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
)

// wholeSource fills a database for key groups r with states x (id 1) and y
// (id 2), compacts it into many small bottom-level tables (whose sequence
// numbers are then zero), and then overwrites every fifth entry of state x,
// so that tables in upper levels overlap some of the bottom ones. It
// returns the source and the newest value of every stored key.
func wholeSource(t *testing.T, inst string, r keygroup.Range) (*incSource, map[string]string) {
	t.Helper()
	o := incPebbleOpts()
	for i := range o.TargetFileSizes {
		o.TargetFileSizes[i] = 8 << 10 // many small tables
	}
	db, err := pebble.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	src := &incSource{inst: inst, r: r, db: db}
	want := make(map[string]string)
	set := func(k []byte, v string) {
		if err := db.Set(k, []byte(v), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		want[string(k)] = v
	}
	names := map[uint16]string{1: "x", 2: "y"}
	for _, id := range []uint16{1, 2} {
		for kg := r.Start; kg < r.End; kg++ {
			for i := range 40 {
				set(incKey(id, kg, i), string(incValue(names[id], kg, i)))
			}
		}
	}
	if err := db.Compact(context.Background(), []byte{0}, []byte{0xFF}, false); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(context.Background(), []byte{0}, []byte{0xFF}, false); err != nil {
		t.Fatal(err)
	}
	for kg := r.Start; kg < r.End; kg += 5 {
		set(incKey(1, kg, 7), fmt.Sprintf("x/%d/7/new", kg))
	}
	for _, id := range []uint16{1, 2} {
		src.states = append(src.states, snapshot.State{
			FormatVersion: snapshot.StateFormatVersion, Name: names[id], ID: id, Kind: snapshot.StateKindValue,
			KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "string",
		})
	}
	return src, want
}

// TestHandlesIngestsWholeTables checks that a rescale-in restore from
// incremental handles ingests the handles' compacted tables as they are,
// and that tables overlapped by newer data are read instead, so every key
// has its newest value.
func TestHandlesIngestsWholeTables(t *testing.T) {
	ctx := context.Background()
	st := incStorage(t)
	a, wantA := wholeSource(t, "aaaa", keygroup.Range{Start: 0, End: 64})
	b, wantB := wholeSource(t, "bbbb", keygroup.Range{Start: 64, End: 128})
	handles := []snapshot.Handle{a.handle(t, st, 1), b.handle(t, st, 1)}
	all := keygroup.Range{Start: 0, End: 128}
	for _, r := range []keygroup.Range{all, {Start: 32, End: 96}} {
		t.Run(r.String(), func(t *testing.T) {
			tgt, staging := incTarget(t, r, nil, map[string]uint16{"x": 1, "y": 2})
			stats, err := restore.Handles(ctx, st, handles, tgt)
			if err != nil {
				t.Fatal(err)
			}
			if stats.TablesIngested == 0 {
				t.Errorf("no table was ingested whole: %+v", stats)
			}
			var want []string
			for _, m := range []map[string]string{wantA, wantB} {
				for k, v := range m {
					if len(k) > 2 && k[0] == 0 && r.Contains(int(k[2])) {
						want = append(want, fmt.Sprintf("%x=%s", k, v))
					}
				}
			}
			slices.Sort(want)
			got := incDump(t, tgt.DB)
			if !slices.Equal(got, want) {
				t.Fatalf("restored %d entries, want %d; first differences:\n%s", len(got), len(want), firstDiff(got, want))
			}
			if stats.Entries != int64(len(want)) {
				t.Errorf("stats count %d entries, %d restored", stats.Entries, len(want))
			}
			incStagingEmpty(t, staging)
			t.Logf("%d tables ingested whole, %d entries", stats.TablesIngested, stats.Entries)
		})
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("  got  %s\n  want %s", got[i], want[i])
		}
	}
	return "  (one is a prefix of the other)"
}
