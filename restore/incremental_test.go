package restore_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/snapshot/incremental"
)

// These tests build incremental handles from raw Pebble databases laid out
// as the backend lays out state (internal/keys), uploaded with
// incremental.Run, so that every entry's origin is known.

const (
	incMaxPar = 128
	incWidth  = 1 // key-group bytes for max parallelism 128
	incPerKG  = 12
)

func incPebbleOpts() *pebble.Options {
	o := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, DisableWAL: true, MemTableSize: 1 << 20, Logger: incQuiet{}}
	o.EnsureDefaults()
	return o
}

// incQuiet drops Pebble's informational messages.
type incQuiet struct{}

func (incQuiet) Infof(string, ...any)              {}
func (incQuiet) Errorf(format string, args ...any) {}
func (incQuiet) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// incKey is the stored key of entry i of state id in key group kg.
func incKey(id uint16, kg, i int) []byte {
	k := keys.AppendKeyGroup(keys.AppendStateID(nil, id), kg, incWidth)
	return fmt.Appendf(k, "key%03d", i)
}

// incValue names the entry's origin: its instance's state name, key group
// and index.
func incValue(name string, kg, i int) []byte { return fmt.Appendf(nil, "%s/%d/%d", name, kg, i) }

// incSource is a database of one instance with its states, filled for
// its key groups.
type incSource struct {
	inst   string
	r      keygroup.Range
	states []snapshot.State
	db     *pebble.DB
}

