package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/internal/keygroup"
	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/snapshot"
)

// Snapshot, restore and rescaling benchmarks (snapshot_test.go,
// incremental_test.go, rescale_test.go) and their setup.
//
// # Workload
//
// All of them checkpoint one ValueState<byte[]> shaped like the state of
// flink-benchmarks' RocksdbStateBackendRescalingBenchmark: 96-byte random
// keys whose first 4 bytes are a counter (so they are unique), 128-byte
// random values, backend.Bytes as key and value codec, max parallelism 128.
// A stored entry is a 100-byte key ([state id 2][key group 1][uvarint
// length 1][key 96]) and a 128-byte value: 228 bytes, so 1M entries are
// about 230 MB of tables. The bytes are random, so no compression shrinks
// them (Pebble's snappy blocks and the snapshots' snappy frames both keep
// them about as they are).
//
//	-snapkeys    (1,000,000) entries of the snapshot, incremental and restore benchmarks
//	-rescalekeys (2,000,000) entries of the rescaling benchmarks
//
// Key i and its value are a pure function of i (and of a version number
// for the benchmarks that change values), so nothing is held in memory but
// what a benchmark needs.
//
// # Setup
//
// Every database and checkpoint a benchmark starts from is built once per
// process, outside the timer, under the suite's temporary root (TestMain
// removes it): the database of -snapkeys entries written in counter order
// (random key-group order) and compacted (Backend.Compact), a full and an
// incremental checkpoint of it, and for rescaling an incremental
// checkpoint of one instance of all 128 key groups and one of two
// instances of key groups [0, 64) and [64, 128), each written and compacted
// on its own, as a job at parallelism 2 would have. Checkpoint roots are
// only read: each restore goes into a fresh directory that is removed
// after the op, outside the timer. Benchmarks that write clone the database
// (hard links, as the state benchmarks do).
//
// Timing: ns/op covers only the operation named by each benchmark; the
// per-op preparation (fresh directory, updates) and clean-up (Release,
// Close, removing what was written) run with the timer stopped, and
// cpu-ns/op counts the process's CPU time in the timed sections only.

var (
	snapKeysFlag = flag.Int("snapkeys", 1_000_000,
		"entries (96-byte keys, 128-byte values) of the state the snapshot, incremental and restore benchmarks checkpoint")
	rescaleKeysFlag = flag.Int("rescalekeys", 2_000_000,
		"entries (96-byte keys, 128-byte values) of the state the rescaling benchmarks restore")
)

const (
	snapKeyLen   = 96  // user key bytes, the first 4 a big-endian counter
	snapValueLen = 128 // value bytes
	snapMaxPar   = backend.DefaultMaxParallelism
	// snapStoredKeyLen is the stored key: [state id][key group][uvarint 96][key].
	snapStoredKeyLen = keys.StateIDLen + 1 + 1 + snapKeyLen
	snapStateID      = uint16(1) // the only state's id in every database here
	snapSeed         = 0x5eed0f5aa9510ad
)

// snapDesc is the state of the rescaling benchmark (flink's
// TestKeyedFunction keeps a ValueState<byte[]> per key).
var snapDesc = backend.ValueDescriptor[[]byte]{Name: "randomState", Codec: backend.Bytes}

var (
	snapAll   = backend.KeyGroupRange{Start: 0, End: snapMaxPar}
	snapLower = backend.KeyGroupRange{Start: 0, End: snapMaxPar / 2}
	snapUpper = backend.KeyGroupRange{Start: snapMaxPar / 2, End: snapMaxPar}
)

// snapMix is splitmix64's finalizer.
func snapMix(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// snapFill appends n pseudo-random bytes of the stream named by s.
func snapFill(dst []byte, n int, s uint64) []byte {
	var w [8]byte
	for j := uint64(1); n > 0; j++ {
		binary.LittleEndian.PutUint64(w[:], snapMix(s+j*0x9e3779b97f4a7c15))
		k := min(n, 8)
		dst = append(dst, w[:k]...)
		n -= k
	}
	return dst
}

// snapKey appends key i: a 4-byte big-endian counter and 92 random bytes.
func snapKey(dst []byte, i int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(i))
	return snapFill(dst, snapKeyLen-4, snapMix(snapSeed^uint64(i)))
}

// snapValue appends the value of key i in version v (0 is what the
// fixtures write; the incremental benchmarks write later versions).
func snapValue(dst []byte, i int, v uint64) []byte {
	return snapFill(dst, snapValueLen, snapMix(snapSeed^uint64(i)^(v+1)<<40))
}

