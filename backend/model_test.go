package backend_test

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/snapshot"
	"github.com/pebblestate/pebblestate/ttl"
)

// TestModel drives a job of parallel backends with seeded random
// operations over every state kind, in the void namespace and in int64
// namespaces, without TTL and with TTL under either update type, and
// mirrors each operation in a plain in-memory model that keeps every
// stored entry with its TTL stamp. The TTL clock is a ttl.ManualClock the
// sequence advances, often to exactly when an entry expires or a
// millisecond before; the model judges expiry with Flink's predicate
// (expired iff stamp + ttl <= now). Every read is compared with the model
// as it happens; after each operation the state's current (key,
// namespace) is read again, and now and then its KeysInNamespace; after
// the clock moves, every state at the current key; and periodically,
// after reopening the directories, after every restore and at the end,
// every key and namespace of every state, KeysInNamespace included.
//
// The sequence also flushes, compacts, runs CleanupExpired, merges
// namespaces, and takes checkpoints in the test's mode (full, or mostly
// incremental with some instances full), whose asynchronous parts run
// while the operations go on; a checkpoint is then completed (with
// retention 1 to 3) or aborted, and storage must hold exactly what the
// retained checkpoints reference. It restores retained checkpoints at a
// parallelism of 1 to 3, checks them against the model as of the
// checkpoint, and sometimes fails over to them; at the end every retained
// checkpoint is restored and checked.
//
// Each mode and configuration runs the built-in seeds and a fresh one. A
// failure logs its seed, the states' TTL settings and the last operations;
// replay it with
//
//	go test ./backend -run 'TestModel/<mode>/<config>/seed=<seed>' -seed <seed> [-model.ops N]
//
// or PEBBLESTATE_MODEL_SEED=<seed> instead of -seed.
var (
	modelSeed  = flag.Uint64("seed", 0, "TestModel: run only this seed (0: the built-in seeds and a fresh one)")
	modelOps   = flag.Int("model.ops", 0, "TestModel: operations per seed (0: 1000, or 400 with -short or -race)")
	modelSeeds = flag.Int("model.seeds", 0, "TestModel: number of built-in seeds per mode and config (0: 1)")
)

const modelSeedEnv = "PEBBLESTATE_MODEL_SEED"

// modelConfig is one job configuration the model runs against.
type modelConfig struct {
	name      string
	maxP      int
	keyGroups backend.KeyGroupRange // zero: all
}

var modelConfigs = []modelConfig{
	// One-byte key groups, all owned.
	{name: "maxP=16", maxP: 16},
	// Two-byte key groups, all owned (a checkpoint must cover every key
	// group of its operator), split unevenly among the instances:
	// KeysInNamespace must stay inside each instance's part.
	{name: "maxP=300", maxP: 300},
}

func TestModel(t *testing.T) {
	ops, nSeeds := 1000, 1
	// Under -race, 400 operations per seed, as with -short: the same
	// configurations, modes, storages and seeds run, each sequence
	// shorter; the suite's run with the invariants tag, without the race
	// detector, runs the full 1000.
	if testing.Short() || raceEnabled() {
		ops = 400
	}
	if *modelOps > 0 {
		ops = *modelOps
	}
	if *modelSeeds > 0 {
		nSeeds = *modelSeeds
	}
	var seeds []uint64
	for i := range nSeeds {
		seeds = append(seeds, uint64(i+1))
	}
	fresh := true
	if s := os.Getenv(modelSeedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		noErr(t, err)
		seeds, fresh = []uint64{seed}, false
	}
	if *modelSeed != 0 {
		seeds, fresh = []uint64{*modelSeed}, false
	}
	forEachStorage(t, func(t *testing.T, m mode) {
		for i, cfg := range modelConfigs {
			// On S3, one config per mode, each mode another, to keep the
			// race-detector run of this package well inside its timeout:
			// the storage is what differs, and both configs reach it.
			if m.s3 && (i == 0) == m.incremental {
				continue
			}
			// The runs share nothing (each its directories, storage, clock
			// and generator), so they run in parallel.
			t.Run(cfg.name, func(t *testing.T) {
				t.Parallel()
				run := slices.Clone(seeds)
				if fresh {
					run = append(run, uint64(time.Now().UnixNano()))
				}
				for _, seed := range run {
					t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
						t.Parallel()
						newModelEnv(t, m, cfg, seed).run(ops)
					})
				}
			})
		}
	})
}

// modelInst is one parallel instance of the job.
type modelInst struct {
	b           *backend.Backend[string]
	dir         string
	kgs         backend.KeyGroupRange
	incremental bool
	// localRecovery is the instance's Options.LocalRecovery.
	localRecovery backend.LocalRecovery
	cur           string // its current key
	curSet        bool
}