func incNewSource(t testing.TB, inst string, r keygroup.Range, states map[string]uint16) *incSource {
	t.Helper()
	db, err := pebble.Open(t.TempDir(), incPebbleOpts())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &incSource{inst: inst, r: r, db: db}
	for name, id := range states {
		s.states = append(s.states, snapshot.State{
			FormatVersion: snapshot.StateFormatVersion, Name: name, ID: id, Kind: snapshot.StateKindValue,
			KeyCodec: "int64", NamespaceCodec: "void", ValueCodec: "string",
		})
	}
	slices.SortFunc(s.states, func(a, b snapshot.State) int { return int(a.ID) - int(b.ID) })
	if err := db.Set(keys.BackendMetaKey(), []byte("backend record of "+inst), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	for _, st := range s.states {
		for kg := r.Start; kg < r.End; kg++ {
			for i := range incPerKG {
				if err := db.Set(incKey(st.ID, kg, i), incValue(st.Name, kg, i), pebble.NoSync); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Several SSTs: flush in between some writes.
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}

// handle takes a native checkpoint and uploads it as checkpoint id.
func (s *incSource) handle(t testing.TB, st snapshot.Storage, id int64) snapshot.Handle {
	t.Helper()
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "native")
	if err := s.db.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	up, err := incremental.Run(context.Background(), st, incremental.Request{Dir: dir, CheckpointID: id, WriterID: s.inst})
	if err != nil {
		t.Fatal(err)
	}
	return snapshot.Handle{
		Operator: "op", InstanceID: s.inst, CheckpointID: id, Kind: snapshot.KindIncremental,
		MaxParallelism: incMaxPar, KeyGroupStart: s.r.Start, KeyGroupEnd: s.r.End, KeyCodec: "int64",
		States: s.states, Files: up.Private, Shared: up.Shared, StateSize: up.Total, CheckpointedSize: up.Uploaded,
	}
}

func incStorage(t testing.TB) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "chk"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// incHidden hides the *snapshot.Local behind the interface, as any other
// Storage implementation would be: Fetch must copy.
type incHidden struct{ snapshot.Storage }

// incDump returns every entry of a database, as "key=value" lines.
func incDump(t testing.TB, db restore.DB) []string {
	t.Helper()
	it, err := db.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%x=%s", it.Key(), v))
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

// incRaw is the restore.DB of a database opened with incPebbleOpts.
func incRaw(db *pebble.DB) restore.DB { return restore.Pebble(db, incPebbleOpts()) }

func incOpenReadOnly(t testing.TB, dir string) *pebble.DB {
	t.Helper()
	o := incPebbleOpts()
	o.ReadOnly = true
	db, err := pebble.Open(dir, o)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return db
}

func TestFetchLinksFromLocalAndCopiesOtherwise(t *testing.T) {
	ctx := context.Background()
	src := incNewSource(t, "aaaa", keygroup.Range{Start: 0, End: 128}, map[string]uint16{"x": 1, "y": 2})
	want := incDump(t, incRaw(src.db))
	st := incStorage(t)
	h := src.handle(t, st, 1)
	if len(h.Shared) == 0 || len(h.Files) == 0 {
		t.Fatalf("handle has %d shared and %d private files", len(h.Shared), len(h.Files))
	}
	for _, tc := range []struct {
		name   string
		st     snapshot.Storage
		linked bool
	}{{"local", st, true}, {"other", incHidden{st}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			if err := restore.Fetch(ctx, tc.st, &h, dir); err != nil {
				t.Fatal(err)
			}
			check := func(local, name string) {
				a, err := os.Stat(filepath.Join(dir, local))
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.Stat(st.Path(name))
				if err != nil {
					t.Fatal(err)
				}
				if os.SameFile(a, b) != tc.linked {
					t.Errorf("%s: linked %v, want %v", local, !tc.linked, tc.linked)
				}
			}
			// SSTs are linked from local storage; everything is copied
			// from any other. (Private files may be either from local
			// storage: Pebble never writes into the old ones.)
			for _, f := range h.Shared {
				check(f.LocalName, f.Name)
			}
			if !tc.linked {
				for _, f := range h.Files {
					check(path.Base(f.Name), f.Name)
				}
			}
			db := incOpenReadOnly(t, dir)
			defer db.Close()
			if got := incDump(t, incRaw(db)); !slices.Equal(got, want) {
				t.Errorf("fetched database holds %d entries, the source %d", len(got), len(want))
			}
		})
	}
}

// incDamage is a fault to inject into one stored file of a handle.
type incDamage struct {
	name   string
	target func(h *snapshot.Handle) snapshot.FileRef
	damage func(t testing.TB, p string)
	is     error
}

func incFlip(t testing.TB, p string) {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func incTruncate(t testing.TB, p string) {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, fi.Size()-1); err != nil {
		t.Fatal(err)
	}
}

func incRemove(t testing.TB, p string) {
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func incFirstShared(h *snapshot.Handle) snapshot.FileRef { return h.Shared[0].FileRef }

func incManifest(h *snapshot.Handle) snapshot.FileRef {
	for _, f := range h.Files {
		if strings.HasPrefix(path.Base(f.Name), "MANIFEST") {
			return f
		}
	}
	panic("no MANIFEST in the handle")
}

var incDamages = []incDamage{
	{"flipped-shared", incFirstShared, incFlip, snapshot.ErrCorrupt},
	{"truncated-shared", incFirstShared, incTruncate, snapshot.ErrCorrupt},
	{"missing-shared", incFirstShared, incRemove, fs.ErrNotExist},
	{"flipped-manifest", incManifest, incFlip, snapshot.ErrCorrupt},
	{"missing-manifest", incManifest, incRemove, fs.ErrNotExist},
}

func TestFetchDamagedFile(t *testing.T) {
	ctx := context.Background()
	for _, d := range incDamages {
		for _, hide := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/copy=%v", d.name, hide), func(t *testing.T) {
				src := incNewSource(t, "bbbb", keygroup.Range{Start: 0, End: 128}, map[string]uint16{"x": 1})
				local := incStorage(t)
				h := src.handle(t, local, 1)
				ref := d.target(&h)
				d.damage(t, local.Path(ref.Name))
				var st snapshot.Storage = local
				if hide {
					st = incHidden{local}
				}
				err := restore.Fetch(ctx, st, &h, filepath.Join(t.TempDir(), "db"))
				if !errors.Is(err, d.is) {
					t.Fatalf("Fetch = %v, want %v", err, d.is)
				}
				if !strings.Contains(err.Error(), ref.Name) {
					t.Errorf("error %q does not name %s", err, ref.Name)
				}
			})
		}
	}
	// A handle that lies about a size is caught too.
	src := incNewSource(t, "cccc", keygroup.Range{Start: 0, End: 128}, map[string]uint16{"x": 1})
	st := incStorage(t)
	h := src.handle(t, st, 1)
	h.Shared[0].Size++
	if err := restore.Fetch(ctx, st, &h, filepath.Join(t.TempDir(), "db")); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), h.Shared[0].Name) {
		t.Errorf("Fetch with a wrong size = %v", err)
	}
	h.Shared[0].Size--
	h.Files[0].CRC32C++
	if err := restore.Fetch(ctx, incHidden{st}, &h, filepath.Join(t.TempDir(), "db")); !errors.Is(err, snapshot.ErrCorrupt) || !strings.Contains(err.Error(), h.Files[0].Name) {
		t.Errorf("Fetch with a wrong checksum = %v", err)
	}
}

