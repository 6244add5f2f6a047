package compaction

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/internal/store"
	"github.com/pebblestate/pebblestate/internal/ttltest"
	"github.com/pebblestate/pebblestate/ttl"
)

func sp(lo, hi string) span { return span{lo: []byte(lo), hi: []byte(hi)} }

func spansString(ss []span) string {
	var b bytes.Buffer
	for _, s := range ss {
		fmt.Fprintf(&b, "[%s,%s]", s.lo, s.hi)
	}
	return b.String()
}

func normalize(ss []span) string {
	ss = slices.Clone(ss)
	slices.SortFunc(ss, func(a, b span) int { return bytes.Compare(a.lo, b.lo) })
	return spansString(ss)
}

func TestFilterAddSpan(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  []span
		want string // sorted by lo
	}{
		{"one", []span{sp("b", "d")}, "[b,d]"},
		{"disjoint", []span{sp("a", "b"), sp("d", "e")}, "[a,b][d,e]"},
		{"disjoint reversed", []span{sp("d", "e"), sp("a", "b")}, "[a,b][d,e]"},
		{"overlap right", []span{sp("a", "c"), sp("b", "d")}, "[a,d]"},
		{"overlap left", []span{sp("b", "d"), sp("a", "c")}, "[a,d]"},
		// Spans are inclusive: sharing an endpoint is overlapping.
		{"touching", []span{sp("a", "c"), sp("c", "e")}, "[a,e]"},
		{"adjacent keys stay apart", []span{sp("a", "c"), sp("c\x00", "e")}, "[a,c][c\x00,e]"},
		{"contained", []span{sp("a", "z"), sp("m", "n")}, "[a,z]"},
		{"containing", []span{sp("m", "n"), sp("a", "z")}, "[a,z]"},
		{"duplicate", []span{sp("a", "b"), sp("a", "b")}, "[a,b]"},
		{"point spans", []span{sp("k", "k"), sp("k", "k"), sp("j", "j")}, "[j,j][k,k]"},
		{"bridges three", []span{sp("a", "b"), sp("d", "e"), sp("g", "h"), sp("x", "y"), sp("b", "g")}, "[a,h][x,y]"},
		{"chain", []span{sp("a", "b"), sp("c", "d"), sp("b", "c")}, "[a,d]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ss []span
			for _, s := range tc.add {
				ss = addSpan(ss, s)
			}
			if got := normalize(ss); got != tc.want {
				t.Fatalf("spans = %s; want %s", got, tc.want)
			}
		})
	}
}

// TestFilterAddSpanCollapse checks that past maxPending disjoint spans the
// queue collapses into one span covering every one of them.
func TestFilterAddSpanCollapse(t *testing.T) {
	var ss []span
	for i := range maxPending {
		ss = addSpan(ss, sp(fmt.Sprintf("k%03d", 2*i+10), fmt.Sprintf("k%03d", 2*i+10)))
	}
	if len(ss) != maxPending {
		t.Fatalf("%d disjoint spans queued as %d", maxPending, len(ss))
	}
	ss = addSpan(ss, sp("k000", "k001"))
	if len(ss) != 1 {
		t.Fatalf("past maxPending: %d spans; want 1", len(ss))
	}
	if got, want := spansString(ss), fmt.Sprintf("[k000,k%03d]", 2*(maxPending-1)+10); got != want {
		t.Fatalf("collapsed span = %s; want %s", got, want)
	}
	// The queue keeps working afterwards.
	ss = addSpan(ss, sp("z", "zz"))
	if got := normalize(ss); got != fmt.Sprintf("[k000,k%03d][z,zz]", 2*(maxPending-1)+10) {
		t.Fatalf("after collapse: %s", got)
	}
}

