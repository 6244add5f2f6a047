package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// keysFlag scales SETUP_KEY_COUNT and NEW_KEY_COUNT together. CI runs the
// suite with -keys=1000 -benchtime=1x as a smoke test.
var keysFlag = flag.Int("keys", 500_000,
	"number of existing keys (SETUP_KEY_COUNT) written before each benchmark, and of new keys (NEW_KEY_COUNT) the add benchmarks write")

// Constants of flink-benchmarks' StateBenchmarkConstants that do not scale.
const (
	mapKeyCount    = 10  // MAP_KEY_COUNT: entries per map, map keys 0..9
	listValueCount = 100 // LIST_VALUE_COUNT: elements of the addAll argument
)

// seed makes key orders and values the same in every run and in both the
// state and the raw fixtures.
const seed = 20261121

// rootDir holds the fixture templates; TestMain removes it.
var rootDir string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "pebblestate-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	rootDir = dir
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	os.Exit(code)
}

// workload is flink-benchmarks' StateBenchmarkConstants: shuffled key
// arrays and pre-drawn values, so that no random numbers are drawn inside
// the timed loop.
type workload struct {
	setupKeys  []int64   // 0..S-1, shuffled
	newKeys    []int64   // S..S+N-1, shuffled
	values     []int64   // S+N random values (RANDOM_VALUE_COUNT is S+N in flink too)
	mapKeys    []int64   // 0..9, shuffled
	mapValues  []float64 // mapKeyCount random values
	listValues []int64   // the listValueCount elements of every addAll
}

var sharedWorkload = sync.OnceValues(func() (*workload, error) {
	n := *keysFlag
	if n < 1 {
		return nil, fmt.Errorf("bench: -keys=%d, need at least 1", n)
	}
	rng := newRand(0)
	w := &workload{
		setupKeys:  make([]int64, n),
		newKeys:    make([]int64, n),
		values:     make([]int64, 2*n),
		mapKeys:    make([]int64, mapKeyCount),
		mapValues:  make([]float64, mapKeyCount),
		listValues: make([]int64, listValueCount),
	}
	for i := range n {
		w.setupKeys[i] = int64(i)
		w.newKeys[i] = int64(n + i)
	}
	for i := range w.values {
		w.values[i] = rng.Int64()
	}
	for i := range mapKeyCount {
		w.mapKeys[i] = int64(i)
		w.mapValues[i] = rng.Float64()
	}
	for i := range w.listValues {
		w.listValues[i] = rng.Int64()
	}
	shuffle(rng, w.setupKeys)
	shuffle(rng, w.newKeys)
	shuffle(rng, w.mapKeys)
	return w, nil
})