func TestBasePicksLargestOverlap(t *testing.T) {
	h := func(inst, kind string, start, end int) snapshot.Handle {
		return snapshot.Handle{InstanceID: inst, Kind: kind, MaxParallelism: 128, KeyGroupStart: start, KeyGroupEnd: end}
	}
	inc, full := snapshot.KindIncremental, snapshot.KindFull
	for _, tc := range []struct {
		name    string
		handles []snapshot.Handle
		r       keygroup.Range
		want    string
	}{
		{"same range", []snapshot.Handle{h("a", inc, 0, 64), h("b", inc, 64, 128)}, keygroup.Range{Start: 64, End: 128}, "b"},
		{"most key groups", []snapshot.Handle{h("a", inc, 0, 43), h("b", inc, 43, 86), h("c", inc, 86, 128)}, keygroup.Range{Start: 0, End: 64}, "a"},
		{"scale in", []snapshot.Handle{h("a", inc, 0, 43), h("b", inc, 43, 86), h("c", inc, 86, 128)}, keygroup.Range{Start: 64, End: 128}, "c"},
		// Both share 10 key groups; b's share is the larger fraction of it.
		{"tie by fraction", []snapshot.Handle{h("a", inc, 0, 40), h("b", inc, 40, 60)}, keygroup.Range{Start: 30, End: 50}, "b"},
		{"full handles never", []snapshot.Handle{h("a", full, 0, 100), h("b", inc, 100, 128)}, keygroup.Range{Start: 0, End: 128}, "b"},
		{"only full", []snapshot.Handle{h("a", full, 0, 128)}, keygroup.Range{Start: 0, End: 128}, ""},
		{"no overlap", []snapshot.Handle{h("a", inc, 0, 64)}, keygroup.Range{Start: 64, End: 128}, ""},
		{"none", nil, keygroup.Range{Start: 0, End: 128}, ""},
	} {
		got := restore.Base(tc.handles, tc.r)
		name := ""
		if got != nil {
			name = got.InstanceID
		}
		if name != tc.want {
			t.Errorf("%s: Base = %q, want %q", tc.name, name, tc.want)
		}
		if got != nil {
			inSlice := false
			for i := range tc.handles {
				inSlice = inSlice || &tc.handles[i] == got
			}
			if !inSlice {
				t.Errorf("%s: Base does not point into the slice", tc.name)
			}
		}
	}
}