func snapKeyGroup(key []byte) int { return keygroup.AssignUnchecked(key, snapMaxPar) }

// snapOptions are the options of every backend here: all defaults, but
// the key groups and the checkpoint kind.
func snapOptions(dir string, kgs backend.KeyGroupRange, incremental bool) backend.Options {
	return backend.Options{Dir: dir, KeyGroups: kgs, IncrementalCheckpoints: incremental}
}

func snapOpen(tb testing.TB, opts backend.Options) (*backend.Backend[[]byte], *backend.Value[[]byte, backend.VoidNamespace, []byte]) {
	tb.Helper()
	be, err := backend.Open(backend.Bytes, opts)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := backend.GetValue(be, snapDesc)
	if err != nil {
		_ = be.Close()
		tb.Fatal(err)
	}
	return be, v
}

// snapWrite writes version ver of keys [from, to) (indexes mod n) that
// fall in the backend's key groups kgs.
func snapWrite(be *backend.Backend[[]byte], v *backend.Value[[]byte, backend.VoidNamespace, []byte],
	kgs backend.KeyGroupRange, n, from, to int, ver uint64) error {
	var k, val []byte
	for j := from; j < to; j++ {
		i := j % n
		k = snapKey(k[:0], i)
		if !kgs.Contains(snapKeyGroup(k)) {
			continue
		}
		if err := be.SetCurrentKey(k); err != nil {
			return err
		}
		if err := v.Update(snapValue(val[:0], i, ver)); err != nil {
			return err
		}
	}
	return nil
}

// snapBuild writes keys 0..n-1 into new backends, one per range of kgs
// (each gets the keys of its key groups), compacts and closes them.
func snapBuild(dirs []string, kgs []backend.KeyGroupRange, n int) (err error) {
	type inst struct {
		be *backend.Backend[[]byte]
		v  *backend.Value[[]byte, backend.VoidNamespace, []byte]
	}
	insts := make([]inst, len(dirs))
	defer func() {
		for _, in := range insts {
			if in.be != nil {
				if cerr := in.be.Close(); err == nil {
					err = cerr
				}
			}
		}
	}()
	for i, dir := range dirs {
		be, err := backend.Open(backend.Bytes, snapOptions(dir, kgs[i], false))
		if err != nil {
			return err
		}
		insts[i].be = be
		if insts[i].v, err = backend.GetValue(be, snapDesc); err != nil {
			return err
		}
	}
	var k, val []byte
	for i := range n {
		k = snapKey(k[:0], i)
		kg := snapKeyGroup(k)
		for j, r := range kgs {
			if !r.Contains(kg) {
				continue
			}
			if err := insts[j].be.SetCurrentKey(k); err != nil {
				return err
			}
			if err := insts[j].v.Update(snapValue(val[:0], i, 0)); err != nil {
				return err
			}
		}
	}
	for _, in := range insts {
		if err := in.be.Compact(context.Background()); err != nil {
			return err
		}
	}
	return nil
}

// snapCountIn returns how many of keys 0..n-1 fall in key groups r.
func snapCountIn(n int, r backend.KeyGroupRange) int {
	if r == snapAll {
		return n
	}
	c := 0
	var k []byte
	for i := range n {
		k = snapKey(k[:0], i)
		if r.Contains(snapKeyGroup(k)) {
			c++
		}
	}
	return c
}

// snapOnce is a value built once per process, on first use, outside the
// timer. Builders return errors rather than fail the benchmark that
// happens to build, so that a failure is reported to every user.
type snapOnce[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (o *snapOnce[T]) get(tb testing.TB, name string, build func() (T, error)) T {
	tb.Helper()
	o.once.Do(func() {
		t0 := time.Now()
		o.v, o.err = build()
		if o.err != nil {
			o.err = fmt.Errorf("bench: build %s: %w", name, o.err)
		} else if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "bench: built %s in %v\n", name, time.Since(t0).Round(time.Millisecond))
		}
	})
	if o.err != nil {
		tb.Fatal(o.err)
	}
	return o.v
}

// snapDBOnce is the database of -snapkeys entries, compacted and closed.
var snapDBOnce snapOnce[string]

func snapDB(tb testing.TB) string {
	n := snapKeys(tb)
	return snapDBOnce.get(tb, "snapshot database", func() (string, error) {
		dir := filepath.Join(rootDir, "snap-db")
		return dir, snapBuild([]string{dir}, []backend.KeyGroupRange{snapAll}, n)
	})
}

