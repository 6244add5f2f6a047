package restore_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/restore"
	"github.com/pebblestate/pebblestate/snapshot"
)

// These tests take full snapshots of real backends (their keys are int64
// 0..frKeys-1, each written by the instance owning its key group, with
// values computed from the key) and restore them at other parallelisms.

const (
	frKeys   = 600
	frMaxPar = 128
)

// frStates are the states of a source backend, registered in the order
// given, so that their ids differ between sources.
type frStates struct {
	v *backend.Value[int64, backend.VoidNamespace, string]
	l *backend.List[int64, backend.VoidNamespace, int64]
	m *backend.Map[int64, backend.VoidNamespace, int64, string]
	w *backend.Value[int64, int64, string] // namespaced
}

func frRegister(t testing.TB, b *backend.Backend[int64], reverse bool) frStates {
	t.Helper()
	var s frStates
	var err error
	steps := []func(){
		func() {
			s.v, err = backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String})
		},
		func() { s.l, err = backend.GetList(b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64}) },
		func() {
			s.m, err = backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String})
		},
		func() {
			s.w, err = backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[string]{Name: "w", Codec: backend.String})
		},
	}
	if reverse {
		slices.Reverse(steps)
	}
	for _, step := range steps {
		if step(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// What key k holds. Odd keys have no map entries; lists and namespaces
// vary with the key.
func frValue(k int64) string { return fmt.Sprintf("value-%d", k) }
func frList(k int64) []int64 {
	out := make([]int64, 1+k%4)
	for i := range out {
		out[i] = k*10 + int64(i)
	}
	return out
}
func frMap(k int64) map[int64]string {
	if k%2 == 1 {
		return nil
	}
	m := make(map[int64]string)
	for i := range k%5 + 1 {
		m[i*7-3] = fmt.Sprintf("m%d.%d", k, i)
	}
	return m
}
func frNamespaces(k int64) []int64 { return []int64{k % 3, 100 + k%5} }
func frNSValue(k, ns int64) string { return fmt.Sprintf("w%d@%d", k, ns) }

func frKeyGroup(t testing.TB, k int64) int {
	kg, err := backend.KeyGroupOf(backend.Int64, k, frMaxPar)
	if err != nil {
		t.Fatal(err)
	}
	return kg
}

// frSource opens instance i of n and writes the keys it owns.
func frSource(t testing.TB, n, i int, comp string) *backend.Backend[int64] {
	t.Helper()
	r, err := backend.KeyGroupRangeForSubtask(frMaxPar, n, i)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open(backend.Int64, backend.Options{Dir: t.TempDir(), KeyGroups: r, SnapshotCompression: comp, Operator: "op"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s := frRegister(t, b, i%2 == 1)
	for k := range int64(frKeys) {
		if !r.Contains(frKeyGroup(t, k)) {
			continue
		}
		must(t, b.SetCurrentKey(k))
		must(t, s.v.Update(frValue(k)))
		for _, e := range frList(k) {
			must(t, s.l.Add(e))
		}
		for uk, uv := range frMap(k) {
			must(t, s.m.Put(uk, uv))
		}
		for _, ns := range frNamespaces(k) {
			must(t, s.w.SetCurrentNamespace(ns))
			must(t, s.w.Update(frNSValue(k, ns)))
		}
	}
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// frCheckpoint snapshots every source for checkpoint id and commits.
func frCheckpoint(t testing.TB, st snapshot.Storage, id int64, srcs ...*backend.Backend[int64]) *snapshot.Checkpoint {
	t.Helper()
	ctx := context.Background()
	cp := &snapshot.Checkpoint{ID: id}
	for _, b := range srcs {
		s, err := b.Snapshot(id, st)
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp.Handles = append(cp.Handles, h)
	}
	if err := snapshot.Commit(ctx, st, cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

func frStorage(t testing.TB) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// frCheck checks that b holds exactly the keys of its key groups, with
// their values, in every state, and returns how many keys it holds.
func frCheck(t testing.TB, b *backend.Backend[int64]) int {
	t.Helper()
	s := frRegister(t, b, false)
	var want []int64
	for k := range int64(frKeys) {
		if b.KeyGroups().Contains(frKeyGroup(t, k)) {
			want = append(want, k)
		}
	}
	keysOf := func(seq func(func(int64, error) bool)) []int64 {
		var out []int64
		for k, err := range seq {
			must(t, err)
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if got := keysOf(s.v.KeysInNamespace(backend.VoidNamespace{})); !slices.Equal(got, want) {
		t.Fatalf("value state holds %d keys, want %d", len(got), len(want))
	}
	if got := keysOf(s.l.KeysInNamespace(backend.VoidNamespace{})); !slices.Equal(got, want) {
		t.Fatalf("list state holds %d keys, want %d", len(got), len(want))
	}
	var wantMap []int64
	for _, k := range want {
		if frMap(k) != nil {
			wantMap = append(wantMap, k)
		}
	}
	if got := keysOf(s.m.KeysInNamespace(backend.VoidNamespace{})); !slices.Equal(got, wantMap) {
		t.Fatalf("map state holds %d keys, want %d", len(got), len(wantMap))
	}
	for _, ns := range []int64{0, 1, 2, 100, 101, 102, 103, 104} {
		var wantNS []int64
		for _, k := range want {
			if slices.Contains(frNamespaces(k), ns) {
				wantNS = append(wantNS, k)
			}
		}
		if got := keysOf(s.w.KeysInNamespace(ns)); !slices.Equal(got, wantNS) {
			t.Fatalf("namespaced state in namespace %d holds %d keys, want %d", ns, len(got), len(wantNS))
		}
	}
	for _, k := range want {
		must(t, b.SetCurrentKey(k))
		if v, ok, err := s.v.Get(); err != nil || !ok || v != frValue(k) {
			t.Fatalf("key %d: value %q %v %v", k, v, ok, err)
		}
		if l, err := s.l.Get(); err != nil || !slices.Equal(l, frList(k)) {
			t.Fatalf("key %d: list %v %v", k, l, err)
		}
		got := map[int64]string{}
		for e, err := range s.m.Entries() {
			must(t, err)
			got[e.Key] = e.Value
		}
		if want := frMap(k); !maps.Equal(got, want) && !(len(got) == 0 && want == nil) {
			t.Fatalf("key %d: map %v, want %v", k, got, want)
		}
		for _, ns := range frNamespaces(k) {
			must(t, s.w.SetCurrentNamespace(ns))
			if v, ok, err := s.w.Get(); err != nil || !ok || v != frNSValue(k, ns) {
				t.Fatalf("key %d namespace %d: %q %v %v", k, ns, v, ok, err)
			}
		}
	}
	return len(want)
}

func frOpts(t testing.TB, n, i int) backend.Options {
	t.Helper()
	r, err := backend.KeyGroupRangeForSubtask(frMaxPar, n, i)
	if err != nil {
		t.Fatal(err)
	}
	return backend.Options{Dir: filepath.Join(t.TempDir(), "restored"), KeyGroups: r, Operator: "op"}
}

func TestRestoreRescale(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ from, to int }{{1, 2}, {2, 1}, {3, 2}, {2, 3}, {2, 2}} {
		t.Run(fmt.Sprintf("%d-to-%d", c.from, c.to), func(t *testing.T) {
			st := frStorage(t)
			comps := []string{"snappy", "zstd", "none", "s2"}
			var srcs []*backend.Backend[int64]
			for i := range c.from {
				srcs = append(srcs, frSource(t, c.from, i, comps[i%len(comps)]))
			}
			cp := frCheckpoint(t, st, 1, srcs...)
			total := 0
			for i := range c.to {
				b, err := backend.Restore(ctx, backend.Int64, frOpts(t, c.to, i), st, cp.Handles)
				if err != nil {
					t.Fatal(err)
				}
				total += frCheck(t, b)
				must(t, b.Close())
			}
			if total != frKeys {
				t.Fatalf("restored %d keys in all, want %d", total, frKeys)
			}
		})
	}
}

// TestRestoreThenCheckpointAgain restores, changes state, checkpoints the
// restored backend and restores that.
func TestRestoreThenCheckpointAgain(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 2, 0, "snappy"), frSource(t, 2, 1, "zstd"))
	b, err := backend.Restore(ctx, backend.Int64, frOpts(t, 1, 0), st, cp.Handles)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.InstanceID() == cp.Handles[0].InstanceID || b.InstanceID() == cp.Handles[1].InstanceID {
		t.Fatal("a rescaled backend kept a source's instance id")
	}
	s := frRegister(t, b, false)
	must(t, b.SetCurrentKey(frKeys))
	must(t, s.v.Update("new"))
	cp2, err := b.Checkpoint(ctx, st, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := backend.Restore(ctx, backend.Int64, frOpts(t, 1, 0), st, cp2.Handles)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rs := frRegister(t, r, true)
	must(t, r.SetCurrentKey(frKeys))
	if v, ok, err := rs.v.Get(); err != nil || !ok || v != "new" {
		t.Fatalf("new key: %q %v %v", v, ok, err)
	}
	must(t, r.SetCurrentKey(7))
	if v, ok, err := rs.v.Get(); err != nil || !ok || v != frValue(7) {
		t.Fatalf("old key: %q %v %v", v, ok, err)
	}
}

func TestRestoreIgnoresOtherOperators(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	other := cp.Handles[0]
	other.Operator = "someone-else"
	other.KeyGroupStart, other.KeyGroupEnd = 0, 1 // would overlap if it counted
	other.Blocks = nil
	b, err := backend.Restore(ctx, backend.Int64, frOpts(t, 1, 0), st, append(cp.Handles, other))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	frCheck(t, b)
	// And a checkpoint with nothing for the operator is an error, never an
	// empty backend.
	opts := frOpts(t, 1, 0)
	opts.Operator = "third"
	_, err = backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
	frWantErr(t, err, snapshot.ErrIncomplete, `no handle for operator "third"`)
	frGone(t, opts.Dir)
}

// frGone checks a failed restore removed its directory.
func frGone(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("a failed restore left %s (%v, %d entries)", dir, err, len(entries))
	}
}

func frWantErr(t testing.TB, err error, target error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("restore succeeded")
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %q is not %v", err, target)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not say %q", err, f)
		}
	}
}

func TestRestoreOverlappingHandles(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	one := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	two := frCheckpoint(t, st, 2, frSource(t, 2, 0, "snappy"), frSource(t, 2, 1, "snappy"))
	opts := frOpts(t, 1, 0)
	_, err := backend.Restore(ctx, backend.Int64, opts, st, append(slices.Clone(one.Handles), two.Handles[1]))
	frWantErr(t, err, snapshot.ErrInconsistent, "mixed")
	frGone(t, opts.Dir)
	// The same handle twice overlaps itself.
	_, err = backend.Restore(ctx, backend.Int64, opts, st, []snapshot.Handle{two.Handles[0], two.Handles[0]})
	frWantErr(t, err, snapshot.ErrInconsistent, "in more than one handle")
	frGone(t, opts.Dir)
	// Every handle of the operator is checked, also those outside the new
	// range: a checkpoint that holds a key group twice is inconsistent.
	opts2 := frOpts(t, 2, 1)
	_, err = backend.Restore(ctx, backend.Int64, opts2, st, []snapshot.Handle{two.Handles[0], two.Handles[0], two.Handles[1]})
	frWantErr(t, err, snapshot.ErrInconsistent)
	frGone(t, opts2.Dir)
}

func TestRestoreMaxParallelismMismatch(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	opts := frOpts(t, 1, 0)
	opts.MaxParallelism, opts.KeyGroups = 256, backend.KeyGroupRange{Start: 0, End: 256}
	_, err := backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
	frWantErr(t, err, nil, "max parallelism")
	frGone(t, opts.Dir)
	// Handles that disagree among themselves.
	h := cp.Handles[0]
	h.MaxParallelism, h.KeyGroupStart, h.KeyGroupEnd, h.Blocks = 256, 200, 256, nil
	opts = frOpts(t, 1, 0)
	_, err = backend.Restore(ctx, backend.Int64, opts, st, []snapshot.Handle{cp.Handles[0], h})
	frWantErr(t, err, nil, "max parallelism")
	frGone(t, opts.Dir)
}

func TestRestoreKeyCodecMismatch(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	opts := frOpts(t, 1, 0)
	_, err := backend.Restore(ctx, backend.String, opts, st, cp.Handles)
	frWantErr(t, err, backend.ErrIncompatibleBackend, "int64")
	frGone(t, opts.Dir)
}

func TestRestoreTargetNotEmpty(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	opts := frOpts(t, 1, 0)
	must(t, os.MkdirAll(opts.Dir, 0o755))
	precious := filepath.Join(opts.Dir, "precious.txt")
	must(t, os.WriteFile(precious, []byte("user data"), 0o644))
	_, err := backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
	frWantErr(t, err, backend.ErrInvalidArgument, "not empty")
	if b, err := os.ReadFile(precious); err != nil || string(b) != "user data" {
		t.Fatalf("a refused restore touched the directory: %q %v", b, err)
	}
	// An empty existing directory is fine.
	empty := frOpts(t, 1, 0)
	must(t, os.MkdirAll(empty.Dir, 0o755))
	b, err := backend.Restore(ctx, backend.Int64, empty, st, cp.Handles)
	if err != nil {
		t.Fatal(err)
	}
	frCheck(t, b)
	b.Close()
}

// frCorruptBlock flips a byte in the middle of block i of handle h.
func frCorruptBlock(t testing.TB, st *snapshot.Local, h snapshot.Handle, i int) snapshot.Block {
	t.Helper()
	blk := h.Blocks[i]
	p := st.Path(h.Files[0].Name)
	data, err := os.ReadFile(p)
	must(t, err)
	data[blk.Offset+blk.Length/2] ^= 0x55
	must(t, os.WriteFile(p, data, 0o644))
	return blk
}

// TestRestoreFailsMidway corrupts a block of the second handle: the restore
// fails after reading the first handle, and nothing of it is left.
func TestRestoreFailsMidway(t *testing.T) {
	ctx := context.Background()
	for _, comp := range []string{"none", "snappy", "zstd", "s2"} {
		t.Run(comp, func(t *testing.T) {
			st := frStorage(t)
			cp := frCheckpoint(t, st, 1, frSource(t, 2, 0, comp), frSource(t, 2, 1, comp))
			second := cp.Handles[1]
			blk := frCorruptBlock(t, st, second, len(second.Blocks)-1)
			before := frTree(t, st.Root())
			opts := frOpts(t, 1, 0)
			_, err := backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
			frWantErr(t, err, snapshot.ErrCorrupt, second.Files[0].Name, fmt.Sprintf("key group %d", blk.KeyGroup))
			if at := fmt.Sprintf("at offset %d", blk.Offset); !strings.Contains(err.Error(), at) {
				t.Errorf("BUG: the error of a corrupt block does not give its offset (%q): %v", at, err)
			}
			frGone(t, opts.Dir)
			if after := frTree(t, st.Root()); !slices.Equal(before, after) {
				t.Fatalf("a failed restore changed the checkpoint storage:\n%v\n%v", before, after)
			}
			// The first handle alone still restores where it is needed.
			b, err := backend.Restore(ctx, backend.Int64, frOpts(t, 2, 0), st, cp.Handles)
			if err != nil {
				t.Fatal(err)
			}
			frCheck(t, b)
			b.Close()
			// And so does the second one's range if the bad key group is not
			// in it.
			r := backend.KeyGroupRange{Start: second.KeyGroupStart, End: blk.KeyGroup}
			opts = backend.Options{Dir: filepath.Join(t.TempDir(), "part"), KeyGroups: r, Operator: "op"}
			b, err = backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
			if err != nil {
				t.Fatalf("restoring [%d, %d), without the corrupt block: %v", r.Start, r.End, err)
			}
			frCheck(t, b)
			b.Close()
		})
	}
}

func frTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d", p, info.Size()))
		return nil
	}))
	return out
}