func TestClipExcisesOtherKeyGroups(t *testing.T) {
	ctx := context.Background()
	had := keygroup.Range{Start: 16, End: 112}
	for _, keep := range []keygroup.Range{{Start: 16, End: 112}, {Start: 40, End: 80}, {Start: 16, End: 17}, {Start: 111, End: 112}, {Start: 0, End: 64}} {
		t.Run(keep.String(), func(t *testing.T) {
			src := incNewSource(t, "dddd", had, map[string]uint16{"x": 1, "y": 2, "z": 3})
			before := incDump(t, incRaw(src.db))
			if err := restore.Clip(ctx, src.db, []uint16{1, 2}, had, had.Intersect(keep), incMaxPar); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, e := range before {
				var k []byte
				fmt.Sscanf(e[:strings.IndexByte(e, '=')], "%x", &k)
				id := uint16(k[0])<<8 | uint16(k[1])
				if id == 1 || id == 2 {
					if kg := int(k[2]); !keep.Contains(kg) {
						continue
					}
				}
				want = append(want, e)
			}
			got := incDump(t, incRaw(src.db))
			if !slices.Equal(got, want) {
				t.Errorf("after Clip: %d entries, want %d", len(got), len(want))
			}
			// State 3 was not listed and the backend record is state 0:
			// both untouched.
			if n := len(before) - len(got); n != 2*incPerKG*(had.Len()-had.Intersect(keep).Len()) {
				t.Errorf("Clip removed %d entries", n)
			}
		})
	}
}