func getWorkload(tb testing.TB) *workload {
	tb.Helper()
	w, err := sharedWorkload()
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// The inputs of op number i, picked by one rolling index as in
// flink-benchmarks' KeyValue. Each benchmark uses only those it needs.

func (w *workload) setupKey(i int) int64   { return w.setupKeys[i%len(w.setupKeys)] }
func (w *workload) newKey(i int) int64     { return w.newKeys[i%len(w.newKeys)] }
func (w *workload) value(i int) int64      { return w.values[i%len(w.values)] }
func (w *workload) mapKey(i int) int64     { return w.mapKeys[i%mapKeyCount] }
func (w *workload) mapValue(i int) float64 { return w.mapValues[i%mapKeyCount] }
func (w *workload) setupCount() int        { return len(w.setupKeys) }

func newRand(stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

func shuffle[T any](rng *rand.Rand, s []T) {
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

func voidNS() backend.VoidNamespace { return backend.VoidNamespace{} }

// stateOptions are the backend options of every state fixture: all
// defaults, which rawPebbleOptions mirrors.
func stateOptions(dir string) backend.Options { return backend.Options{Dir: dir} }

// A fixture is a populated, closed database directory, built once per
// process on first use. Benchmarks never open it: each clones it (hard
// links for the immutable table files, copies for the rest) and opens the
// clone, so writes in one benchmark never leak into another and every
// benchmark starts from the same LSM shape.
type fixture struct {
	name  string
	build func(dir string, n int) error
	once  sync.Once
	dir   string
	err   error
}

// get returns the fixture's directory, building it with the current
// SETUP_KEY_COUNT on first use. Building is setup: call it before the
// timed loop.
func (f *fixture) get(tb testing.TB) string {
	tb.Helper()
	n := getWorkload(tb).setupCount()
	f.once.Do(func() {
		f.dir = filepath.Join(rootDir, f.name)
		f.err = f.build(f.dir, n)
		if f.err != nil {
			f.err = fmt.Errorf("bench: build fixture %s: %w", f.name, f.err)
		}
	})
	if f.err != nil {
		tb.Fatal(f.err)
	}
	return f.dir
}

// clone returns a fresh copy of the fixture in a temporary directory that
// is removed when the benchmark ends.
func (f *fixture) clone(tb testing.TB) string {
	tb.Helper()
	src := f.get(tb)
	dst := tb.TempDir()
	if err := cloneDir(src, dst); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// cloneDir copies a closed Pebble directory. Table and blob files are
// never modified once written, so they are hard-linked, as Pebble's own
// Checkpoint does; the MANIFEST and the other small files are copied.
func cloneDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if strings.HasSuffix(e.Name(), ".sst") || strings.HasSuffix(e.Name(), ".blob") {
			if os.Link(s, d) == nil {
				continue
			}
		}
		if err := copyFile(s, d); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// openBackend opens a clone of f, which must hold a backend, and closes it
// when the benchmark ends.
func openBackend(tb testing.TB, f *fixture, enableWAL bool) *backend.Backend[int64] {
	tb.Helper()
	opts := stateOptions(f.clone(tb))
	opts.EnableWAL = enableWAL
	be, err := backend.Open(backend.Int64, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := be.Close(); err != nil {
			tb.Error(err)
		}
	})
	return be
}

// warm reads every key of a state once, which loads the fixture's data
// blocks into the block cache (as far as they fit), so that the timed loop
// does not start cold. The raw baselines warm the same way (warmRaw).
func warm(tb testing.TB, keys iter.Seq2[int64, error]) {
	tb.Helper()
	n := 0
	for _, err := range keys {
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
	if want := getWorkload(tb).setupCount(); n != want {
		tb.Fatalf("fixture holds %d keys, want %d", n, want)
	}
}

// start does what every benchmark does right before its timed loop. It
// returns the function to call right after the loop, which reports
// cpu-ns/op: the CPU time the whole process spent per op (background
// flushes and compactions included). It moves much less than ns/op when
// other processes compete for the cores, so on a shared machine ratios of
// cpu-ns/op are the steadier measure of the backend's overhead.
func start(b *testing.B) (stop func()) {
	b.ReportAllocs()
	runtime.GC() // leave the garbage of setup out of the loop
	cpu0, ok := processCPU()
	return func() {
		cpu1, _ := processCPU()
		if ok && b.N > 0 {
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// State fixtures: one backend per state kind, with the state registered
// first (so it has the first user state id, like the raw keys assume) and
// every setup key 0..S-1 written in ascending order, as flink-benchmarks'
// setUp does. Values come from a fixed seed, the same the raw fixtures use.

var (
	valueFixture = &fixture{name: "value", build: buildValueFixture}
	listFixture  = &fixture{name: "list", build: buildListFixture}
	mapFixture   = &fixture{name: "map", build: buildMapFixture}
)

// The states of the fixtures, named as in flink-benchmarks.
var (
	valueDesc = backend.ValueDescriptor[int64]{Name: "kvState", Codec: backend.Int64}
	listDesc  = backend.ListDescriptor[int64]{Name: "listState", Codec: backend.Int64}
	mapDesc   = backend.MapDescriptor[int64, float64]{Name: "mapState", KeyCodec: backend.Int64, ValueCodec: backend.Float64}
)

// Random streams of the fixtures: a state fixture and its raw twin draw
// from the same stream, so they store the same bytes.
const (
	valueStream = 1
	listStream  = 2
	mapStream   = 3
)

// buildValueFixture is ValueStateBenchmark.setUp: update(random long) for
// every setup key.
func buildValueFixture(dir string, n int) error {
	return buildState(dir, func(be *backend.Backend[int64]) error {
		v, err := backend.GetValue(be, valueDesc)
		if err != nil {
			return err
		}
		rng := newRand(valueStream)
		for k := range int64(n) {
			if err := be.SetCurrentKey(k); err != nil {
				return err
			}
			if err := v.Update(rng.Int64()); err != nil {
				return err
			}
		}
		return nil
	})
}

// buildListFixture is ListStateBenchmark.setUpPerIteration: add one random
// long to the list of every setup key, then compact everything into the
// bottom level (Backend.Compact), as flink compacts the state to one table
// so that every get reads the same file. Each benchmark starts from a fresh
// clone, which stands in for flink's per-iteration clear-and-refill.
func buildListFixture(dir string, n int) error {
	return buildState(dir, func(be *backend.Backend[int64]) error {
		l, err := backend.GetList(be, listDesc)
		if err != nil {
			return err
		}
		rng := newRand(listStream)
		for k := range int64(n) {
			if err := be.SetCurrentKey(k); err != nil {
				return err
			}
			if err := l.Add(rng.Int64()); err != nil {
				return err
			}
		}
		return be.Compact(context.Background())
	})
}

// buildMapFixture is MapStateBenchmark.setUp: mapKeyCount entries (map
// keys 0..9, random doubles) for every setup key. It writes each key's
// entries with one PutAll, which stores the same entries as ten Puts in
// less setup time.
func buildMapFixture(dir string, n int) error {
	return buildState(dir, func(be *backend.Backend[int64]) error {
		m, err := backend.GetMap(be, mapDesc)
		if err != nil {
			return err
		}
		rng := newRand(mapStream)
		entries := func(yield func(int64, float64) bool) {
			for j := range int64(mapKeyCount) {
				if !yield(j, rng.Float64()) {
					return
				}
			}
		}
		for k := range int64(n) {
			if err := be.SetCurrentKey(k); err != nil {
				return err
			}
			if err := m.PutAll(entries); err != nil {
				return err
			}
		}
		return nil
	})
}

func buildState(dir string, fill func(*backend.Backend[int64]) error) error {
	be, err := backend.Open(backend.Int64, stateOptions(dir))
	if err != nil {
		return err
	}
	if err := fill(be); err != nil {
		_ = be.Close()
		return err
	}
	return be.Close() // flushes: the WAL is off
}