func TestRestoreMissingDataFile(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 2, 0, "snappy"), frSource(t, 2, 1, "snappy"))
	name := cp.Handles[1].Files[0].Name
	must(t, os.Remove(st.Path(name)))
	opts := frOpts(t, 1, 0)
	_, err := backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
	frWantErr(t, err, snapshot.ErrNotExist, name)
	frGone(t, opts.Dir)
	// Through RestoreLatest and RestoreFromPath too.
	_, _, err = backend.RestoreLatest(ctx, backend.Int64, opts, st)
	frWantErr(t, err, snapshot.ErrNotExist, name)
	frGone(t, opts.Dir)
	_, _, err = backend.RestoreFromPath(ctx, backend.Int64, opts, st.Root())
	frWantErr(t, err, snapshot.ErrNotExist, name)
	frGone(t, opts.Dir)
}

func TestRestoreTruncatedDataFile(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 2, 0, "zstd"), frSource(t, 2, 1, "zstd"))
	name := cp.Handles[1].Files[0].Name
	p := st.Path(name)
	data, err := os.ReadFile(p)
	must(t, err)
	for _, n := range []int{0, 10, 16, len(data) / 2, len(data) - 1} {
		must(t, os.WriteFile(p, data[:n], 0o644))
		opts := frOpts(t, 1, 0)
		_, err := backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
		frWantErr(t, err, snapshot.ErrCorrupt, name)
		frGone(t, opts.Dir)
	}
	// A file grown by a byte is caught too.
	must(t, os.WriteFile(p, append(data, 0), 0o644))
	opts := frOpts(t, 1, 0)
	_, err = backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
	frWantErr(t, err, snapshot.ErrCorrupt, name)
	frGone(t, opts.Dir)
}

