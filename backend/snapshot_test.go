package backend_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// Helpers of the snapshot tests (this file, snapshot_faults_test.go,
// snapshot_crash_test.go, golden_test.go) are prefixed sn.

// snStorage returns Local checkpoint storage in a new directory.
func snStorage(t testing.TB) *snapshot.Local {
	t.Helper()
	st, err := snapshot.NewLocal(filepath.Join(t.TempDir(), "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// snStates are the states the snapshot tests use: a value, a list, a map
// and a namespaced value.
type snStates struct {
	v *backend.Value[int64, backend.VoidNamespace, string]
	l *backend.List[int64, backend.VoidNamespace, int64]
	m *backend.Map[int64, backend.VoidNamespace, int64, string]
	w *backend.Value[int64, int64, string]
}

func snRegister(t testing.TB, b *backend.Backend[int64]) snStates {
	t.Helper()
	var s snStates
	var err error
	if s.v, err = backend.GetValue(b, backend.ValueDescriptor[string]{Name: "v", Codec: backend.String}); err != nil {
		t.Fatal(err)
	}
	if s.l, err = backend.GetList(b, backend.ListDescriptor[int64]{Name: "l", Codec: backend.Int64}); err != nil {
		t.Fatal(err)
	}
	if s.m, err = backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String}); err != nil {
		t.Fatal(err)
	}
	if s.w, err = backend.GetValueNS(b, backend.Int64, backend.ValueDescriptor[string]{Name: "w", Codec: backend.String}); err != nil {
		t.Fatal(err)
	}
	return s
}

// snNamespaces are the namespaces the namespaced state uses.
const snNamespaces = 4

// snModel is what the states hold.
type snModel struct {
	v map[int64]string
	l map[int64][]int64
	m map[int64]map[int64]string
	w map[[2]int64]string // (key, namespace)
}

func newSnModel() *snModel {
	return &snModel{v: map[int64]string{}, l: map[int64][]int64{}, m: map[int64]map[int64]string{}, w: map[[2]int64]string{}}
}

func (m *snModel) clone() *snModel {
	c := &snModel{v: maps.Clone(m.v), l: make(map[int64][]int64, len(m.l)), m: make(map[int64]map[int64]string, len(m.m)), w: maps.Clone(m.w)}
	for k, l := range m.l {
		c.l[k] = slices.Clone(l)
	}
	for k, mm := range m.m {
		c.m[k] = maps.Clone(mm)
	}
	return c
}

// merge adds o's entries (of other keys) to m.
func (m *snModel) merge(o *snModel) {
	maps.Copy(m.v, o.v)
	maps.Copy(m.l, o.l)
	maps.Copy(m.m, o.m)
	maps.Copy(m.w, o.w)
}

// snApply runs n random operations on keys [0, keySpace) against both the
// states and the model.
func snApply(t testing.TB, b *backend.Backend[int64], s snStates, m *snModel, rng *rand.Rand, n, keySpace int, tag string) {
	t.Helper()
	for i := range n {
		k := rng.Int64N(int64(keySpace))
		if err := b.SetCurrentKey(k); err != nil {
			t.Fatal(err)
		}
		var err error
		switch op := rng.IntN(12); op {
		case 0, 1, 2:
			val := fmt.Sprintf("%s-%d-%d", tag, k, i)
			err = s.v.Update(val)
			m.v[k] = val
		case 3:
			err = s.v.Clear()
			delete(m.v, k)
		case 4, 5:
			e := rng.Int64()
			err = s.l.Add(e)
			m.l[k] = append(m.l[k], e)
		case 6:
			if rng.IntN(2) == 0 {
				err = s.l.Clear()
				delete(m.l, k)
			} else {
				es := []int64{int64(i), k}
				err = s.l.Update(es)
				m.l[k] = es
			}
		case 7, 8:
			uk, uv := rng.Int64N(8)-3, fmt.Sprintf("%s/%d", tag, i)
			err = s.m.Put(uk, uv)
			if m.m[k] == nil {
				m.m[k] = map[int64]string{}
			}
			m.m[k][uk] = uv
		case 9:
			uk := rng.Int64N(8) - 3
			err = s.m.Remove(uk)
			delete(m.m[k], uk)
			if len(m.m[k]) == 0 {
				delete(m.m, k)
			}
		case 10:
			ns := rng.Int64N(snNamespaces)
			if err := s.w.SetCurrentNamespace(ns); err != nil {
				t.Fatal(err)
			}
			val := fmt.Sprintf("%s@%d#%d", tag, ns, i)
			err = s.w.Update(val)
			m.w[[2]int64{k, ns}] = val
		case 11:
			ns := rng.Int64N(snNamespaces)
			if err := s.w.SetCurrentNamespace(ns); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(4) == 0 {
				err = s.m.Clear()
				delete(m.m, k)
			} else {
				err = s.w.Clear()
				delete(m.w, [2]int64{k, ns})
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snRead reads every state of b into a model.
func snRead(t testing.TB, b *backend.Backend[int64]) *snModel {
	t.Helper()
	s := snRegister(t, b)
	out := newSnModel()
	keysOf := func(seq func(func(int64, error) bool)) []int64 {
		var ks []int64
		for k, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			ks = append(ks, k)
		}
		return ks
	}
	for _, k := range keysOf(s.v.KeysInNamespace(backend.VoidNamespace{})) {
		noErr(t, b.SetCurrentKey(k))
		v, ok, err := s.v.Get()
		if err != nil || !ok {
			t.Fatalf("value of key %d: %v %v", k, ok, err)
		}
		out.v[k] = v
	}
	for _, k := range keysOf(s.l.KeysInNamespace(backend.VoidNamespace{})) {
		noErr(t, b.SetCurrentKey(k))
		l, err := s.l.Get()
		if err != nil || len(l) == 0 {
			t.Fatalf("list of key %d: %v %v", k, l, err)
		}
		out.l[k] = l
	}
	for _, k := range keysOf(s.m.KeysInNamespace(backend.VoidNamespace{})) {
		noErr(t, b.SetCurrentKey(k))
		mm := map[int64]string{}
		for e, err := range s.m.Entries() {
			if err != nil {
				t.Fatal(err)
			}
			mm[e.Key] = e.Value
		}
		if len(mm) == 0 {
			t.Fatalf("map of key %d is empty", k)
		}
		out.m[k] = mm
	}
	for ns := range int64(snNamespaces) {
		for _, k := range keysOf(s.w.KeysInNamespace(ns)) {
			noErr(t, b.SetCurrentKey(k))
			noErr(t, s.w.SetCurrentNamespace(ns))
			v, ok, err := s.w.Get()
			if err != nil || !ok {
				t.Fatalf("namespaced value of key %d in %d: %v %v", k, ns, ok, err)
			}
			out.w[[2]int64{k, ns}] = v
		}
	}
	return out
}

// snEqual fails the test if got differs from want, naming the first
// difference.
func snEqual(t testing.TB, what string, got, want *snModel) {
	t.Helper()
	diff := func(state string, gotN, wantN int, ok bool, detail func() string) {
		if !ok || gotN != wantN {
			t.Fatalf("%s: state %s: %d entries, want %d; %s", what, state, gotN, wantN, detail())
		}
	}
	firstDiff := func(gk, wk []string) string {
		sort.Strings(gk)
		sort.Strings(wk)
		for i := range max(len(gk), len(wk)) {
			var g, w string
			if i < len(gk) {
				g = gk[i]
			}
			if i < len(wk) {
				w = wk[i]
			}
			if g != w {
				return fmt.Sprintf("first difference: got %q, want %q", g, w)
			}
		}
		return "same"
	}
	flat := func(f func(yield func(string))) []string {
		var out []string
		f(func(s string) { out = append(out, s) })
		return out
	}
	dumpV := func(m map[int64]string) []string {
		return flat(func(y func(string)) {
			for k, v := range m {
				y(fmt.Sprintf("%d=%s", k, v))
			}
		})
	}
	dumpL := func(m map[int64][]int64) []string {
		return flat(func(y func(string)) {
			for k, v := range m {
				y(fmt.Sprintf("%d=%v", k, v))
			}
		})
	}
	dumpM := func(m map[int64]map[int64]string) []string {
		return flat(func(y func(string)) {
			for k, mm := range m {
				for uk, uv := range mm {
					y(fmt.Sprintf("%d/%d=%s", k, uk, uv))
				}
			}
		})
	}
	dumpW := func(m map[[2]int64]string) []string {
		return flat(func(y func(string)) {
			for k, v := range m {
				y(fmt.Sprintf("%d@%d=%s", k[0], k[1], v))
			}
		})
	}
	diff("v", len(got.v), len(want.v), maps.Equal(got.v, want.v), func() string { return firstDiff(dumpV(got.v), dumpV(want.v)) })
	diff("l", len(got.l), len(want.l), maps.EqualFunc(got.l, want.l, slices.Equal), func() string { return firstDiff(dumpL(got.l), dumpL(want.l)) })
	diff("m", len(got.m), len(want.m), maps.EqualFunc(got.m, want.m, maps.Equal), func() string { return firstDiff(dumpM(got.m), dumpM(want.m)) })
	diff("w", len(got.w), len(want.w), maps.Equal(got.w, want.w), func() string { return firstDiff(dumpW(got.w), dumpW(want.w)) })
}

// snTree lists what is under root: files with their sizes, directories
// with a trailing slash.
func snTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out = append(out, filepath.ToSlash(rel)+"/")
			return nil
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// snEmptyRoot fails the test if anything is under root.
func snEmptyRoot(t testing.TB, root, when string) {
	t.Helper()
	if got := snTree(t, root); len(got) != 0 {
		t.Fatalf("%s, the checkpoint storage holds %v; want nothing", when, got)
	}
}

// snSlowStorage delays every write of a data file, so that a snapshot's
// asynchronous part takes long enough to act while it runs. started is
// closed at the first write.
type snSlowStorage struct {
	snapshot.Storage
	delay   time.Duration
	started chan struct{}
	once    sync.Once
}

func newSnSlowStorage(st snapshot.Storage, delay time.Duration) *snSlowStorage {
	return &snSlowStorage{Storage: st, delay: delay, started: make(chan struct{})}
}

func (s *snSlowStorage) Create(ctx context.Context, name string) (snapshot.FileWriter, error) {
	w, err := s.Storage.Create(ctx, name)
	if err != nil || !strings.Contains(name, "/full-") {
		return w, err
	}
	return &snSlowWriter{FileWriter: w, s: s}, nil
}

type snSlowWriter struct {
	snapshot.FileWriter
	s *snSlowStorage
}

func (w *snSlowWriter) Write(p []byte) (int, error) {
	w.s.once.Do(func() { close(w.s.started) })
	time.Sleep(w.s.delay)
	return w.FileWriter.Write(p)
}

// snCommit commits one handle as checkpoint id.
func snCommit(t testing.TB, st snapshot.Storage, id int64, hs ...snapshot.Handle) *snapshot.Checkpoint {
	t.Helper()
	cp := &snapshot.Checkpoint{ID: id, Handles: hs}
	if err := snapshot.Commit(context.Background(), st, cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestSnapshotRoundTrip checkpoints random state with each compression and
// restores it whole and split in three.
func TestSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	for i, comp := range []string{"none", "snappy", "zstd", "s2"} {
		t.Run(comp, func(t *testing.T) {
			b := MustOpenK(t, backend.Int64, withOptions(backend.Options{SnapshotCompression: comp}))
			s := snRegister(t, b)
			model := newSnModel()
			snApply(t, b, s, model, rand.New(rand.NewPCG(uint64(i), 1)), 4000, 700, comp)
			cp, err := b.Checkpoint(ctx, st, int64(i+1))
			if err != nil {
				t.Fatal(err)
			}
			h := cp.Handles[0]
			if h.Compression != comp || h.Kind != snapshot.KindFull {
				t.Fatalf("handle says compression %q, kind %q", h.Compression, h.Kind)
			}
			snEqual(t, "restored whole", snRead(t, MustRestore(t, backend.Int64, st, cp.Handles)), model)
			parts := newSnModel()
			for j := range 3 {
				r, err := backend.KeyGroupRangeForSubtask(128, 3, j)
				noErr(t, err)
				part := snRead(t, MustRestore(t, backend.Int64, st, cp.Handles, withOptions(backend.Options{KeyGroups: r})))
				for k := range part.v {
					if kg, _ := backend.KeyGroupOf(backend.Int64, k, 128); !r.Contains(kg) {
						t.Fatalf("instance %d holds key %d of key group %d", j, k, kg)
					}
				}
				parts.merge(part)
			}
			snEqual(t, "restored in three", parts, model)
		})
	}
}

// TestSnapshotHandle checks what the handle says against the backend and
// the file on disk.
func TestSnapshotHandle(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	r := backend.KeyGroupRange{Start: 32, End: 96}
	b := MustOpenK(t, backend.Int64, withOptions(backend.Options{KeyGroups: r, Operator: "window-op", SnapshotCompression: "zstd"}))
	s := snRegister(t, b)
	for k := range int64(300) {
		if kg, _ := backend.KeyGroupOf(backend.Int64, k, 128); r.Contains(kg) {
			noErr(t, b.SetCurrentKey(k))
			noErr(t, s.v.Update("x"))
		}
	}
	snap, err := b.Snapshot(9, st)
	noErr(t, err)
	h, err := snap.Run(ctx)
	noErr(t, err)
	if h.Operator != "window-op" || h.InstanceID != b.InstanceID() || h.CheckpointID != 9 || h.Kind != snapshot.KindFull ||
		h.MaxParallelism != 128 || h.KeyGroupStart != 32 || h.KeyGroupEnd != 96 || h.KeyCodec != "int64" || h.Compression != "zstd" {
		t.Fatalf("handle %+v", h)
	}
	var names []string
	for _, m := range h.States {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"l", "m", "v", "w"}) {
		t.Fatalf("states %v", names)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(h.Files) != 1 || h.Files[0].Name != fmt.Sprintf("chk-9/full-%s.dat", b.InstanceID()) {
		t.Fatalf("files %+v", h.Files)
	}
	data, err := os.ReadFile(st.Path(h.Files[0].Name))
	noErr(t, err)
	if int64(len(data)) != h.Files[0].Size || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != h.Files[0].CRC32C ||
		h.StateSize != h.Files[0].Size || h.CheckpointedSize != h.Files[0].Size {
		t.Fatalf("file %d bytes; handle %+v, sizes %d %d", len(data), h.Files[0], h.StateSize, h.CheckpointedSize)
	}
	var entries int64
	for _, blk := range h.Blocks {
		entries += blk.Entries
	}
	if entries != int64(len(snRead(t, b).v)) {
		t.Fatalf("blocks hold %d entries", entries)
	}
	// Nothing is committed by Run.
	if _, err := snapshot.Latest(ctx, st); !errors.Is(err, snapshot.ErrNoCheckpoint) {
		t.Fatalf("Run committed a checkpoint: %v", err)
	}
}

// TestSnapshotPointInTime: the task goroutine keeps writing, overwriting
// and deleting while Run writes the snapshot on another goroutine; the
// snapshot holds exactly the state at the synchronous point. Run it under
// -race.
func TestSnapshotPointInTime(t *testing.T) {
	ctx := context.Background()
	for round, comp := range []string{"snappy", "none"} {
		t.Run(comp, func(t *testing.T) {
			local := snStorage(t)
			st := newSnSlowStorage(local, time.Millisecond)
			b := MustOpenK(t, backend.Int64, withOptions(backend.Options{SnapshotCompression: comp, MemTableSize: 1 << 20}))
			s := snRegister(t, b)
			rng := rand.New(rand.NewPCG(uint64(round), 99))
			model := newSnModel()
			snApply(t, b, s, model, rng, 6000, 800, "before")
			noErr(t, b.Flush()) // some of it in SSTs, some in the memtable
			snApply(t, b, s, model, rng, 2000, 800, "memtable")

			snap, err := b.Snapshot(1, st)
			noErr(t, err)
			atSync := model.clone()

			type result struct {
				h   snapshot.Handle
				err error
			}
			done := make(chan result, 1)
			go func() {
				h, err := snap.Run(ctx)
				done <- result{h, err}
			}()
			<-st.started
			var res result
			ops := 0
		loop:
			for {
				select {
				case res = <-done:
					break loop
				default:
				}
				snApply(t, b, s, model, rng, 50, 800, fmt.Sprintf("after%d", ops))
				ops += 50
				if ops%1000 == 0 {
					noErr(t, b.Flush())
				}
			}
			noErr(t, res.err)
			if ops == 0 {
				t.Fatal("no writes overlapped the asynchronous part")
			}
			t.Logf("%d operations while the snapshot ran", ops)
			cp := snCommit(t, local, 1, res.h)
			snEqual(t, "snapshot", snRead(t, MustRestore(t, backend.Int64, local, cp.Handles)), atSync)
			// And the live backend has everything written since.
			snEqual(t, "live backend", snRead(t, b), model)
		})
	}
}

// TestSnapshotConcurrentSnapshots: two snapshots in flight at once, with
// writes between their synchronous points, each restore to their own
// point.
func TestSnapshotConcurrentSnapshots(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	b := MustOpenK(t, backend.Int64)
	s := snRegister(t, b)
	rng := rand.New(rand.NewPCG(5, 5))
	model := newSnModel()
	snApply(t, b, s, model, rng, 3000, 500, "one")
	s1, err := b.Snapshot(1, st)
	noErr(t, err)
	at1 := model.clone()
	snApply(t, b, s, model, rng, 3000, 500, "two")
	s2, err := b.Snapshot(2, st)
	noErr(t, err)
	at2 := model.clone()
	snApply(t, b, s, model, rng, 1000, 500, "three")
	var wg sync.WaitGroup
	var h1, h2 snapshot.Handle
	var e1, e2 error
	wg.Add(2)
	go func() { defer wg.Done(); h2, e2 = s2.Run(ctx) }()
	go func() { defer wg.Done(); h1, e1 = s1.Run(ctx) }()
	wg.Wait()
	noErr(t, e1)
	noErr(t, e2)
	cp1 := snCommit(t, st, 1, h1)
	cp2 := snCommit(t, st, 2, h2)
	snEqual(t, "checkpoint 1", snRead(t, MustRestore(t, backend.Int64, st, cp1.Handles)), at1)
	snEqual(t, "checkpoint 2", snRead(t, MustRestore(t, backend.Int64, st, cp2.Handles)), at2)
}

// snBigState writes n entries of a value state.
func snBigState(t testing.TB, b *backend.Backend[int64], n int) {
	t.Helper()
	s := snRegister(t, b)
	val := strings.Repeat("payload", 20)
	for k := range int64(n) {
		noErr(t, b.SetCurrentKey(k))
		noErr(t, s.v.Update(val))
		noErr(t, s.l.Add(k))
	}
}

func TestSnapshotRunCancelled(t *testing.T) {
	t.Run("before Run", func(t *testing.T) {
		st := snStorage(t)
		b := MustOpenK(t, backend.Int64)
		snBigState(t, b, 1000)
		snap, err := b.Snapshot(1, st)
		noErr(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := snap.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run with a cancelled context = %v", err)
		}
		snEmptyRoot(t, st.Root(), "after a cancelled Run")
		// A checkpoint with a cancelled context too.
		if _, err := b.Checkpoint(ctx, st, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("Checkpoint with a cancelled context = %v", err)
		}
		snEmptyRoot(t, st.Root(), "after a cancelled Checkpoint")
	})
	t.Run("while writing", func(t *testing.T) {
		local := snStorage(t)
		st := newSnSlowStorage(local, 2*time.Millisecond)
		b := MustOpenK(t, backend.Int64)
		snBigState(t, b, 5000)
		snap, err := b.Snapshot(1, st)
		noErr(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := snap.Run(ctx)
			done <- err
		}()
		<-st.started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Run = %v", err)
		}
		snEmptyRoot(t, local.Root(), "after cancelling Run")
	})
	t.Run("right after start", func(t *testing.T) {
		// No slow storage: cancel at once and accept either outcome, but a
		// cancelled Run must leave nothing.
		for i := range 3 {
			st := snStorage(t)
			b := MustOpenK(t, backend.Int64, withOptions(backend.Options{SnapshotCompression: "zstd"}))
			snBigState(t, b, 10000)
			snap, err := b.Snapshot(int64(i), st)
			noErr(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := snap.Run(ctx)
				done <- err
			}()
			time.Sleep(time.Duration(i) * time.Millisecond)
			cancel()
			err = <-done
			if err == nil {
				continue // finished first
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Run = %v", err)
			}
			snEmptyRoot(t, st.Root(), "after cancelling Run")
		}
	})
}

func TestSnapshotReleaseWithoutRun(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	dir := filepath.Join(t.TempDir(), "db")
	b, err := backend.Open(backend.Int64, backend.Options{Dir: dir})
	noErr(t, err)
	snBigState(t, b, 100)
	snap, err := b.Snapshot(1, st)
	noErr(t, err)
	snap.Release()
	snap.Release() // twice is fine
	if _, err := snap.Run(ctx); err == nil {
		t.Fatal("Run after Release succeeded")
	}
	snEmptyRoot(t, st.Root(), "after Release")
	// A snapshot never run nor released is released by Close, which must
	// not complain about a leaked Pebble snapshot.
	_, err = b.Snapshot(2, st)
	noErr(t, err)
	if err := b.Close(); err != nil {
		t.Fatalf("Close with an unreleased snapshot: %v", err)
	}
	snEmptyRoot(t, st.Root(), "after Close")
	// Snapshot of a closed backend.
	if _, err := b.Snapshot(3, st); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Snapshot after Close = %v", err)
	}
	if _, err := b.Checkpoint(ctx, st, 3); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Checkpoint after Close = %v", err)
	}
}

func TestSnapshotRunTwice(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	b := MustOpenK(t, backend.Int64)
	snBigState(t, b, 100)
	snap, err := b.Snapshot(1, st)
	noErr(t, err)
	h, err := snap.Run(ctx)
	noErr(t, err)
	if _, err := snap.Run(ctx); err == nil {
		t.Fatal("second Run succeeded")
	}
	snap.Release() // a no-op after Run
	// The file of the first Run is intact.
	cp := snCommit(t, st, 1, h)
	if got := len(snRead(t, MustRestore(t, backend.Int64, st, cp.Handles)).v); got != 100 {
		t.Fatalf("restored %d keys", got)
	}
}

func TestSnapshotInvalidArguments(t *testing.T) {
	b := MustOpenK(t, backend.Int64)
	if _, err := b.Snapshot(-1, snStorage(t)); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("negative id: %v", err)
	}
	if _, err := b.Snapshot(1, nil); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("nil storage: %v", err)
	}
}

