package bench

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/ttl"
)

// TTL benchmarks: flink-benchmarks' TtlValueStateBenchmark,
// TtlListStateBenchmark and TtlMapStateBenchmark (TtlStateBenchmarkBase).
//
// Every TTL state has a TTL of 1,000,000 ms and reads processing time from
// a ttl.ManualClock (backend.Options.Clock), flink's controllable time
// provider. Setup sets the clock to a random time in [0, 1e6] ms before it
// writes each key, so the stamps of the setup keys are spread over
// [0, 1e6]; each benchmark then opens its clone with the clock at 1e6 ms.
// At that time nothing is expired but the keys stamped at exactly 0 (about
// one in a million), and under NeverExpired the clock never moves, so that
// stays so.
//
// Under Expire3PercentPerIteration the clock advances by 30,000 ms (3% of
// the TTL) per iteration, which in flink is one JMH iteration of about a
// second. A Go benchmark has no such iterations: here an iteration is one
// pass over the key set, setupCount() ops (the rolling index wraps around
// once per pass), and the clock advances by 30,000 ms at the start of every
// pass, the first one included, as flink's @Setup(Level.Iteration) does
// before every iteration. Each pass thus expires about 3% of the keys that
// were neither written (nor, under OnReadAndWrite, read) since their stamp.
// With a small -keys a run makes many passes and eventually everything the
// benchmark does not refresh expires; reads then mostly miss, which the
// miss/op metric shows.
//
// The TTL configs differ only in UpdateType and Visibility, which are not
// stored, so each state kind has one TTL fixture that every combination
// opens. Background cleanup is on at its defaults: whenever a flush or a
// compaction ends during a benchmark, the filter scans the key span it
// wrote (ttl-scanned/op counts the entries; in a one-second run at 500,000
// keys usually no flush ends, so it is 0), and the hourly sweep never comes.
// The fixtures are settled (ttlSettle) so that no compaction is owed when a
// clone opens.

const (
	ttlMillis        = 1_000_000 // TTL of every TTL state
	ttlInitialMillis = 1_000_000 // the clock after setup; stamps are in [0, ttlInitialMillis]
	ttlAdvanceMillis = 30_000    // Expire3PercentPerIteration: clock advance per iteration
)

// Random streams of the setup stamps, apart from the values' streams so
// that a TTL fixture stores the same user values as its non-TTL twin.
const (
	ttlValueStampStream = 11
	ttlListStampStream  = 12
	ttlMapStampStream   = 13
	ttlSweepStream      = 14
)

// ttlCase is one combination of flink's TTL benchmark parameters.
type ttlCase struct {
	expire     bool // Expire3PercentPerIteration rather than NeverExpired
	update     ttl.UpdateType
	visibility ttl.Visibility
}

// config is the state's TTL config for the case: background cleanup on, at
// its defaults.
func (c ttlCase) config() ttl.Config {
	return ttl.Config{TTL: ttlMillis * time.Millisecond, Update: c.update, Visibility: c.visibility}
}

// ttlMatrix runs fn as a sub-benchmark for each of the eight parameter
// combinations, named expiry/update/visibility as flink's parameters are,
// e.g. "NeverExpired/OnCreateAndWrite/NeverReturnExpired".
func ttlMatrix(b *testing.B, fn func(b *testing.B, c ttlCase)) {
	expiries := []struct {
		name string
		on   bool
	}{{"NeverExpired", false}, {"Expire3PercentPerIteration", true}}
	updates := []struct {
		name string
		u    ttl.UpdateType
	}{{"OnCreateAndWrite", ttl.OnCreateAndWrite}, {"OnReadAndWrite", ttl.OnReadAndWrite}}
	visibilities := []struct {
		name string
		v    ttl.Visibility
	}{{"NeverReturnExpired", ttl.NeverReturnExpired}, {"ReturnExpiredIfNotCleanedUp", ttl.ReturnExpiredIfNotCleanedUp}}
	for _, e := range expiries {
		b.Run(e.name, func(b *testing.B) {
			for _, u := range updates {
				b.Run(u.name, func(b *testing.B) {
					for _, v := range visibilities {
						b.Run(v.name, func(b *testing.B) {
							fn(b, ttlCase{expire: e.on, update: u.u, visibility: v.v})
						})
					}
				})
			}
		})
	}
}

// ttlTime drives a benchmark's manual clock: tick, called once per op
// before the op, advances it by ttlAdvanceMillis at the start of every pass
// over the key set under Expire3PercentPerIteration, and does nothing under
// NeverExpired. It counts down rather than taking a modulo per op.
type ttlTime struct {
	clock *ttl.ManualClock
	step  time.Duration // 0 under NeverExpired
	every int           // ops per iteration: the setup key count
	left  int           // ops until the next advance
}