// owns reports whether k belongs to the instance's key groups.
func (in *modelInst) owns(e *modelEnv, k string) bool { return in.kgs.Contains(e.kgOf[k]) }

// modelEnv is one run: a job, its states and their models, the current
// instance, and the checkpoints taken.
type modelEnv struct {
	t      *testing.T
	m      mode
	cfg    modelConfig
	seed   uint64
	r      *rand.Rand
	clock  *ttl.ManualClock
	sweep  time.Duration // Options.TTLSweepInterval
	kgs    backend.KeyGroupRange
	insts  []*modelInst
	ci     int // the current instance: the one of the last SetCurrentKey
	states []modelState
	last   modelState // the state picked last

	allKeys []string
	hot     []string        // a few keys picked often, so state piles up
	kgOf    map[string]int  // every key's key group
	touched map[string]bool // keys of the job ever made current

	st snapshot.Storage
	// localRecoveryDir is every instance's Options.LocalRecoveryDir.
	localRecoveryDir string
	keep             int
	nextID           int64
	completed        []int64       // completed checkpoints, oldest first
	saved            map[int64]any // the model as of each retained checkpoint
	flight           *modelFlight
	counts           map[string]int

	step    int
	history []string // the last operations, for failure messages
}

func newModelEnv(t *testing.T, m mode, cfg modelConfig, seed uint64) *modelEnv {
	e := &modelEnv{
		t: t, m: m, cfg: cfg, seed: seed,
		r:                rand.New(rand.NewPCG(seed, uint64(cfg.maxP))), // each config its own sequence
		clock:            ttl.NewManualClock(envT0),
		kgs:              cfg.keyGroups,
		kgOf:             map[string]int{},
		touched:          map[string]bool{},
		st:               m.storage(t),
		localRecoveryDir: filepath.Join(t.TempDir(), "local-recovery"),
		saved:            map[int64]any{},
		counts:           map[string]int{},
	}
	if e.kgs == (backend.KeyGroupRange{}) {
		e.kgs = backend.KeyGroupRange{Start: 0, End: cfg.maxP}
	}
	e.keep = 1 + e.r.IntN(3)
	e.sweep = []time.Duration{-1, 30 * time.Millisecond}[e.r.IntN(2)]
	// 200 keys: plain ones, and some whose bytes look like length prefixes
	// or extend other keys.
	special := []string{"", "\x00", "\x01", "\x01k000", "k000\x00", "k00", "\xff", "\xff\xff",
		strings.Repeat("L", 127), strings.Repeat("L", 128), "\x80\x01" + strings.Repeat("L", 128)}
	e.allKeys = append(e.allKeys, special...)
	for i := 0; len(e.allKeys) < 200; i++ {
		e.allKeys = append(e.allKeys, fmt.Sprintf("k%03d", i))
	}
	for _, k := range e.allKeys {
		e.kgOf[k] = must(backend.KeyGroupOf(backend.String, k, cfg.maxP)).in(t)
	}
	for _, i := range e.r.Perm(len(e.allKeys))[:12] {
		e.hot = append(e.hot, e.allKeys[i])
	}
	e.states = modelStates(e)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		var sts []string
		for _, s := range e.states {
			sts = append(sts, fmt.Sprintf("%s: %s", s.name(), s.ttlOf()))
		}
		t.Logf("mode %s, config %s, seed %d, step %d, clock +%dms, retention %d, sweep %v\nstates:\n  %s\nlast operations:\n  %s\nreproduce: go test ./backend -run 'TestModel/%s/%s/seed=%d' -seed %d",
			m.name, cfg.name, seed, e.step, e.now()-ttl.Millis(envT0), e.keep, e.sweep, strings.Join(sts, "\n  "),
			strings.Join(e.history, "\n  "), m.name, cfg.name, seed, seed)
	})
	return e
}

// in is the current instance.
func (e *modelEnv) in() *modelInst { return e.insts[e.ci] }

// now is the clock in TTL stamp units (ms).
func (e *modelEnv) now() int64 { return ttl.Millis(e.clock.Now()) }

// at names the current key and namespace ns for failure messages.
func (e *modelEnv) at(ns int64) string { return fmt.Sprintf("%q/%d", e.in().cur, ns) }

// note records an operation for the failure message.
func (e *modelEnv) note(format string, args ...any) {
	if len(e.history) == 40 {
		e.history = append(e.history[:0], e.history[20:]...)
	}
	e.history = append(e.history, fmt.Sprintf("%5d: [%d] ", e.step, e.ci)+fmt.Sprintf(format, args...))
}