// TestSnapshotCloseDuringRun: Close cancels a running snapshot, waits for
// it, and returns; the snapshot leaves nothing behind.
func TestSnapshotCloseDuringRun(t *testing.T) {
	local := snStorage(t)
	st := newSnSlowStorage(local, 5*time.Millisecond)
	b, err := backend.Open(backend.Int64, backend.Options{Dir: filepath.Join(t.TempDir(), "db")})
	noErr(t, err)
	snBigState(t, b, 5000)
	snap, err := b.Snapshot(1, st)
	noErr(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := snap.Run(context.Background())
		done <- err
	}()
	<-st.started
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return while a snapshot ran")
	}
	t.Logf("Close took %v", time.Since(start))
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run cancelled by Close = %v", err)
	}
	snEmptyRoot(t, local.Root(), "after Close cancelled the snapshot")
}

// TestSnapshotCloseRacesRun starts Run on another goroutine and closes the
// backend at once, many times: whichever wins, Close must not close the
// Pebble snapshot or the database under a Run that has started (a panic,
// or a leaked-iterator error from Close), and nothing may be left in the
// storage.
//
// It fails by crashing the test binary (panic: pebble: closed, in
// full.Write on the Run goroutine), so it only runs with
// PEBBLESTATE_STRESS=1 until the bug is fixed.
func TestSnapshotCloseRacesRun(t *testing.T) {
	if os.Getenv("PEBBLESTATE_STRESS") == "" {
		t.Skip("BUG: closeAll reads AsyncSnapshot.running, unlocks, then releases: a Run that starts in between " +
			"runs on a closed Pebble snapshot and panics (pebble: closed); set PEBBLESTATE_STRESS=1 to reproduce")
	}
	for i := range 300 {
		st := snStorage(t)
		b, err := backend.Open(backend.Int64, backend.Options{Dir: filepath.Join(t.TempDir(), "db")})
		noErr(t, err)
		snBigState(t, b, 200)
		snap, err := b.Snapshot(1, st)
		noErr(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := snap.Run(context.Background())
			done <- err
		}()
		if err := b.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", i, err)
		}
		if err := <-done; err == nil {
			// Run finished before Close; its file stays until the
			// checkpoint is completed or aborted.
			continue
		}
		snEmptyRoot(t, st.Root(), fmt.Sprintf("round %d, after Close raced Run", i))
	}
}