func newTTLTime(w *workload, c ttlCase, at int64) *ttlTime {
	t := &ttlTime{clock: ttl.NewManualClock(time.UnixMilli(at)), every: w.setupCount()}
	if c.expire {
		t.step = ttlAdvanceMillis * time.Millisecond
	}
	return t
}

func (t *ttlTime) tick() {
	if t.step == 0 {
		return
	}
	if t.left--; t.left < 0 {
		t.clock.Advance(t.step)
		t.left = t.every - 1
	}
}

// ttlStamp draws a setup stamp in [0, ttlInitialMillis].
func ttlStamp(rng *rand.Rand) time.Time {
	return time.UnixMilli(rng.Int64N(ttlInitialMillis + 1))
}

// TTL fixtures: the non-TTL fixtures' twins (same key order, same user
// values from the same random streams, the same flush or compaction) with
// the states' TTL on and the stamps spread over [0, 1e6] ms.
var (
	ttlValueFixture = &fixture{name: "ttl-value", build: buildTTLValueFixture}
	ttlListFixture  = &fixture{name: "ttl-list", build: buildTTLListFixture}
	ttlMapFixture   = &fixture{name: "ttl-map", build: buildTTLMapFixture}
	ttlSweepFixture = &fixture{name: "ttl-sweep", build: buildTTLSweepFixture}
)

// The TTL states, named as the non-TTL ones; the fixtures are built with
// the default TTL config, and every benchmark opens them with its own.
func ttlValueDesc(cfg ttl.Config) backend.ValueDescriptor[int64] {
	d := valueDesc
	d.TTL = cfg
	return d
}

func ttlListDesc(cfg ttl.Config) backend.ListDescriptor[int64] {
	d := listDesc
	d.TTL = cfg
	return d
}

func ttlMapDesc(cfg ttl.Config) backend.MapDescriptor[int64, float64] {
	d := mapDesc
	d.TTL = cfg
	return d
}

// ttlSweepDesc is the large second state of ttlSweepFixture, which the
// periodic sweep scans while BenchmarkValueUpdateWhileSweeping writes
// kvState.
func ttlSweepDesc(cfg ttl.Config) backend.ValueDescriptor[int64] {
	return backend.ValueDescriptor[int64]{Name: "sweepState", Codec: backend.Int64, TTL: cfg}
}

// ttlSweepFactor is the size of sweepState in setup keys.
const ttlSweepFactor = 2

var ttlDefault = ttlCase{}.config()

// ttlBuild is the TTL config the fixtures are written with: the default
// with background cleanup off. Setup has nothing to clean (no stamp is
// expired at the build's clock), and the filter's scans of every flushed
// span would only compete with the build's flushes and compactions for the
// cores. Cleanup settings are not stored, so the benchmarks open the
// fixtures with background cleanup on.
var ttlBuild = func() ttl.Config {
	c := ttlDefault
	c.Cleanup.DisableBackground = true
	return c
}()

// buildTTLValueFixture is buildValueFixture with TTL: update(random long)
// for every setup key, each at a random time in [0, 1e6] ms.
func buildTTLValueFixture(dir string, n int) error {
	return ttlBuildState(dir, func(be *backend.Backend[int64], clock *ttl.ManualClock) error {
		return ttlFillValues(be, clock, ttlValueDesc(ttlBuild), n, newRand(valueStream), newRand(ttlValueStampStream))
	})
}

func ttlFillValues(be *backend.Backend[int64], clock *ttl.ManualClock, d backend.ValueDescriptor[int64], n int, values, stamps *rand.Rand) error {
	v, err := backend.GetValue(be, d)
	if err != nil {
		return err
	}
	for k := range int64(n) {
		clock.Set(ttlStamp(stamps))
		if err := be.SetCurrentKey(k); err != nil {
			return err
		}
		if err := v.Update(values.Int64()); err != nil {
			return err
		}
	}
	return nil
}