func TestRestoreUnknownDataVersion(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	name := cp.Handles[0].Files[0].Name
	p := st.Path(name)
	data, err := os.ReadFile(p)
	must(t, err)
	data[9] = 2 // version 2
	must(t, os.WriteFile(p, data, 0o644))
	opts := frOpts(t, 1, 0)
	_, err = backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
	frWantErr(t, err, snapshot.ErrCorrupt, name, "version 2")
	frGone(t, opts.Dir)
}

func TestRestoreHandleErrors(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	h := cp.Handles[0]
	cases := []struct {
		name   string
		mutate func(h *snapshot.Handle)
		target error
		says   []string
	}{
		{"block key group outside the range", func(h *snapshot.Handle) {
			h.KeyGroupEnd = h.Blocks[len(h.Blocks)-1].KeyGroup
		}, snapshot.ErrCorrupt, []string{"outside the handle's range"}},
		{"wrong compression", func(h *snapshot.Handle) { h.Compression = "zstd" }, snapshot.ErrCorrupt, []string{h.Files[0].Name, "compression snappy", "zstd"}},
		{"unknown compression", func(h *snapshot.Handle) { h.Compression = "lz4" }, snapshot.ErrCorrupt, []string{h.Files[0].Name}},
		{"wrong size", func(h *snapshot.Handle) { h.Files[0].Size++ }, snapshot.ErrCorrupt, []string{h.Files[0].Name}},
		{"two files", func(h *snapshot.Handle) { h.Files = append(h.Files, h.Files[0]) }, snapshot.ErrCorrupt, []string{"files"}},
		{"no files", func(h *snapshot.Handle) { h.Files = nil }, snapshot.ErrCorrupt, nil},
		{"block checksum", func(h *snapshot.Handle) { h.Blocks[3].CRC32C++ }, snapshot.ErrCorrupt, []string{h.Files[0].Name, fmt.Sprintf("offset %d", h.Blocks[3].Offset), "checksum"}},
		{"block entries", func(h *snapshot.Handle) { h.Blocks[3].Entries++ }, snapshot.ErrCorrupt, []string{h.Files[0].Name, "entries"}},
		{"state missing from the handle", func(h *snapshot.Handle) { h.States = h.States[1:] }, snapshot.ErrCorrupt, []string{h.Files[0].Name, "state id"}},
		{"file name escapes", func(h *snapshot.Handle) { h.Files[0].Name = "../outside.dat" }, nil, []string{"outside.dat"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := h
			bad.Files = slices.Clone(h.Files)
			bad.Blocks = slices.Clone(h.Blocks)
			bad.States = slices.Clone(h.States)
			c.mutate(&bad)
			opts := frOpts(t, 1, 0)
			_, err := backend.Restore(ctx, backend.Int64, opts, st, []snapshot.Handle{bad})
			frWantErr(t, err, c.target, c.says...)
			frGone(t, opts.Dir)
		})
	}
}