func TestSnapshotNotifyAborted(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	b := MustOpenK(t, backend.Int64)
	snBigState(t, b, 100)
	snap, err := b.Snapshot(7, st)
	noErr(t, err)
	h, err := snap.Run(ctx)
	noErr(t, err)
	if _, err := os.Stat(st.Path(h.Files[0].Name)); err != nil {
		t.Fatalf("data file: %v", err)
	}
	noErr(t, b.NotifyCheckpointAborted(ctx, 7, st))
	snEmptyRoot(t, st.Root(), "after NotifyCheckpointAborted")
	// Unknown ids are fine.
	noErr(t, b.NotifyCheckpointAborted(ctx, 12345, st))

	// After completion, an abort notification no longer deletes anything.
	snap, err = b.Snapshot(8, st)
	noErr(t, err)
	h, err = snap.Run(ctx)
	noErr(t, err)
	snCommit(t, st, 8, h)
	noErr(t, b.NotifyCheckpointComplete(8))
	noErr(t, b.NotifyCheckpointAborted(ctx, 8, st))
	if _, err := os.Stat(st.Path(h.Files[0].Name)); err != nil {
		t.Fatalf("abort after completion deleted the data file: %v", err)
	}
	// Completing a later checkpoint forgets earlier pending files too.
	snap, err = b.Snapshot(9, st)
	noErr(t, err)
	h9, err := snap.Run(ctx)
	noErr(t, err)
	noErr(t, b.NotifyCheckpointComplete(10))
	noErr(t, b.NotifyCheckpointAborted(ctx, 9, st))
	if _, err := os.Stat(st.Path(h9.Files[0].Name)); err != nil {
		t.Fatalf("abort of 9 after completion of 10 deleted its file: %v", err)
	}
}