func (e *modelEnv) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf("step %d, instance %d (current key %q set=%v): %s", e.step, e.ci, e.in().cur, e.in().curSet, fmt.Sprintf(format, args...))
}

// ok fails the test now on an error.
func (e *modelEnv) ok(err error) {
	e.t.Helper()
	noErr(e.t, err)
}

// noKey checks the error of a state access: with no current key it must be
// ErrNoCurrentKey, and noKey returns true so that the model is left alone;
// with a current key there must be no error.
func (e *modelEnv) noKey(err error) bool {
	e.t.Helper()
	if !e.in().curSet {
		if !errors.Is(err, backend.ErrNoCurrentKey) {
			e.fatalf("with no current key: error %v, want ErrNoCurrentKey", err)
		}
		return true
	}
	e.ok(err)
	return false
}

func (e *modelEnv) pickKey() string {
	if e.r.IntN(4) != 0 {
		return e.hot[e.r.IntN(len(e.hot))]
	}
	return e.allKeys[e.r.IntN(len(e.allKeys))]
}

// pickState picks a state, half the time the one picked last, so that
// operations come in runs on one state and find what they wrote.
func (e *modelEnv) pickState() modelState {
	if e.last == nil || e.r.IntN(2) == 0 {
		e.last = e.states[e.r.IntN(len(e.states))]
	}
	return e.last
}

func (e *modelEnv) randInt64() int64 {
	if e.r.IntN(20) == 0 {
		return []int64{math.MinInt64, math.MaxInt64, -1, 0}[e.r.IntN(4)]
	}
	return int64(e.r.IntN(2001)) - 1000
}

func (e *modelEnv) randString() string {
	switch e.r.IntN(10) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("s", 100+e.r.IntN(100))
	}
	return fmt.Sprintf("s%d", e.r.IntN(1000))
}

// owner is the index of the instance owning k, or -1 if the job does not.
func (e *modelEnv) owner(k string) int {
	for i, in := range e.insts {
		if in.owns(e, k) {
			return i
		}
	}
	return -1
}

// setKey makes k current on an instance: mostly the one owning it, or
// another, which must refuse it (as every instance must a key of a key
// group the job does not own).
func (e *modelEnv) setKey(k string) {
	e.t.Helper()
	ci := e.r.IntN(len(e.insts))
	if o := e.owner(k); o >= 0 && e.r.IntN(4) != 0 {
		ci = o
	}
	e.setKeyOn(ci, k)
}

func (e *modelEnv) setKeyOn(ci int, k string) {
	e.t.Helper()
	e.ci = ci
	in := e.in()
	e.note("SetCurrentKey(%q)", k)
	err := in.b.SetCurrentKey(k)
	if !in.owns(e, k) {
		if !errors.Is(err, backend.ErrKeyGroupOutOfRange) {
			e.fatalf("SetCurrentKey(%q) of a key group the instance does not own: error %v, want ErrKeyGroupOutOfRange", k, err)
		}
		in.curSet = false
	} else {
		e.ok(err)
		in.cur, in.curSet = k, true
		e.touched[k] = true
	}
	got, set := in.b.CurrentKey()
	if set != in.curSet || (set && got != in.cur) {
		e.fatalf("CurrentKey() = %q, %v; want %q, %v", got, set, in.cur, in.curSet)
	}
	kg := in.b.CurrentKeyGroup()
	if !in.curSet {
		if kg != -1 {
			e.fatalf("CurrentKeyGroup() = %d with no current key", kg)
		}
		return
	}
	if kg != e.kgOf[k] {
		e.fatalf("CurrentKeyGroup() = %d, want %d", kg, e.kgOf[k])
	}
}

// advance moves the clock: half the time by up to 150 ms, half the time to
// exactly when a stored entry (often one of the current key) expires in
// the next 400 ms, or a millisecond before.
func (e *modelEnv) advance() {
	now := e.now()
	d := int64(e.r.IntN(150))
	if e.r.IntN(2) == 0 {
		key := ""
		if e.in().curSet && e.r.IntN(2) == 0 {
			key = e.in().cur
		}
		var edges []int64
		for _, s := range e.states {
			edges = append(edges, s.expiries(now, key)...)
		}
		slices.Sort(edges)
		if i := sort.Search(len(edges), func(i int) bool { return edges[i] > now+400 }); i > 0 {
			d = edges[e.r.IntN(i)] - now - int64(e.r.IntN(2))
		}
	}
	e.note("clock +%dms", d)
	e.clock.Advance(time.Duration(d) * time.Millisecond)
	// What the current key holds at this instant.
	if e.in().curSet {
		for _, s := range e.states {
			s.checkCurrent(e)
		}
	}
}

