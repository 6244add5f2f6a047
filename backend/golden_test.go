package backend_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// The golden checkpoint in testdata/golden was written by format version 1
// (metadata version 1, full-snapshot data version 1) and must keep
// restoring, with every value, whatever the format becomes. Regenerate it
// only when that is the point:
//
//	PEBBLESTATE_WRITE_GOLDEN=1 go test ./backend -run TestGolden
//
// It is the checkpoint root of an operator "golden" at parallelism 2 of
// max parallelism 128, with int64 keys 0..goldenKeys-1 and these states,
// every value computed from its key: a value, a list, a map, a value in
// namespaces, a reducing state and a value with TTL. Instance 0 wrote
// snappy blocks, instance 1 zstd.

const (
	goldenDir    = "../testdata/golden"
	goldenKeys   = 200
	goldenID     = 1
	goldenOp     = "golden"
	goldenMaxPar = 128
)

// goldenTime is the clock of the writers, and of the readers, so that the
// TTL state has not expired.
var goldenTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type goldenStates struct {
	v *backend.Value[int64, backend.VoidNamespace, string]
	l *backend.List[int64, backend.VoidNamespace, int64]
	m *backend.Map[int64, backend.VoidNamespace, int64, string]
	w *backend.Value[int64, int64, string]
	r *backend.Reducing[int64, backend.VoidNamespace, int64]
	t *backend.Value[int64, backend.VoidNamespace, string]
}

func goldenRegister(t testing.TB, b *backend.Backend[int64]) goldenStates {
	t.Helper()
	var s goldenStates
	var err error
	check := func() {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s.v, err = backend.GetValue(b, backend.ValueDescriptor[string]{Name: "value", Codec: backend.String})
	check()
	s.l, err = backend.GetList(b, backend.ListDescriptor[int64]{Name: "list", Codec: backend.Int64})
	check()
	s.m, err = backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "map", KeyCodec: backend.Int64, ValueCodec: backend.String})
	check()
	s.w, err = backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[string]{Name: "window", Codec: backend.String})
	check()
	s.r, err = backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: "sum", Codec: backend.Int64, Reduce: func(a, b int64) int64 { return a + b }})
	check()
	s.t, err = backend.GetValue(b, backend.ValueDescriptor[string]{Name: "ttl", Codec: backend.String,
		TTL: ttl.Config{TTL: 24 * time.Hour, Cleanup: ttl.Cleanup{DisableBackground: true}}})
	check()
	return s
}

// What key k holds.
func goldenValue(k int64) string { return fmt.Sprintf("value-%d", k) }
func goldenList(k int64) []int64 {
	out := []int64{}
	for i := range k%4 + 1 {
		out = append(out, k*100+i)
	}
	return out
}
func goldenMap(k int64) map[int64]string {
	if k%3 != 0 {
		return nil
	}
	m := map[int64]string{}
	for i := range k%5 + 1 {
		m[i-2] = fmt.Sprintf("map-%d-%d", k, i)
	}
	return m
}
func goldenNamespaces(k int64) []int64 { return []int64{k % 3, 10} }
func goldenWindow(k, ns int64) string  { return fmt.Sprintf("window-%d@%d", k, ns) }
func goldenSum(k int64) int64          { return 3 * k }
func goldenTTL(k int64) (string, bool) { return fmt.Sprintf("ttl-%d", k), k%2 == 0 }