func TestSnapshotCheckpointRetained(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	b := MustOpenK(t, backend.Int64, withOptions(backend.Options{RetainedCheckpoints: 2}))
	s := snRegister(t, b)
	rng := rand.New(rand.NewPCG(1, 2))
	model := newSnModel()
	var models []*snModel
	for id := int64(1); id <= 5; id++ {
		snApply(t, b, s, model, rng, 500, 200, fmt.Sprint("cp", id))
		models = append(models, model.clone())
		cp, err := b.Checkpoint(ctx, st, id)
		noErr(t, err)
		if cp.ID != id || len(cp.Handles) != 1 {
			t.Fatalf("checkpoint %+v", cp)
		}
		want := []int64{id}
		if id > 1 {
			want = []int64{id - 1, id}
		}
		ids, err := snapshot.Completed(ctx, st)
		noErr(t, err)
		if !slices.Equal(ids, want) {
			t.Fatalf("after checkpoint %d, completed %v", id, ids)
		}
	}
	var dirs []string
	for _, p := range snTree(t, st.Root()) {
		if strings.HasSuffix(p, "/") {
			dirs = append(dirs, p)
		}
	}
	if !slices.Equal(dirs, []string{"chk-4/", "chk-5/"}) {
		t.Fatalf("directories %v", dirs)
	}
	for _, id := range []int64{4, 5} {
		cp, err := snapshot.Load(ctx, st, id)
		noErr(t, err)
		snEqual(t, fmt.Sprint("checkpoint ", id), snRead(t, MustRestore(t, backend.Int64, st, cp.Handles)), models[id-1])
	}
	// The default keeps one.
	st1 := snStorage(t)
	b1 := MustOpenK(t, backend.Int64)
	snBigState(t, b1, 10)
	for id := int64(1); id <= 3; id++ {
		_, err := b1.Checkpoint(ctx, st1, id)
		noErr(t, err)
	}
	if ids, _ := snapshot.Completed(ctx, st1); !slices.Equal(ids, []int64{3}) {
		t.Fatalf("default retention kept %v", ids)
	}
}