// TestRestoreMalformedStateRecord: a handle whose state record is
// malformed (an unknown kind, an empty name) must not restore into a
// backend that then cannot be reopened.
func TestRestoreMalformedStateRecord(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	for name, mutate := range map[string]func(*snapshot.State){
		"unknown kind": func(s *snapshot.State) { s.Kind = 99 },
		"empty name":   func(s *snapshot.State) { s.Name = "" },
	} {
		t.Run(name, func(t *testing.T) {
			h := cp.Handles[0]
			h.States = slices.Clone(h.States)
			mutate(&h.States[0])
			opts := frOpts(t, 1, 0)
			b, err := backend.Restore(ctx, backend.Int64, opts, st, []snapshot.Handle{h})
			if err != nil {
				frWantErr(t, err, snapshot.ErrCorrupt)
				frGone(t, opts.Dir)
				return
			}
			must(t, b.Close())
			rerr := func() (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("BUG: Open panicked on the stored malformed state record: %v", r)
					}
				}()
				b, err := backend.Open(backend.Int64, opts)
				if err == nil {
					b.Close()
				}
				return err
			}()
			t.Fatalf("BUG: a handle with a malformed state record (%+v) restored; reopening the backend then fails: %v", h.States[0], rerr)
		})
	}
}

// TestRestoreStateCodecMismatch: a state restored from a checkpoint keeps
// its codecs; registering it with others afterwards fails.
func TestRestoreStateCodecMismatch(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 2, 0, "snappy"), frSource(t, 2, 1, "snappy"))
	b, err := backend.Restore(ctx, backend.Int64, frOpts(t, 1, 0), st, cp.Handles)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64}); !errors.Is(err, backend.ErrIncompatibleState) {
		t.Fatalf("value codec changed: %v", err)
	}
	if _, err := backend.GetList(b, backend.ListDescriptor[int64]{Name: "v", Codec: backend.Int64}); !errors.Is(err, backend.ErrIncompatibleState) {
		t.Fatalf("kind changed: %v", err)
	}
	if _, err := backend.GetValue(b, backend.ValueDescriptor[string]{Name: "w", Codec: backend.String}); !errors.Is(err, backend.ErrIncompatibleState) {
		t.Fatalf("namespace codec changed: %v", err)
	}
	if _, err := backend.GetMap(b, backend.MapDescriptor[string, string]{Name: "m", KeyCodec: backend.String, ValueCodec: backend.String}); !errors.Is(err, backend.ErrIncompatibleState) {
		t.Fatalf("map key codec changed: %v", err)
	}
	frCheck(t, b) // the right descriptors still work

	// Handles that disagree about a state's codec cannot be restored
	// together.
	h := cp.Handles[1]
	h.States = slices.Clone(h.States)
	for i := range h.States {
		if h.States[i].Name == "v" {
			h.States[i].ValueCodec = "int64"
		}
	}
	opts := frOpts(t, 1, 0)
	_, err = backend.Restore(ctx, backend.Int64, opts, st, []snapshot.Handle{cp.Handles[0], h})
	frWantErr(t, err, backend.ErrIncompatibleState, `"v"`)
	frGone(t, opts.Dir)
}