// goldenWrite writes the fixture.
func goldenWrite(t *testing.T, root string) {
	ctx := context.Background()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewLocal(root)
	noErr(t, err)
	clock := ttl.NewManualClock(goldenTime)
	cp := &snapshot.Checkpoint{ID: goldenID, CreatedUnixMillis: goldenTime.UnixMilli()}
	for i, comp := range []string{"snappy", "zstd"} {
		r, err := backend.KeyGroupRangeForSubtask(goldenMaxPar, 2, i)
		noErr(t, err)
		b := MustOpenK(t, backend.Int64, withOptions(backend.Options{KeyGroups: r, Operator: goldenOp, SnapshotCompression: comp, Clock: clock, TTLSweepInterval: -1}))
		s := goldenRegister(t, b)
		for k := range int64(goldenKeys + 20) {
			if kg, _ := backend.KeyGroupOf(backend.Int64, k, goldenMaxPar); !r.Contains(kg) {
				continue
			}
			noErr(t, b.SetCurrentKey(k))
			noErr(t, s.v.Update(goldenValue(k)))
			for _, e := range goldenList(k) {
				noErr(t, s.l.Add(e))
			}
			for uk, uv := range goldenMap(k) {
				noErr(t, s.m.Put(uk, uv))
			}
			for _, ns := range goldenNamespaces(k) {
				noErr(t, s.w.SetCurrentNamespace(ns))
				noErr(t, s.w.Update(goldenWindow(k, ns)))
			}
			noErr(t, s.r.Add(k))
			noErr(t, s.r.Add(2*k))
			if v, ok := goldenTTL(k); ok {
				noErr(t, s.t.Update(v))
			}
			if k >= goldenKeys {
				// Written, then deleted: not in the checkpoint.
				noErr(t, s.v.Clear())
				noErr(t, s.l.Clear())
				noErr(t, s.m.Clear())
				noErr(t, s.r.Clear())
				noErr(t, s.t.Clear())
				for _, ns := range goldenNamespaces(k) {
					noErr(t, s.w.SetCurrentNamespace(ns))
					noErr(t, s.w.Clear())
				}
			}
		}
		noErr(t, b.Flush())
		snap, err := b.Snapshot(goldenID, st)
		noErr(t, err)
		h, err := snap.Run(ctx)
		noErr(t, err)
		cp.Handles = append(cp.Handles, h)
	}
	noErr(t, snapshot.Commit(ctx, st, cp))
	t.Logf("wrote the golden checkpoint to %s", root)
}

// goldenCopy copies the fixture to a temporary directory, so that no test
// can change it.
func goldenCopy(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(goldenDir); err != nil {
		t.Fatalf("read the golden checkpoint (regenerate with PEBBLESTATE_WRITE_GOLDEN=1): %v", err)
	}
	dst := filepath.Join(t.TempDir(), "golden")
	copyTree(t, goldenDir, dst)
	return dst
}