// TestSnapshotCheckpointIDReused: taking checkpoint id again must fail and
// must leave the completed checkpoint of that id restorable.
func TestSnapshotCheckpointIDReused(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	b := MustOpenK(t, backend.Int64)
	s := snRegister(t, b)
	model := newSnModel()
	snApply(t, b, s, model, rand.New(rand.NewPCG(3, 3)), 1000, 100, "first")
	_, err := b.Checkpoint(ctx, st, 1)
	noErr(t, err)
	atOne := model.clone()
	snApply(t, b, s, model, rand.New(rand.NewPCG(4, 4)), 1000, 100, "second")
	if _, err := b.Checkpoint(ctx, st, 1); err == nil {
		t.Fatal("a second checkpoint 1 succeeded")
	}
	cp, err := snapshot.Latest(ctx, st)
	noErr(t, err)
	r, err := backend.Restore(ctx, backend.Int64, backend.Options{Dir: filepath.Join(t.TempDir(), "r")}, st, cp.Handles)
	if err != nil {
		t.Fatalf("BUG: re-running checkpoint id 1 destroyed the completed checkpoint 1 "+
			"(its data file was overwritten, then deleted as aborted): restore = %v; storage now %v", err, snTree(t, st.Root()))
	}
	defer r.Close()
	snEqual(t, "checkpoint 1", snRead(t, r), atOne)
}