func TestRestoreCancelled(t *testing.T) {
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 1, 0, "snappy"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := frOpts(t, 1, 0)
	_, err := backend.Restore(ctx, backend.Int64, opts, st, cp.Handles)
	frWantErr(t, err, context.Canceled)
	frGone(t, opts.Dir)
}

// frTarget opens an empty raw database to restore into with
// restore.Handles, numbering states by name as ids does.
func frTarget(t testing.TB, r keygroup.Range, ids map[string]uint16) (restore.Target, string) {
	t.Helper()
	dir := t.TempDir()
	o := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Merger: listfmt.Merger, DisableWAL: true, Logger: frQuiet{}}
	o.EnsureDefaults()
	db, err := pebble.Open(filepath.Join(dir, "db"), o)
	must(t, err)
	t.Cleanup(func() { db.Close() })
	staging := filepath.Join(dir, "staging")
	return restore.Target{
		DB: restore.Pebble(db, o), StagingDir: staging, KeyGroups: r, MaxParallelism: frMaxPar,
		StateID: func(s snapshot.State) (uint16, error) {
			id, ok := ids[s.Name]
			if !ok {
				return 0, fmt.Errorf("unknown state %q", s.Name)
			}
			return id, nil
		},
	}, staging
}

type frQuiet struct{}