// incTarget opens an empty database to restore into.
func incTarget(t testing.TB, r keygroup.Range, base *snapshot.Handle, ids map[string]uint16) (restore.Target, string) {
	t.Helper()
	dir := t.TempDir()
	o := incPebbleOpts()
	db, err := pebble.Open(filepath.Join(dir, "db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	staging := filepath.Join(dir, "staging")
	return restore.Target{
		DB: restore.Pebble(db, o), StagingDir: staging, KeyGroups: r, MaxParallelism: incMaxPar, Base: base,
		StateID: func(s snapshot.State) (uint16, error) {
			id, ok := ids[s.Name]
			if !ok {
				return 0, fmt.Errorf("unknown state %q", s.Name)
			}
			return id, nil
		},
	}, staging
}

func incStagingEmpty(t testing.TB, staging string) {
	t.Helper()
	entries, err := os.ReadDir(staging)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the staging directory: %s", e.Name())
	}
}

func TestHandlesIncrementalRescale(t *testing.T) {
	ctx := context.Background()
	st := incStorage(t)
	// Two instances whose state ids differ: x and y are 1 and 2 in a, 2
	// and 1 in b. The target numbers them 7 and 9.
	a := incNewSource(t, "aaaa", keygroup.Range{Start: 0, End: 64}, map[string]uint16{"x": 1, "y": 2})
	b := incNewSource(t, "bbbb", keygroup.Range{Start: 64, End: 128}, map[string]uint16{"y": 1, "x": 2})
	ha, hb := a.handle(t, st, 3), b.handle(t, st, 3)
	ids := map[string]uint16{"x": 7, "y": 9}
	want := func(r keygroup.Range, except keygroup.Range) []string {
		var out []string
		for _, name := range []string{"x", "y"} {
			for kg := r.Start; kg < r.End; kg++ {
				if except.Contains(kg) {
					continue
				}
				for i := range incPerKG {
					out = append(out, fmt.Sprintf("%x=%s", incKey(ids[name], kg, i), incValue(name, kg, i)))
				}
			}
		}
		slices.Sort(out)
		return out
	}
	for _, hidden := range []bool{false, true} {
		var s snapshot.Storage = st
		if hidden {
			s = incHidden{st}
		}
		ranges := []keygroup.Range{{Start: 32, End: 96}, {Start: 0, End: 128}, {Start: 64, End: 65}, {Start: 10, End: 20}}
		if hidden {
			ranges = ranges[:1] // the copy path once is enough
		}
		for _, r := range ranges {
			for _, withBase := range []bool{false, true} {
				t.Run(fmt.Sprintf("copy=%v/%s/base=%v", hidden, r, withBase), func(t *testing.T) {
					var base *snapshot.Handle
					skip := keygroup.Range{}
					handles := []snapshot.Handle{hb, ha}
					if withBase {
						base = restore.Base(handles, r)
						skip = keygroup.Range{Start: base.KeyGroupStart, End: base.KeyGroupEnd}
					}
					tgt, staging := incTarget(t, r, base, ids)
					stats, err := restore.Handles(ctx, s, handles, tgt)
					if err != nil {
						t.Fatal(err)
					}
					got := incDump(t, tgt.DB)
					if w := want(r, skip); !slices.Equal(got, w) {
						t.Errorf("restored %d entries, want %d", len(got), len(w))
						for i := range min(3, len(got)) {
							t.Logf("got %s", got[i])
						}
					}
					if stats.Entries != int64(len(got)) {
						t.Errorf("stats say %d entries, %d restored", stats.Entries, len(got))
					}
					incStagingEmpty(t, staging)
				})
			}
		}
	}
}

func TestHandlesDamagedIncrementalIngestsNothing(t *testing.T) {
	ctx := context.Background()
	for _, d := range incDamages {
		t.Run(d.name, func(t *testing.T) {
			st := incStorage(t)
			a := incNewSource(t, "aaaa", keygroup.Range{Start: 0, End: 64}, map[string]uint16{"x": 1})
			b := incNewSource(t, "bbbb", keygroup.Range{Start: 64, End: 128}, map[string]uint16{"x": 1})
			ha, hb := a.handle(t, st, 1), b.handle(t, st, 1)
			ref := d.target(&hb)
			d.damage(t, st.Path(ref.Name))
			tgt, staging := incTarget(t, keygroup.Range{Start: 0, End: 128}, nil, map[string]uint16{"x": 1})
			_, err := restore.Handles(ctx, st, []snapshot.Handle{ha, hb}, tgt)
			if !errors.Is(err, d.is) {
				t.Fatalf("Handles = %v, want %v", err, d.is)
			}
			if !strings.Contains(err.Error(), ref.Name) {
				t.Errorf("error %q does not name %s", err, ref.Name)
			}
			if got := incDump(t, tgt.DB); len(got) != 0 {
				t.Errorf("a failed restore left %d entries in the database", len(got))
			}
			incStagingEmpty(t, staging)
		})
	}
}

func TestHandlesIncRejectsBadSets(t *testing.T) {
	ctx := context.Background()
	st := incStorage(t)
	a := incNewSource(t, "aaaa", keygroup.Range{Start: 0, End: 64}, map[string]uint16{"x": 1})
	ha := a.handle(t, st, 1)
	overlap := ha
	overlap.InstanceID, overlap.KeyGroupStart, overlap.KeyGroupEnd = "eeee", 32, 96
	tgt, _ := incTarget(t, keygroup.Range{Start: 0, End: 128}, nil, map[string]uint16{"x": 1})
	if _, err := restore.Handles(ctx, st, []snapshot.Handle{ha, overlap}, tgt); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlapping handles: %v", err)
	}
	other := ha
	other.MaxParallelism = 256
	if _, err := restore.Handles(ctx, st, []snapshot.Handle{other}, tgt); err == nil || !strings.Contains(err.Error(), "max parallelism") {
		t.Errorf("other max parallelism: %v", err)
	}
	tgt.StateID = func(snapshot.State) (uint16, error) { return 0, errors.New("incompatible state") }
	if _, err := restore.Handles(ctx, st, []snapshot.Handle{ha}, tgt); err == nil || !strings.Contains(err.Error(), "incompatible state") {
		t.Errorf("incompatible state: %v", err)
	}
	if got := incDump(t, tgt.DB); len(got) != 0 {
		t.Errorf("failed restores left %d entries", len(got))
	}
}