func snapKeys(tb testing.TB) int {
	tb.Helper()
	if *snapKeysFlag < 1 {
		tb.Fatalf("bench: -snapkeys=%d, need at least 1", *snapKeysFlag)
	}
	return *snapKeysFlag
}

func rescaleKeys(tb testing.TB) int {
	tb.Helper()
	if *rescaleKeysFlag < 1 {
		tb.Fatalf("bench: -rescalekeys=%d, need at least 1", *rescaleKeysFlag)
	}
	return *rescaleKeysFlag
}

// snapClone returns a fresh clone of a closed database directory (hard
// links for its tables), removed when the benchmark ends.
func snapClone(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	if err := cloneDir(src, dst); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// snapRoot is a checkpoint root that benchmarks only read: the storage
// and the checkpoint to restore from.
type snapRoot struct {
	st *snapshot.Local
	cp *snapshot.Checkpoint
}

// snapCheckpointOf takes checkpoint 1 of a clone of database src (of key
// groups kgs) into a new root, and removes the clone.
func snapCheckpointOf(src, name string, kgs backend.KeyGroupRange, incremental bool) (snapRoot, error) {
	work := filepath.Join(rootDir, name+"-work")
	defer os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return snapRoot{}, err
	}
	if err := cloneDir(src, work); err != nil {
		return snapRoot{}, err
	}
	st, err := snapshot.NewLocal(filepath.Join(rootDir, name))
	if err != nil {
		return snapRoot{}, err
	}
	be, err := backend.Open(backend.Bytes, snapOptions(work, kgs, incremental))
	if err != nil {
		return snapRoot{}, err
	}
	cp, err := be.Checkpoint(context.Background(), st, 1)
	if cerr := be.Close(); err == nil {
		err = cerr
	}
	return snapRoot{st: st, cp: cp}, err
}

// snapFreshDir returns a path that does not exist yet, for a restore.
func snapFreshDir(tb testing.TB) string { return filepath.Join(tb.TempDir(), "db") }