// TestSnapshotUnregisteredStates: states stored by an earlier session but
// not registered in this one are in the snapshot too.
func TestSnapshotUnregisteredStates(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	dir := filepath.Join(t.TempDir(), "db")
	b, err := backend.Open(backend.Int64, backend.Options{Dir: dir})
	noErr(t, err)
	s := snRegister(t, b)
	model := newSnModel()
	snApply(t, b, s, model, rand.New(rand.NewPCG(7, 7)), 1000, 100, "x")
	noErr(t, b.Close())
	b = MustOpenK(t, backend.Int64, withOptions(backend.Options{Dir: dir}))
	cp, err := b.Checkpoint(ctx, st, 1)
	noErr(t, err)
	if len(cp.Handles[0].States) != 4 {
		t.Fatalf("handle lists %d states", len(cp.Handles[0].States))
	}
	snEqual(t, "restored", snRead(t, MustRestore(t, backend.Int64, st, cp.Handles)), model)
}

func TestSnapshotEmptyBackend(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	b := MustOpenK(t, backend.Int64)
	cp, err := b.Checkpoint(ctx, st, 1)
	noErr(t, err)
	if len(cp.Handles[0].Blocks) != 0 || len(cp.Handles[0].States) != 0 {
		t.Fatalf("handle of an empty backend: %+v", cp.Handles[0])
	}
	r := MustRestore(t, backend.Int64, st, cp.Handles)
	snEqual(t, "restored", snRead(t, r), newSnModel())
	// States registered but empty.
	snRegister(t, b)
	cp, err = b.Checkpoint(ctx, st, 2)
	noErr(t, err)
	if len(cp.Handles[0].Blocks) != 0 || len(cp.Handles[0].States) != 4 {
		t.Fatalf("handle of empty states: %+v", cp.Handles[0])
	}
	snEqual(t, "restored", snRead(t, MustRestore(t, backend.Int64, st, cp.Handles)), newSnModel())
}