// goldenCheck checks that b holds exactly the keys of its key groups with
// their values, in every state, and returns the keys.
func goldenCheck(t *testing.T, b *backend.Backend[int64]) []int64 {
	t.Helper()
	s := goldenRegister(t, b)
	var want []int64
	for k := range int64(goldenKeys) {
		if kg, _ := backend.KeyGroupOf(backend.Int64, k, goldenMaxPar); b.KeyGroups().Contains(kg) {
			want = append(want, k)
		}
	}
	keysOf := func(seq func(func(int64, error) bool)) []int64 {
		var out []int64
		for k, err := range seq {
			noErr(t, err)
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	filter := func(keep func(int64) bool) []int64 {
		var out []int64
		for _, k := range want {
			if keep(k) {
				out = append(out, k)
			}
		}
		return out
	}
	all := func(int64) bool { return true }
	for name, c := range map[string]struct {
		got  []int64
		want []int64
	}{
		"value":     {keysOf(s.v.KeysInNamespace(backend.VoidNamespace{})), filter(all)},
		"list":      {keysOf(s.l.KeysInNamespace(backend.VoidNamespace{})), filter(all)},
		"map":       {keysOf(s.m.KeysInNamespace(backend.VoidNamespace{})), filter(func(k int64) bool { return goldenMap(k) != nil })},
		"sum":       {keysOf(s.r.KeysInNamespace(backend.VoidNamespace{})), filter(all)},
		"ttl":       {keysOf(s.t.KeysInNamespace(backend.VoidNamespace{})), filter(func(k int64) bool { _, ok := goldenTTL(k); return ok })},
		"window@0":  {keysOf(s.w.KeysInNamespace(0)), filter(func(k int64) bool { return k%3 == 0 })},
		"window@1":  {keysOf(s.w.KeysInNamespace(1)), filter(func(k int64) bool { return k%3 == 1 })},
		"window@2":  {keysOf(s.w.KeysInNamespace(2)), filter(func(k int64) bool { return k%3 == 2 })},
		"window@10": {keysOf(s.w.KeysInNamespace(10)), filter(all)},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Fatalf("state %s holds keys %v, want %v", name, c.got, c.want)
		}
	}
	for _, k := range want {
		noErr(t, b.SetCurrentKey(k))
		if v, ok, err := s.v.Get(); err != nil || !ok || v != goldenValue(k) {
			t.Fatalf("key %d: value %q %v %v", k, v, ok, err)
		}
		if l, err := s.l.Get(); err != nil || !slices.Equal(l, goldenList(k)) {
			t.Fatalf("key %d: list %v %v", k, l, err)
		}
		m := map[int64]string{}
		var order []int64
		for e, err := range s.m.Entries() {
			noErr(t, err)
			m[e.Key] = e.Value
			order = append(order, e.Key)
		}
		if want := goldenMap(k); !maps.Equal(m, want) && !(want == nil && len(m) == 0) {
			t.Fatalf("key %d: map %v, want %v", k, m, want)
		}
		if !slices.IsSorted(order) {
			t.Fatalf("key %d: map iterates in order %v", k, order)
		}
		for _, ns := range goldenNamespaces(k) {
			noErr(t, s.w.SetCurrentNamespace(ns))
			if v, ok, err := s.w.Get(); err != nil || !ok || v != goldenWindow(k, ns) {
				t.Fatalf("key %d namespace %d: %q %v %v", k, ns, v, ok, err)
			}
		}
		if v, ok, err := s.r.Get(); err != nil || !ok || v != goldenSum(k) {
			t.Fatalf("key %d: sum %d %v %v", k, v, ok, err)
		}
		wantTTL, wantOK := goldenTTL(k)
		if v, ok, err := s.t.Get(); err != nil || ok != wantOK || (ok && v != wantTTL) {
			t.Fatalf("key %d: ttl %q %v %v", k, v, ok, err)
		}
	}
	return want
}

func TestGolden(t *testing.T) {
	if os.Getenv("PEBBLESTATE_WRITE_GOLDEN") != "" {
		goldenWrite(t, goldenDir)
	}
	ctx := context.Background()
	root := goldenCopy(t)
	st, err := snapshot.NewLocal(root)
	noErr(t, err)

	// The fixture is what the comment says.
	cp, err := snapshot.Latest(ctx, st)
	noErr(t, err)
	if cp.ID != goldenID || len(cp.Handles) != 2 {
		t.Fatalf("golden checkpoint %d with %d handles", cp.ID, len(cp.Handles))
	}
	raw, err := os.ReadFile(filepath.Join(root, "chk-1", "_metadata"))
	noErr(t, err)
	if v := binary.BigEndian.Uint32(raw[8:]); v != 1 {
		t.Fatalf("golden metadata version %d", v)
	}
	var size int64
	for i, h := range cp.Handles {
		if h.Operator != goldenOp || h.KeyCodec != "int64" || h.MaxParallelism != goldenMaxPar || h.Kind != snapshot.KindFull ||
			h.Compression != []string{"snappy", "zstd"}[i] || len(h.States) != 6 || len(h.Files) != 1 {
			t.Fatalf("golden handle %d: %+v", i, h)
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(h.Files[0].Name)))
		noErr(t, err)
		if string(data[:8]) != "PBSTFULL" || binary.BigEndian.Uint16(data[8:]) != 1 {
			t.Fatalf("golden data file %s: header % x", h.Files[0].Name, data[:16])
		}
		size += int64(len(data)) + int64(len(raw))
	}
	if size > 100<<10 {
		t.Fatalf("the golden checkpoint is %d bytes; keep it under 100 KB", size)
	}

	opts := func(n, i int) backend.Options {
		r, err := backend.KeyGroupRangeForSubtask(goldenMaxPar, n, i)
		noErr(t, err)
		return backend.Options{Dir: filepath.Join(t.TempDir(), "r"), KeyGroups: r, Operator: goldenOp,
			Clock: ttl.NewManualClock(goldenTime.Add(time.Hour)), TTLSweepInterval: -1}
	}
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("parallelism %d", n), func(t *testing.T) {
			var all []int64
			for i := range n {
				b, err := backend.Restore(ctx, backend.Int64, opts(n, i), st, cp.Handles)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, goldenCheck(t, b)...)
				noErr(t, b.Close())
			}
			slices.Sort(all)
			if len(all) != goldenKeys || all[0] != 0 || all[len(all)-1] != goldenKeys-1 {
				t.Fatalf("restored %d keys in all", len(all))
			}
		})
	}
	t.Run("from path", func(t *testing.T) {
		for _, p := range []string{root, filepath.Join(root, "chk-1")} {
			b, report, err := backend.RestoreFromPath(ctx, backend.Int64, opts(1, 0), p)
			noErr(t, err)
			if report.Checkpoint.ID != 1 || len(report.Skipped) != 0 {
				t.Fatalf("RestoreFromPath(%s) restored checkpoint %d, passed over %v", p, report.Checkpoint.ID, report.Skipped)
			}
			goldenCheck(t, b)
			noErr(t, b.Close())
		}
	})
	// Restoring never writes to the checkpoint.
	if got, want := tree(t, root), tree(t, goldenDir); !slices.Equal(got, want) {
		t.Fatalf("the checkpoint changed: %v, was %v", got, want)
	}
}