// snapStorage returns empty checkpoint storage removed when the benchmark
// ends.
func snapStorage(tb testing.TB) *snapshot.Local {
	tb.Helper()
	st, err := snapshot.NewLocal(filepath.Join(tb.TempDir(), "chk"))
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// snapWarm reads every file of dir once, so that the first op does not
// pay for reading the tables from disk; both sides of a comparison warm
// the same way.
func snapWarm(tb testing.TB, dir string) {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// snapWarmRoot reads every file of a checkpoint root once.
func snapWarmRoot(tb testing.TB, r snapRoot) {
	tb.Helper()
	snapWarmTree(tb, r.st.Root())
}

// snapWarmTree reads every file under dir once (see snapWarm).
func snapWarmTree(tb testing.TB, dir string) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// snapCheckCount fails unless the backend's state holds want keys. It
// reads the whole state: call it outside the timer.
func snapCheckCount(tb testing.TB, be *backend.Backend[[]byte], want int) {
	tb.Helper()
	v, err := backend.GetValue(be, snapDesc)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, err := range v.KeysInNamespace(voidNS()) {
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
	if n != want {
		tb.Fatalf("restored state holds %d keys, want %d", n, want)
	}
}

// snapCountSSTs returns the number of table files in a database directory.
func snapCountSSTs(tb testing.TB, dir string) int {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sst") {
			n++
		}
	}
	return n
}

// snapFlushes counts the memtable bytes a backend's database flushes and
// the compactions running, by teeing an event listener in through
// Options.Pebble.
type snapFlushes struct {
	bytes      atomic.Int64
	compacting atomic.Int64 // compactions begun and not yet ended
}

func (f *snapFlushes) install(opts *backend.Options) {
	opts.Pebble = func(po *pebble.Options) {
		mine := pebble.EventListener{
			FlushEnd: func(info pebble.FlushInfo) {
				if !info.Ingest {
					f.bytes.Add(int64(info.InputBytes))
				}
			},
			CompactionBegin: func(pebble.CompactionInfo) { f.compacting.Add(1) },
			CompactionEnd:   func(pebble.CompactionInfo) { f.compacting.Add(-1) },
		}
		var theirs pebble.EventListener
		if po.EventListener != nil {
			theirs = *po.EventListener
		}
		tee := pebble.TeeEventListener(theirs, mine)
		po.EventListener = &tee
	}
}

// settle waits until no compaction has run for 20 ms, or fails after a
// minute.
func (f *snapFlushes) settle(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for quiet := 0; quiet < 4; {
		if time.Now().After(deadline) {
			tb.Fatalf("bench: %d compactions still running after a minute", f.compacting.Load())
		}
		time.Sleep(5 * time.Millisecond)
		if f.compacting.Load() == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// snapClock times the sections of a b.Loop body between resume and pause
// (b.Loop starts with the timer running), and the process CPU time in
// them for cpu-ns/op. Before resuming it runs a garbage collection if gc
// is set, so that the garbage of untimed preparation is not collected in
// the timed section.
type snapClock struct {
	b    *testing.B
	gc   bool
	ok   bool
	cpu  time.Duration
	mark time.Duration
}

func snapStart(b *testing.B, gc bool) *snapClock {
	b.ReportAllocs()
	runtime.GC()
	c := &snapClock{b: b, gc: gc}
	c.mark, c.ok = processCPU()
	return c
}

func (c *snapClock) pause() {
	c.b.StopTimer()
	now, _ := processCPU()
	c.cpu += now - c.mark
}

func (c *snapClock) resume() {
	if c.gc {
		runtime.GC()
	}
	c.mark, _ = processCPU()
	c.b.StartTimer()
}

// stop is called after the loop; it reports cpu-ns/op.
func (c *snapClock) stop() {
	now, _ := processCPU()
	c.cpu += now - c.mark
	if c.ok && c.b.N > 0 {
		c.b.ReportMetric(float64(c.cpu.Nanoseconds())/float64(c.b.N), "cpu-ns/op")
	}
}

// snapRestore restores handles from st into a fresh directory with opts
// (Dir is set here) and returns the backend and its directory. Only the
// restore itself is timed; the caller pauses after it returns.
func snapRestore(tb testing.TB, clk *snapClock, st snapshot.Storage, cp *snapshot.Checkpoint, opts backend.Options) (*backend.Backend[[]byte], string) {
	tb.Helper()
	clk.pause()
	opts.Dir = snapFreshDir(tb)
	clk.resume()
	be, err := backend.Restore(context.Background(), backend.Bytes, opts, st, cp.Handles)
	if err != nil {
		tb.Fatal(err)
	}
	return be, opts.Dir
}

// snapDiscard closes a restored backend and removes its directory.
func snapDiscard(tb testing.TB, be *backend.Backend[[]byte], dir string) {
	tb.Helper()
	if err := be.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
}

// TestSnapFixtureLayout checks the stored layout the snapshot benchmarks
// assume (100-byte keys holding the counter, 128-byte values), and that
// building several instances splits the keys by key group. It builds
// small databases of its own and does not depend on the flags.
func TestSnapFixtureLayout(t *testing.T) {
	const n = 1000
	all := filepath.Join(t.TempDir(), "all")
	lo, hi := filepath.Join(t.TempDir(), "lo"), filepath.Join(t.TempDir(), "hi")
	if err := snapBuild([]string{all}, []backend.KeyGroupRange{snapAll}, n); err != nil {
		t.Fatal(err)
	}
	if err := snapBuild([]string{lo, hi}, []backend.KeyGroupRange{snapLower, snapUpper}, n); err != nil {
		t.Fatal(err)
	}
	got := scanState(t, all)
	if len(got) != n {
		t.Fatalf("%d entries, want %d", len(got), n)
	}
	seen := make(map[uint32]bool)
	var k, v []byte
	for _, e := range got {
		if len(e[0]) != snapStoredKeyLen || len(e[1]) != snapValueLen {
			t.Fatalf("entry %x: %d-byte key, %d-byte value", e[0], len(e[0]), len(e[1]))
		}
		i := int(binary.BigEndian.Uint32(e[0][snapStoredKeyLen-snapKeyLen:]))
		k, v = snapKey(k[:0], i), snapValue(v[:0], i, 0)
		if seen[uint32(i)] || !bytes.Equal(e[0][snapStoredKeyLen-snapKeyLen:], k) || !bytes.Equal(e[1], v) {
			t.Fatalf("entry of key %d is not key %d's (or repeated)", i, i)
		}
		seen[uint32(i)] = true
		if kg := int(e[0][keys.StateIDLen]); kg != snapKeyGroup(k) {
			t.Fatalf("key %d stored in key group %d, hashes to %d", i, kg, snapKeyGroup(k))
		}
	}
	nl, nh := len(scanState(t, lo)), len(scanState(t, hi))
	if nl+nh != n || nl != snapCountIn(n, snapLower) {
		t.Fatalf("split into %d + %d entries, want %d + %d", nl, nh, snapCountIn(n, snapLower), n-snapCountIn(n, snapLower))
	}
}