// TestSnapshotTTLFullSnapshot: with Cleanup.FullSnapshot, entries and list
// elements expired at the synchronous point are left out of the snapshot;
// without it they are kept.
func TestSnapshotTTLFullSnapshot(t *testing.T) {
	ctx := context.Background()
	st := snStorage(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	clock := ttl.NewManualClock(t0)
	opts := backend.Options{Clock: clock, TTLSweepInterval: -1}
	b := MustOpenK(t, backend.Int64, withOptions(opts))
	cfg := func(full bool) ttl.Config {
		return ttl.Config{TTL: 10 * time.Second, Cleanup: ttl.Cleanup{FullSnapshot: full, DisableBackground: true}}
	}
	type states struct {
		v    *backend.Value[int64, backend.VoidNamespace, string]
		l    *backend.List[int64, backend.VoidNamespace, int64]
		m    *backend.Map[int64, backend.VoidNamespace, int64, string]
		keep *backend.Value[int64, backend.VoidNamespace, string]
		pl   *backend.Value[int64, backend.VoidNamespace, string]
	}
	register := func(b *backend.Backend[int64]) states {
		var s states
		var err error
		if s.v, err = backend.GetValue(b, backend.ValueDescriptor[string]{Name: "tv", Codec: backend.String, TTL: cfg(true)}); err != nil {
			t.Fatal(err)
		}
		if s.l, err = backend.GetList(b, backend.ListDescriptor[int64]{Name: "tl", Codec: backend.Int64, TTL: cfg(true)}); err != nil {
			t.Fatal(err)
		}
		if s.m, err = backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "tm", KeyCodec: backend.Int64, ValueCodec: backend.String, TTL: cfg(true)}); err != nil {
			t.Fatal(err)
		}
		if s.keep, err = backend.GetValue(b, backend.ValueDescriptor[string]{Name: "keep", Codec: backend.String, TTL: cfg(false)}); err != nil {
			t.Fatal(err)
		}
		if s.pl, err = backend.GetValue(b, backend.ValueDescriptor[string]{Name: "plain", Codec: backend.String}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := register(b)
	for k := range int64(100) { // at t0
		noErr(t, b.SetCurrentKey(k))
		noErr(t, s.v.Update("old"))
		noErr(t, s.l.Add(k))
		noErr(t, s.m.Put(1, "old"))
		noErr(t, s.keep.Update("old"))
		noErr(t, s.pl.Update("old"))
	}
	clock.Advance(6 * time.Second)
	for k := int64(50); k < 150; k++ { // at t0+6s
		noErr(t, b.SetCurrentKey(k))
		noErr(t, s.v.Update("new"))
		noErr(t, s.l.Add(k+1000))
		noErr(t, s.m.Put(2, "new"))
	}
	clock.Advance(5 * time.Second) // t0+11s: what was written at t0 expired
	snap, err := b.Snapshot(1, st)
	noErr(t, err)
	// Time moves on before Run: the snapshot still filters as of its
	// synchronous point, so the entries written at t0+6s stay.
	clock.Advance(time.Hour)
	h, err := snap.Run(ctx)
	noErr(t, err)
	cp := snCommit(t, st, 1, h)

	// Restore with the clock back at t0, when nothing had expired, so that
	// every entry in the snapshot is visible.
	r := MustRestore(t, backend.Int64, st, cp.Handles, withOptions(backend.Options{Clock: ttl.NewManualClock(t0), TTLSweepInterval: -1}))
	rs := register(r)
	for k := range int64(150) {
		noErr(t, r.SetCurrentKey(k))
		v, vok, err := rs.v.Get()
		noErr(t, err)
		l, err := rs.l.Get()
		noErr(t, err)
		mm := map[int64]string{}
		for e, err := range rs.m.Entries() {
			noErr(t, err)
			mm[e.Key] = e.Value
		}
		keep, keepOK, err := rs.keep.Get()
		noErr(t, err)
		pl, plOK, err := rs.pl.Get()
		noErr(t, err)
		switch {
		case k < 50: // only t0 data: expired, left out
			if vok || l != nil || len(mm) != 0 {
				t.Fatalf("key %d: expired entries in the snapshot: %q %v %v", k, v, l, mm)
			}
		case k < 100: // t0 and t0+6s
			if !vok || v != "new" || !slices.Equal(l, []int64{k + 1000}) || !maps.Equal(mm, map[int64]string{2: "new"}) {
				t.Fatalf("key %d: %q %v %v %v", k, v, vok, l, mm)
			}
		default: // t0+6s only
			if !vok || v != "new" || !slices.Equal(l, []int64{k + 1000}) || !maps.Equal(mm, map[int64]string{2: "new"}) {
				t.Fatalf("key %d: %q %v %v %v", k, v, vok, l, mm)
			}
		}
		// Without FullSnapshot, and without TTL, everything is kept.
		if wantOld := k < 100; keepOK != wantOld || plOK != wantOld || (wantOld && (keep != "old" || pl != "old")) {
			t.Fatalf("key %d: keep %q %v, plain %q %v", k, keep, keepOK, pl, plOK)
		}
	}
}