func (frQuiet) Infof(string, ...any)  {}
func (frQuiet) Errorf(string, ...any) {}
func (frQuiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// frDump returns every key of db.
func frDump(t testing.TB, db restore.DB) []string {
	t.Helper()
	it, err := db.NewIter(nil, nil)
	must(t, err)
	var out []string
	for valid := it.First(); valid; valid = it.Next() {
		out = append(out, string(it.Key()))
	}
	must(t, it.Close())
	return out
}

func frStagingEmpty(t testing.TB, staging string) {
	t.Helper()
	entries, err := os.ReadDir(staging)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the staging directory: %s", e.Name())
	}
}

var frIDs = map[string]uint16{"v": 11, "l": 12, "m": 13, "w": 14}

func TestRestoreHandlesStats(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 2, 0, "snappy"), frSource(t, 2, 1, "none"))
	r := keygroup.Range{Start: 30, End: 100}
	tg, staging := frTarget(t, r, frIDs)
	stats, err := restore.Handles(ctx, st, cp.Handles, tg)
	if err != nil {
		t.Fatal(err)
	}
	var wantBlocks int
	var wantEntries int64
	for _, h := range cp.Handles {
		for _, b := range h.Blocks {
			if r.Contains(b.KeyGroup) {
				wantBlocks++
				wantEntries += b.Entries
			}
		}
	}
	if stats.Handles != 2 || stats.KeyGroups != wantBlocks || stats.Entries != wantEntries || stats.Bytes <= 0 {
		t.Fatalf("stats %+v; want 2 handles, %d key groups, %d entries", stats, wantBlocks, wantEntries)
	}
	got := frDump(t, tg.DB)
	if int64(len(got)) != wantEntries {
		t.Fatalf("%d keys in the database, want %d", len(got), wantEntries)
	}
	for _, k := range got {
		id := uint16(k[0])<<8 | uint16(k[1])
		if !slices.Contains(slices.Collect(maps.Values(frIDs)), id) || !r.Contains(int(k[2])) {
			t.Fatalf("key %x: state %d, key group %d", k, id, k[2])
		}
	}
	frStagingEmpty(t, staging)
}