// checkAll compares every state at every touched key (or, if fraction < 1,
// at that fraction of them, picked at random) and namespace, and
// KeysInNamespace of every namespace. It leaves the last key current.
func (e *modelEnv) checkAll(fraction float64) {
	e.t.Helper()
	e.note("checkAll(%.2f)", fraction)
	for _, k := range slices.Sorted(maps.Keys(e.touched)) {
		if fraction < 1 && e.r.Float64() >= fraction {
			continue
		}
		e.setKeyOn(e.owner(k), k)
		for _, s := range e.states {
			for _, ns := range s.namespaces() {
				s.useNS(e, ns)
				s.checkCurrent(e)
			}
		}
	}
	for _, s := range e.states {
		for _, ns := range s.namespaces() {
			s.checkKeysIn(e, ns)
		}
	}
}

func (e *modelEnv) run(ops int) {
	e.t.Helper()
	e.insts = e.openJob(1 + e.r.IntN(3))
	reopenAt := e.r.IntN(ops)
	for e.step = 0; e.step < ops; e.step++ {
		switch x := e.r.IntN(1000); {
		case x < 100:
			e.setKey(e.pickKey())
		case x < 170:
			e.pickState().setNS(e)
		case x < 173:
			e.note("Flush")
			e.ok(e.in().b.Flush())
		case x < 195:
			s := e.pickState()
			ns := s.namespaces()
			s.checkKeysIn(e, ns[e.r.IntN(len(ns))])
		case x < 198:
			s := e.pickState()
			ns := s.namespaces()
			s.clearNamespace(e, ns[e.r.IntN(len(ns))])
		case x < 213:
			e.advance()
		case x < 221:
			e.note("CleanupExpired")
			e.ok(e.in().b.CleanupExpired(e.t.Context()))
		case x < 222:
			e.note("Compact")
			e.ok(e.in().b.Compact(e.t.Context()))
		case x < 229:
			e.startCheckpoint()
		case x < 234:
			e.finishCheckpoint(e.r.IntN(6) != 0)
		case x < 236:
			e.restore(e.r.IntN(3) == 0)
		default:
			s := e.pickState()
			if e.r.IntN(3) == 0 {
				s.setNS(e)
			}
			s.op(e)
			if e.r.IntN(4) == 0 {
				s.checkKeysHere(e)
			}
			s.checkCurrent(e)
		}
		if e.step == reopenAt {
			e.reopen()
			e.checkAll(1)
		} else if e.step%250 == 249 {
			e.checkAll(0.2)
		}
	}
	e.finishCheckpoint(true)
	e.checkAll(0.25) // the full check after reopening catches any difference too
	e.reopen()
	e.checkAll(1)
	e.restoreAll()
	e.t.Logf("%d operations, clock +%v: %v", ops, time.Duration(e.now()-ttl.Millis(envT0))*time.Millisecond, e.counts)
}

// TestModelMergeNamespacesRepeatedSource checks MergeNamespaces when a
// source namespace is listed twice: its contents move to the target once
// and the source is cleared, as when the sources are taken one at a time
// (and as Flink's RocksDB backend does).
func TestModelMergeNamespacesRepeatedSource(t *testing.T) {
	b := MustOpen(t)
	setKey(t, b, "k")
	l := nsList(t, b, "l")
	r := sumState(t, b, "r")
	a := must(backend.GetAggregatingNS(b, backend.Int64, backend.AggregatingDescriptor[int64, avgAcc, avgAcc]{
		Name: "a", Codec: backend.JSON[avgAcc](), Function: identityAvg{}})).in(t)
	for _, s := range []interface{ SetCurrentNamespace(int64) error }{l, r, a} {
		noErr(t, s.SetCurrentNamespace(1))
	}
	noErr(t, l.Add("x"))
	noErr(t, r.Add(5))
	noErr(t, a.Add(5))
	noErr(t, l.MergeNamespaces(2, 1, 1))
	noErr(t, r.MergeNamespaces(2, 1, 1))
	noErr(t, a.MergeNamespaces(2, 1, 1))
	for _, s := range []interface{ SetCurrentNamespace(int64) error }{l, r, a} {
		noErr(t, s.SetCurrentNamespace(2))
	}
	wantList(t, l, []string{"x"})
	wantReduced(t, r, 5, true)
	if got, ok, err := a.Get(); err != nil || !ok || got != (avgAcc{Sum: 5, Count: 1}) {
		t.Errorf("aggregating: MergeNamespaces(2, 1, 1) gave %+v, %v, %v; want {5 1}", got, ok, err)
	}
	for _, s := range []interface{ SetCurrentNamespace(int64) error }{l, r, a} {
		noErr(t, s.SetCurrentNamespace(1))
	}
	wantList(t, l, nil)
	wantReduced(t, r, 0, false)
}