// buildTTLListFixture is buildListFixture with TTL: one random long added
// to the list of every setup key at a random time, then everything
// compacted into the bottom level.
func buildTTLListFixture(dir string, n int) error {
	return ttlBuildState(dir, func(be *backend.Backend[int64], clock *ttl.ManualClock) error {
		l, err := backend.GetList(be, ttlListDesc(ttlBuild))
		if err != nil {
			return err
		}
		rng, stamps := newRand(listStream), newRand(ttlListStampStream)
		for k := range int64(n) {
			clock.Set(ttlStamp(stamps))
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

// buildTTLMapFixture is buildMapFixture with TTL: the mapKeyCount entries
// of each setup key written with one PutAll at a random time, so a key's
// entries share their stamp.
func buildTTLMapFixture(dir string, n int) error {
	return ttlBuildState(dir, func(be *backend.Backend[int64], clock *ttl.ManualClock) error {
		m, err := backend.GetMap(be, ttlMapDesc(ttlBuild))
		if err != nil {
			return err
		}
		rng, stamps := newRand(mapStream), newRand(ttlMapStampStream)
		entries := func(yield func(int64, float64) bool) {
			for j := range int64(mapKeyCount) {
				if !yield(j, rng.Float64()) {
					return
				}
			}
		}
		for k := range int64(n) {
			clock.Set(ttlStamp(stamps))
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

// buildTTLSweepFixture is the TTL value fixture (kvState, state id 1) plus
// sweepState, a TTL value state of ttlSweepFactor*n keys with stamps spread
// over [0, 1e6] ms like the others.
func buildTTLSweepFixture(dir string, n int) error {
	return ttlBuildState(dir, func(be *backend.Backend[int64], clock *ttl.ManualClock) error {
		if err := ttlFillValues(be, clock, ttlValueDesc(ttlBuild), n, newRand(valueStream), newRand(ttlValueStampStream)); err != nil {
			return err
		}
		rng := newRand(ttlSweepStream)
		return ttlFillValues(be, clock, ttlSweepDesc(ttlBuild), ttlSweepFactor*n, rng, rng)
	})
}

func ttlBuildState(dir string, fill func(*backend.Backend[int64], *ttl.ManualClock) error) error {
	clock := ttl.NewManualClock(time.UnixMilli(0))
	opts := stateOptions(dir)
	opts.Clock = clock
	be, err := backend.Open(backend.Int64, opts)
	if err != nil {
		return err
	}
	if err := fill(be, clock); err != nil {
		_ = be.Close()
		return err
	}
	if err := be.Close(); err != nil { // flushes: the WAL is off
		return err
	}
	return ttlSettle(dir)
}

// ttlSettle reopens a fixture with raw Pebble and lets the compactions it
// still owes run to the end, so that opening a clone starts none. The TTL
// map fixture needs it: its values are 8 bytes longer, and at 500,000 keys
// its build ends with 20 L0 tables in 2 sublevels (L0 score 1.27, where
// the non-TTL map fixture ends with 11 tables, score 0.5), so every clone
// would start with about 140 MB of compactions, whose CPU time (and the
// background TTL scans of their outputs) would land in the first second
// of every TTL map benchmark. The non-TTL fixtures owe no compaction at
// open, so after this both sides start quiet; the settled TTL map fixture
// has no L0 tables left, though, so its reads look in fewer tables than
// the non-TTL map's (see RESULTS.md). The other TTL fixtures owe nothing
// and pass through unchanged.
func ttlSettle(dir string) error {
	db, err := openRawDir(dir, false)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for quiet := 0; quiet < 3; {
		time.Sleep(100 * time.Millisecond)
		m := db.Metrics()
		busy := m.Compact.NumInProgress > 0
		for _, l := range m.Levels {
			busy = busy || l.Score >= 1
		}
		if busy {
			quiet = 0
		} else {
			quiet++
		}
		if time.Now().After(deadline) {
			_ = db.close()
			return fmt.Errorf("compactions of %s did not settle in 5 minutes", dir)
		}
	}
	return db.close()
}

// ttlOpenBackend opens a clone of the TTL fixture f on clock, with opts
// changed by tweak if it is not nil, and closes it when the benchmark ends.
func ttlOpenBackend(tb testing.TB, f *fixture, clock ttl.Clock, tweak func(*backend.Options)) *backend.Backend[int64] {
	tb.Helper()
	opts := stateOptions(f.clone(tb))
	opts.Clock = clock
	if tweak != nil {
		tweak(&opts)
	}
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

// ttlWarm is warm for a TTL state: KeysInNamespace does not look at stamps,
// but background cleanup may already have removed the odd key stamped at 0,
// expired at 1e6, so it checks the count only loosely.
func ttlWarm(tb testing.TB, keys iter.Seq2[int64, error]) {
	tb.Helper()
	n := 0
	for _, err := range keys {
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
	if want := getWorkload(tb).setupCount(); n > want || n < want-want/1000-1 {
		tb.Fatalf("fixture holds %d keys, want about %d", n, want)
	}
}

// ttlReportMisses reports the reads that found nothing (expired, or
// removed by an earlier read or by cleanup) per op.
func ttlReportMisses(b *testing.B, misses int) {
	if b.N > 0 {
		b.ReportMetric(float64(misses)/float64(b.N), "miss/op")
	}
}

// ttlStart is start for the TTL state benchmarks: the function it returns
// also reports ttl-scanned/op, the entries background TTL cleanup checked
// during the loop per op (the spans of flushes and compactions: with the
// hourly sweep it is nothing else), which is part of cpu-ns/op.
func ttlStart(b *testing.B, be *backend.Backend[int64]) (stop func()) {
	stop0 := start(b)
	m0 := be.TTLMetrics()
	return func() {
		stop0()
		if b.N > 0 {
			m1 := be.TTLMetrics()
			b.ReportMetric(float64(m1.BackgroundScanned-m0.BackgroundScanned)/float64(b.N), "ttl-scanned/op")
		}
	}
}