// TestFilterAddSpanRandom checks addSpan against a brute-force model: the
// union of the queued spans equals the union of the spans added, and the
// queued spans never overlap.
func TestFilterAddSpanRandom(t *testing.T) {
	var seed uint64 = 0x9E3779B97F4A7C15
	next := func(n int) int {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return int(seed % uint64(n))
	}
	key := func(i int) []byte { return []byte{byte(i)} }
	for round := range 200 {
		var ss []span
		covered := make([]bool, 64)
		n := 1 + next(40)
		for range n {
			lo := next(60)
			hi := lo + next(5)
			ss = addSpan(ss, span{lo: key(lo), hi: key(hi)})
			for i := lo; i <= hi; i++ {
				covered[i] = true
			}
		}
		got := make([]bool, 64)
		for _, s := range ss {
			for i := int(s.lo[0]); i <= int(s.hi[0]); i++ {
				got[i] = true
			}
		}
		if len(ss) <= 1 {
			// A collapsed queue may cover more than was added, never less.
			for i := range covered {
				if covered[i] && !got[i] {
					t.Fatalf("round %d: key %d added but not covered by %s", round, i, spansString(ss))
				}
			}
			continue
		}
		if !slices.Equal(got, covered) {
			t.Fatalf("round %d: coverage %v; want %v (%s)", round, got, covered, normalize(ss))
		}
		for i := range ss {
			for j := range ss {
				if i != j && bytes.Compare(ss[i].hi, ss[j].lo) >= 0 && bytes.Compare(ss[j].hi, ss[i].lo) >= 0 {
					t.Fatalf("round %d: queued spans overlap: %s", round, normalize(ss))
				}
			}
		}
	}
}

// fixture is a filter on a real Pebble database holding raw TTL state.
type fixture struct {
	t       *testing.T
	st      *store.Store
	f       *Filter
	clock   *ttl.ManualClock
	mu      *lockHook
	scanned atomic.Uint64
	removed atomic.Uint64
	errs    chan error
}

// lockHook counts cleanup's holds of the store's write lock and runs a
// hook just before each.
type lockHook struct {
	holds  atomic.Int64
	before atomic.Pointer[func()]
}

func (l *lockHook) call() {
	if h := l.before.Load(); h != nil {
		(*h)()
	}
	l.holds.Add(1)
}