// TestRestoreHandlesFailureIngestsNothing: whatever fails, the target
// database gets nothing and the staging directory is left empty.
func TestRestoreHandlesFailureIngestsNothing(t *testing.T) {
	st := frStorage(t)
	cp := frCheckpoint(t, st, 1, frSource(t, 2, 0, "snappy"), frSource(t, 2, 1, "snappy"))
	all := keygroup.Range{Start: 0, End: frMaxPar}
	cases := map[string]func(t *testing.T) (context.Context, []snapshot.Handle, restore.Target, string){
		"corrupt block of the second handle": func(t *testing.T) (context.Context, []snapshot.Handle, restore.Target, string) {
			st2 := frStorage(t)
			cp2 := frCheckpoint(t, st2, 1, frSource(t, 2, 0, "snappy"), frSource(t, 2, 1, "snappy"))
			frCorruptBlock(t, st2, cp2.Handles[1], len(cp2.Handles[1].Blocks)-1)
			tg, staging := frTarget(t, all, frIDs)
			st = st2
			return context.Background(), cp2.Handles, tg, staging
		},
		"unknown state": func(t *testing.T) (context.Context, []snapshot.Handle, restore.Target, string) {
			tg, staging := frTarget(t, all, map[string]uint16{"v": 1, "l": 2, "m": 3})
			return context.Background(), cp.Handles, tg, staging
		},
		"cancelled": func(t *testing.T) (context.Context, []snapshot.Handle, restore.Target, string) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			tg, staging := frTarget(t, all, frIDs)
			return ctx, cp.Handles, tg, staging
		},
		"missing file of the second handle": func(t *testing.T) (context.Context, []snapshot.Handle, restore.Target, string) {
			hs := slices.Clone(cp.Handles)
			hs[1].Files = []snapshot.FileRef{{Name: "chk-1/full-nothing.dat", Size: hs[1].Files[0].Size}}
			tg, staging := frTarget(t, all, frIDs)
			return context.Background(), hs, tg, staging
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			saved := st
			defer func() { st = saved }()
			ctx, hs, tg, staging := setup(t)
			_, err := restore.Handles(ctx, st, hs, tg)
			if err == nil {
				t.Fatal("restore succeeded")
			}
			if got := frDump(t, tg.DB); len(got) != 0 {
				t.Fatalf("a failed restore ingested %d keys", len(got))
			}
			frStagingEmpty(t, staging)
		})
	}
}

// TestRestoreHandlesKeyLayout checks restored keys are laid out under the
// target's state ids with the same key group and key bytes.
func TestRestoreHandlesKeyLayout(t *testing.T) {
	ctx := context.Background()
	st := frStorage(t)
	src := frSource(t, 1, 0, "s2")
	cp := frCheckpoint(t, st, 1, src)
	tg, _ := frTarget(t, keygroup.Range{Start: 0, End: frMaxPar}, frIDs)
	if _, err := restore.Handles(ctx, st, cp.Handles, tg); err != nil {
		t.Fatal(err)
	}
	// Every source state's entries are under the target's id for its name.
	counts := map[uint16]int{}
	for _, k := range frDump(t, tg.DB) {
		counts[uint16(k[0])<<8|uint16(k[1])]++
		if _, _, err := keys.DecodeKeyGroup([]byte(k[2:]), 1); err != nil {
			t.Fatal(err)
		}
	}
	var wantV, wantW int
	for k := range int64(frKeys) {
		wantV++
		wantW += len(frNamespaces(k))
	}
	if counts[frIDs["v"]] != wantV || counts[frIDs["l"]] != wantV || counts[frIDs["w"]] != wantW {
		t.Fatalf("entries per target state: %v", counts)
	}
}