// openStore opens a store in a temporary directory with listener
// installed and hook (if not nil) run before cleanup's lock holds.
func openStore(t *testing.T, clock ttl.Clock, listener pebble.EventListener, hook func()) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{
		Dir: t.TempDir(), BlockCacheSize: 8 << 20, MemTableSize: 4 << 20,
		Logger:        slog.New(slog.NewTextHandler(t.Output(), nil)),
		EventListener: listener,
		Record:        meta.Backend{MaxParallelism: 128, KeyGroupEnd: 128, KeyCodec: "test"},
		Clock:         clock, BeforeCleanupLock: hook,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newFixture(t *testing.T, cfg Config) *fixture {
	return newFixtureTargets(t, cfg, ttltest.Targets())
}

// newFixtureTargets is newFixture with other targets.
func newFixtureTargets(t *testing.T, cfg Config, targets []ttl.Target) *fixture {
	x := &fixture{t: t, clock: ttl.NewManualClock(time.UnixMilli(1_000_000)), mu: &lockHook{}, errs: make(chan error, 100)}
	cfg.Clock = x.clock
	cfg.Scanned, cfg.Removed = &x.scanned, &x.removed
	cfg.OnError = func(err error) {
		select {
		case x.errs <- err:
		default:
		}
	}
	x.f = New(cfg)
	x.f.SetTargets(targets)
	x.st = openStore(t, x.clock, x.f.EventListener(), x.mu.call)
	x.f.Start(storeOf{x.st})
	t.Cleanup(func() {
		x.f.Close()
		_ = x.st.Close()
	})
	return x
}

func (x *fixture) now() int64 { return ttl.Millis(x.clock.Now()) }

func (x *fixture) set(k, v []byte) {
	x.t.Helper()
	if err := x.st.Set(k, v); err != nil {
		x.t.Fatal(err)
	}
}

// count returns the entries stored under state id.
func (x *fixture) count(id uint16) int {
	x.t.Helper()
	lo, hi := keys.StateBounds(id)
	it, err := x.st.NewIter(lo, hi)
	if err != nil {
		x.t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	return n
}

func (x *fixture) get(k []byte) ([]byte, bool) {
	x.t.Helper()
	v, closer, found, err := x.st.Get(k)
	if err != nil {
		x.t.Fatal(err)
	}
	if !found {
		return nil, false
	}
	defer closer.Close()
	return bytes.Clone(v), true
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFilterCleanup runs a full pass on a raw database: expired entries of
// targets are deleted, lists are trimmed, everything else stays.
func TestFilterCleanup(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	for i := range 300 {
		x.set(ttltest.StateKey(ttltest.IDValue, i%16, fmt.Sprintf("v%03d", i)), ttltest.StampedValue(t0, "old"))
		x.set(ttltest.StateKey(ttltest.IDMap, i%16, fmt.Sprintf("m%03d", i)), ttltest.StampedValue(t0, "old"))
		x.set(ttltest.StateKey(ttltest.IDPlain, i%16, fmt.Sprintf("p%03d", i)), ttltest.StampedValue(t0, "plain"))
	}
	for i := range 50 {
		k := ttltest.StateKey(ttltest.IDList, i%16, fmt.Sprintf("l%02d", i))
		if err := x.st.Merge(k, ttltest.StampedList(int(t0), "old")); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is expired yet: a pass removes nothing.
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := x.removed.Load(); got != 0 {
		t.Fatalf("removed %d entries before anything expired", got)
	}
	if got := x.scanned.Load(); got != 300+300+50 {
		t.Fatalf("scanned %d entries; want %d (every entry of the targets, none of the plain state)", got, 650)
	}
	x.clock.Advance(50 * time.Millisecond)
	t1 := x.now()
	for i := range 100 { // refreshed: survive
		x.set(ttltest.StateKey(ttltest.IDValue, i%16, fmt.Sprintf("v%03d", i)), ttltest.StampedValue(t1, "new"))
	}
	for i := range 25 { // get a fresh element: trimmed, not dropped
		k := ttltest.StateKey(ttltest.IDList, i%16, fmt.Sprintf("l%02d", i))
		if err := x.st.Merge(k, ttltest.StampedList(int(t1), "new")); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	x.clock.Advance(50 * time.Millisecond) // t0's entries expire exactly now
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 200 values, 300 map entries, 25 lists dropped, 25 trimmed (by the
	// pass, or by the worker scanning the flushed span beside it).
	if got := x.removed.Load(); got != 200+300+50 {
		t.Fatalf("removed %d; want 550", got)
	}
	if n := x.count(ttltest.IDValue); n != 100 {
		t.Fatalf("%d value entries left; want the 100 refreshed", n)
	}
	if n := x.count(ttltest.IDMap); n != 0 {
		t.Fatalf("%d map entries left; want 0", n)
	}
	if n := x.count(ttltest.IDPlain); n != 300 {
		t.Fatalf("%d entries of the plain state left; want all 300", n)
	}
	if n := x.count(ttltest.IDList); n != 25 {
		t.Fatalf("%d lists left; want 25", n)
	}
	for i := range 25 {
		raw, ok := x.get(ttltest.StateKey(ttltest.IDList, i%16, fmt.Sprintf("l%02d", i)))
		if !ok {
			t.Fatalf("list %d gone", i)
		}
		if got := ttltest.ListUsers(t, raw); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("list %d = %q; want [new]", i, got)
		}
	}
	for i := range 100 {
		raw, ok := x.get(ttltest.StateKey(ttltest.IDValue, i%16, fmt.Sprintf("v%03d", i)))
		if !ok || !bytes.Equal(raw, ttltest.StampedValue(t1, "new")) {
			t.Fatalf("refreshed value %d = %x, %v", i, raw, ok)
		}
	}
	// The lock was taken to confirm deletions, in small batches.
	if h := x.mu.holds.Load(); h < int64((550+confirmBatch-1)/confirmBatch) {
		t.Fatalf("lock held %d times for 550 removals; want at least %d", h, (550+confirmBatch-1)/confirmBatch)
	}
	// A second pass finds nothing more.
	before := x.removed.Load()
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := x.removed.Load() - before; got != 0 {
		t.Fatalf("second pass removed %d", got)
	}
}

// TestFilterConfirmUnderLock checks the confirmation step: an entry that
// the scan saw expired but that the task rewrote before the filter took
// the write lock is kept, and a list that got a fresh element is trimmed
// rather than dropped.
func TestFilterConfirmUnderLock(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	var vkeys, lkeys [][]byte
	for i := range 10 {
		vkeys = append(vkeys, ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("v%d", i)))
		x.set(vkeys[i], ttltest.StampedValue(t0, "old"))
		lkeys = append(lkeys, ttltest.StateKey(ttltest.IDList, 0, fmt.Sprintf("l%d", i)))
		if err := x.st.Merge(lkeys[i], ttltest.StampedList(int(t0), "old")); err != nil {
			t.Fatal(err)
		}
	}
	x.clock.Advance(time.Hour)
	now := x.now()
	// The "task" writes just before the filter's first hold of the lock,
	// that is after the scan condemned everything.
	var once sync.Once
	hook := func() {
		once.Do(func() {
			for i := range 5 {
				x.set(vkeys[i], ttltest.StampedValue(now, "rewritten"))
				if err := x.st.Merge(lkeys[i], ttltest.StampedList(int(now), "added")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	x.mu.before.Store(&hook)
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	x.mu.before.Store(nil)
	for i, k := range vkeys {
		raw, ok := x.get(k)
		if i < 5 {
			if !ok || !bytes.Equal(raw, ttltest.StampedValue(now, "rewritten")) {
				t.Fatalf("value %d rewritten after the scan was lost: %x, %v", i, raw, ok)
			}
		} else if ok {
			t.Fatalf("expired value %d survived", i)
		}
	}
	for i, k := range lkeys {
		raw, ok := x.get(k)
		if i < 5 {
			if got := ttltest.ListUsers(t, raw); !ok || !slices.Equal(got, []string{"added"}) {
				t.Fatalf("list %d = %q, %v; want [added]", i, got, ok)
			}
		} else if ok {
			t.Fatalf("expired list %d survived", i)
		}
	}
	// 5 values dropped, 5 lists dropped, 5 lists trimmed.
	if got := x.removed.Load(); got != 15 {
		t.Fatalf("removed %d; want 15", got)
	}
}

// TestFilterCleanupBeforeStart checks that Cleanup on a filter that was
// never started fails rather than panics, and that Close is a no-op.
func TestFilterCleanupBeforeStart(t *testing.T) {
	f := New(Config{Clock: ttl.NewManualClock(time.UnixMilli(0))})
	if err := f.Cleanup(context.Background()); err == nil {
		t.Fatal("Cleanup before Start succeeded")
	}
	f.Close()
	f.Close()
}

// TestFilterMalformedReported checks that a malformed value of a target is
// kept and reported through OnError, and does not stop the pass.
func TestFilterMalformedReported(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	bad := ttltest.StateKey(ttltest.IDValue, 0, "bad")
	x.set(bad, []byte{1, 2})
	x.set(ttltest.StateKey(ttltest.IDValue, 1, "old"), ttltest.StampedValue(1, "old"))
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := x.get(bad); !ok {
		t.Fatal("malformed entry deleted")
	}
	if got := x.removed.Load(); got != 1 {
		t.Fatalf("removed %d; want 1 (the expired entry after the malformed one)", got)
	}
	select {
	case err := <-x.errs:
		if !errors.Is(err, ttl.ErrMalformed) || !bytes.Contains([]byte(err.Error()), []byte(fmt.Sprintf("%x", bad))) {
			t.Fatalf("OnError got %v; want ttl.ErrMalformed naming key %x", err, bad)
		}
	default:
		t.Fatal("malformed entry not reported")
	}
}

// TestFilterCleanupCancelled checks that a cancelled context stops a pass.
func TestFilterCleanupCancelled(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	for i := range 2000 {
		x.set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("v%04d", i)), ttltest.StampedValue(1, "old"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := x.f.Cleanup(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Cleanup with a cancelled context = %v; want context.Canceled", err)
	}
	if n := x.count(ttltest.IDValue); n < 1000 {
		t.Fatalf("cancelled pass removed %d of 2000", 2000-n)
	}
}

// TestFilterBackgroundSpans checks the flush path: with the periodic sweep
// off, the spans a flush reports are scanned by the worker.
func TestFilterBackgroundSpans(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: -1})
	t0 := x.now()
	for i := range 500 {
		x.set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("v%04d", i)), ttltest.StampedValue(t0, "old"))
	}
	x.clock.Advance(ttltest.TTLMillis * time.Millisecond)
	// New entries bracketing the old ones, so the flushed table's span
	// covers them all.
	x.set(ttltest.StateKey(ttltest.IDValue, 0, "v"), ttltest.StampedValue(x.now(), "new"))
	x.set(ttltest.StateKey(ttltest.IDValue, 0, "w"), ttltest.StampedValue(x.now(), "new"))
	if got := x.removed.Load(); got != 0 {
		t.Fatalf("removed %d before any flush", got)
	}
	if err := x.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker to remove the 500 expired entries", 10*time.Second, func() bool { return x.removed.Load() >= 500 })
	if got := x.removed.Load(); got != 500 {
		t.Fatalf("removed %d; want 500", got)
	}
	if n := x.count(ttltest.IDValue); n != 2 {
		t.Fatalf("%d entries left; want the 2 new ones", n)
	}
}

// TestFilterBackgroundSweep checks the periodic sweep alone: no flush ever
// happens, and the expired entries in the memtable still go.
func TestFilterBackgroundSweep(t *testing.T) {
	x := newFixture(t, Config{SweepInterval: 20 * time.Millisecond})
	t0 := x.now()
	for i := range 500 {
		x.set(ttltest.StateKey(ttltest.IDMap, 3, fmt.Sprintf("m%04d", i)), ttltest.StampedValue(t0, "old"))
	}
	// Let a sweep see them alive first.
	waitFor(t, "a sweep over the live entries", 10*time.Second, func() bool { return x.scanned.Load() >= 500 })
	if got := x.removed.Load(); got != 0 {
		t.Fatalf("sweep removed %d unexpired entries", got)
	}
	x.clock.Advance(ttltest.TTLMillis * time.Millisecond)
	waitFor(t, "a sweep to remove the expired entries", 10*time.Second, func() bool { return x.removed.Load() >= 500 })
	if n := x.count(ttltest.IDMap); n != 0 {
		t.Fatalf("%d entries left", n)
	}
	if got := x.removed.Load(); got != 500 {
		t.Fatalf("removed %d; want 500", got)
	}
}

// TestFilterNoTargetsNoWork checks that a filter without targets ignores
// flushes and sweeps.
func TestFilterNoTargetsNoWork(t *testing.T) {
	x := newFixtureTargets(t, Config{SweepInterval: time.Millisecond}, nil)
	for i := range 100 {
		x.set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("v%03d", i)), ttltest.StampedValue(1, "old"))
	}
	if err := x.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if x.scanned.Load() != 0 || x.removed.Load() != 0 || x.count(ttltest.IDValue) != 100 {
		t.Fatalf("filter without targets scanned %d, removed %d", x.scanned.Load(), x.removed.Load())
	}
	// Targets can be set later.
	x.f.SetTargets(ttltest.Targets())
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := x.count(ttltest.IDValue); n != 0 {
		t.Fatalf("%d entries left after targets were set", n)
	}
}

// countingClock counts its reads.
type countingClock struct {
	ttl.ManualClock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time {
	c.reads.Add(1)
	return c.ManualClock.Now()
}

// TestFilterQueryTimeAfterNumEntries checks that a scan reads the clock
// again every QueryTimeAfterNumEntries entries, as Flink's filter does, so
// time moving during a long pass is seen.
func TestFilterQueryTimeAfterNumEntries(t *testing.T) {
	for _, every := range []int{10, 100} {
		t.Run(fmt.Sprint(every), func(t *testing.T) {
			clock := &countingClock{}
			clock.Set(time.UnixMilli(1_000))
			f := New(Config{Clock: clock, SweepInterval: -1, QueryTimeAfterNumEntries: every})
			f.SetTargets(ttltest.Targets())
			st := openStore(t, clock, pebble.EventListener{}, nil)
			defer st.Close()
			f.Start(storeOf{st})
			defer f.Close()
			for i := range 1000 {
				if err := st.Set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("v%04d", i)), ttltest.StampedValue(2_000, "x")); err != nil {
					t.Fatal(err)
				}
			}
			clock.reads.Store(0)
			if err := f.Cleanup(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, want := clock.reads.Load(), int64(1000/every); got < want {
				t.Fatalf("1000 entries read the clock %d times; want at least %d", got, want)
			}
		})
	}
}

// TestFilterCloseStopsWorker checks that Close stops the worker even in
// the middle of a paced scan, promptly, and leaves no goroutine behind.
func TestFilterCloseStopsWorker(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		clock := ttl.NewManualClock(time.UnixMilli(1_000))
		var scanned atomic.Uint64
		// 100 entries a second: the sweep is still pacing itself when
		// Close comes.
		f := New(Config{Clock: clock, SweepInterval: time.Millisecond, ScanRate: 100, Scanned: &scanned})
		f.SetTargets(ttltest.Targets())
		st := openStore(t, clock, f.EventListener(), nil)
		for i := range 3000 {
			if err := st.Set(ttltest.StateKey(ttltest.IDValue, 0, fmt.Sprintf("v%04d", i)), ttltest.StampedValue(5_000, "x")); err != nil {
				t.Fatal(err)
			}
		}
		f.Start(storeOf{st})
		waitFor(t, "the sweep to start", 10*time.Second, func() bool { return scanned.Load() >= 256 })
		start := time.Now()
		f.Close()
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Close took %v during a paced scan", d)
		}
		if n := scanned.Load(); n >= 3000 {
			t.Fatalf("the paced sweep finished (%d entries) before Close; the test did not exercise a scan in progress", n)
		}
		f.Close() // twice is fine
		// Spans reported after Close are queued and ignored.
		if err := st.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	waitFor(t, "goroutines to exit", 10*time.Second, func() bool { return runtime.NumGoroutine() <= before+1 })
}

// TestFilterCompactsWhatItEmptied checks that a pass that removed much
// compacts the span, so the space is returned.
func TestFilterCompactsWhatItEmptied(t *testing.T) {
	const n = 2000 // small: point reads are slow in Pebble's race builds
	x := newFixture(t, Config{SweepInterval: -1})
	var seed uint64 = 1
	for i := range n {
		val := make([]byte, 200) // incompressible, so sizes follow entries
		for j := range val {
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			val[j] = byte(seed)
		}
		x.set(ttltest.StateKey(ttltest.IDValue, i%128, fmt.Sprintf("v%05d", i)), append(ttl.AppendStamp(nil, x.now()), val...))
	}
	if err := x.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	full := x.st.DiskSpaceUsage()
	x.clock.Advance(time.Hour)
	if err := x.f.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := x.removed.Load(); got != n {
		t.Fatalf("removed %d; want %d", got, n)
	}
	// Cleanup compacted synchronously; obsolete files go soon after.
	waitFor(t, "disk space to be returned", 10*time.Second, func() bool {
		return x.st.DiskSpaceUsage() < full/4
	})
}

// TestPacerPause checks the pace's two caps: work against the rate, and
// time spent working against the share; and that short pauses wait.
func TestPacerPause(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name           string
		rate, share    float64
		work           int
		elapsed, slept time.Duration
		want           time.Duration
	}{
		{"rate: 10k entries at 1M/s is due at 10 ms", 1e6, 1, 10_000, 4 * ms, 0, 6 * ms},
		{"rate: on time", 1e6, 1, 10_000, 10 * ms, 0, 0},
		{"rate: ahead by less than minPause waits", 1e6, 1, 10_000, 9 * ms, 0, 0},
		{"share: 1 ms busy at 0.1 is due at 10 ms", 1e9, 0.1, 1, 1 * ms, 0, 9 * ms},
		{"share: pauses do not count as work", 1e9, 0.1, 1, 12 * ms, 9 * ms, 18 * ms},
		{"share: within the share", 1e9, 0.1, 1, 30 * ms, 27 * ms, 0},
		{"both: the later due wins", 1e6, 0.5, 10_000, 8 * ms, 0, 8 * ms},
	}
	for _, c := range cases {
		p := &pacer{rate: c.rate, share: c.share, slept: c.slept}
		if got := p.pause(c.work, c.elapsed); got != c.want {
			t.Errorf("%s: pause = %v; want %v", c.name, got, c.want)
		}
	}
}

// storeOf is st as the filter sees it, as the backend passes it.
type storeOf struct{ *store.Store }

func (s storeOf) NewIter(lo, hi []byte) (Iterator, error) { return s.Store.NewIter(lo, hi) }
