package backend_test

import (
	"errors"
	"flag"
	"fmt"
	"iter"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// TestModel drives a backend with seeded random operations over every state
// kind, in the void namespace and in int64 namespaces, and mirrors each
// operation in a plain in-memory model. Every read is compared with the
// model as it happens; every step re-reads the touched (key, namespace);
// and periodically, after reopening the directory, and at the end, every
// key and namespace of every state is compared, KeysInNamespace included.
//
// A failure names its seed. Reproduce it with
//
//	go test ./backend -run 'TestModel/<config>' -seed <seed> [-model.ops N]
var (
	modelSeed  = flag.Uint64("seed", 0, "TestModel: run only this seed (0: the built-in seeds)")
	modelOps   = flag.Int("model.ops", 0, "TestModel: operations per seed (0: 2000, or 600 with -short)")
	modelSeeds = flag.Int("model.seeds", 0, "TestModel: number of built-in seeds per config (0: 4, or 2 with -short)")
)

// modelConfig is one backend configuration the model runs against.
type modelConfig struct {
	name      string
	maxP      int
	keyGroups backend.KeyGroupRange // zero: all
}

var modelConfigs = []modelConfig{
	// One-byte key groups, all owned.
	{name: "maxP=16", maxP: 16},
	// Two-byte key groups, a range in the middle owned: keys of other key
	// groups are refused, and KeysInNamespace must stay inside the range.
	{name: "maxP=300-kgs=40..260", maxP: 300, keyGroups: backend.KeyGroupRange{Start: 40, End: 260}},
}

func TestModel(t *testing.T) {
	ops, nSeeds := 2000, 4
	if testing.Short() {
		ops, nSeeds = 600, 2
	}
	if *modelOps > 0 {
		ops = *modelOps
	}
	if *modelSeeds > 0 {
		nSeeds = *modelSeeds
	}
	seeds := make([]uint64, nSeeds)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	if *modelSeed != 0 {
		seeds = []uint64{*modelSeed}
	}
	for _, cfg := range modelConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			for _, seed := range seeds {
				t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					e := newModelEnv(t, cfg, seed)
					e.run(ops)
				})
			}
		})
	}
}

// modelPK identifies one (key, namespace) of a state in the model.
type modelPK struct {
	key string
	ns  int64
}

// modelNS describes a namespace type: its codec, how the model's int64
// namespaces map onto it, and the namespaces used.
type modelNS[N any] struct {
	codec backend.Codec[N]
	of    func(int64) N
	all   []int64
}

var (
	modelInt64NS = modelNS[int64]{codec: backend.Int64, of: func(n int64) int64 { return n },
		all: []int64{0, 1, -1, math.MinInt64}}
	modelVoidNS = modelNS[backend.VoidNamespace]{codec: backend.Void,
		of: func(int64) backend.VoidNamespace { return backend.VoidNamespace{} }, all: []int64{0}}
)

// modelState is one state under test together with its model.
type modelState interface {
	name() string
	// register (re)registers the state on e.b; its namespace becomes the
	// zero namespace.
	register(e *modelEnv)
	// op performs one random operation on the current key, checking reads.
	op(e *modelEnv)
	// setNS sets a random current namespace.
	setNS(e *modelEnv)
	// useNS sets namespace ns.
	useNS(e *modelEnv, ns int64)
	// checkCurrent compares the current key and namespace with the model.
	checkCurrent(e *modelEnv)
	// checkKeysIn compares KeysInNamespace(ns) with the model.
	checkKeysIn(e *modelEnv, ns int64)
	// clearNamespace clears ns for every key KeysInNamespace yields, from
	// inside the iteration.
	clearNamespace(e *modelEnv, ns int64)
	// namespaces returns the namespaces the state uses.
	namespaces() []int64
	// checkClosed checks that the (old) handle refuses use after Close.
	checkClosed(e *modelEnv)
}

// modelEnv is one run: a backend, its states, their models, and the
// current key.
type modelEnv struct {
	t      *testing.T
	cfg    modelConfig
	seed   uint64
	r      *rand.Rand
	opts   backend.Options
	b      *backend.Backend[string]
	states []modelState

	allKeys []string
	hot     []string        // a few keys picked often, so state piles up
	owned   map[string]bool // keys whose key group the backend owns
	touched map[string]bool // owned keys ever made current

	cur    string
	curSet bool

	step    int
	history []string // the last operations, for failure messages
}

func newModelEnv(t *testing.T, cfg modelConfig, seed uint64) *modelEnv {
	e := &modelEnv{
		t: t, cfg: cfg, seed: seed,
		r:       rand.New(rand.NewPCG(seed, uint64(cfg.maxP))), // each config its own sequence
		owned:   map[string]bool{},
		touched: map[string]bool{},
	}
	e.opts = backend.Options{
		Dir:            t.TempDir(),
		MaxParallelism: cfg.maxP,
		KeyGroups:      cfg.keyGroups,
		MemTableSize:   1 << 20, // small memtables: flushes to L0 happen on their own too
		BlockCacheSize: 1 << 20,
	}
	kgs := cfg.keyGroups
	if kgs == (backend.KeyGroupRange{}) {
		kgs = backend.KeyGroupRange{Start: 0, End: cfg.maxP}
	}
	// 200 keys: plain ones, and some whose bytes look like length prefixes
	// or extend other keys.
	special := []string{"", "\x00", "\x01", "\x01k000", "k000\x00", "k00", "\xff", "\xff\xff",
		strings.Repeat("L", 127), strings.Repeat("L", 128), "\x80\x01" + strings.Repeat("L", 128)}
	e.allKeys = append(e.allKeys, special...)
	for i := 0; len(e.allKeys) < 200; i++ {
		e.allKeys = append(e.allKeys, fmt.Sprintf("k%03d", i))
	}
	for _, k := range e.allKeys {
		kg, err := backend.KeyGroupOf(backend.String, k, cfg.maxP)
		if err != nil {
			t.Fatal(err)
		}
		e.owned[k] = kgs.Contains(kg)
	}
	perm := e.r.Perm(len(e.allKeys))
	for _, i := range perm[:12] {
		e.hot = append(e.hot, e.allKeys[i])
	}
	e.states = []modelState{
		&modelValue[int64]{modelBase: newModelBase[int64, int64]("value", modelInt64NS)},
		&modelValue[backend.VoidNamespace]{modelBase: newModelBase[backend.VoidNamespace, int64]("value-void", modelVoidNS)},
		&modelList[int64]{modelBase: newModelBase[int64, []string]("list", modelInt64NS)},
		&modelList[backend.VoidNamespace]{modelBase: newModelBase[backend.VoidNamespace, []string]("list-void", modelVoidNS)},
		&modelMap[int64]{modelBase: newModelBase[int64, map[int64]string]("map", modelInt64NS)},
		&modelMap[backend.VoidNamespace]{modelBase: newModelBase[backend.VoidNamespace, map[int64]string]("map-void", modelVoidNS)},
		&modelReducing[int64]{modelBase: newModelBase[int64, int64]("reducing", modelInt64NS)},
		&modelReducing[backend.VoidNamespace]{modelBase: newModelBase[backend.VoidNamespace, int64]("reducing-void", modelVoidNS)},
		&modelAggregating[int64]{modelBase: newModelBase[int64, modelAcc]("aggregating", modelInt64NS)},
		&modelAggregating[backend.VoidNamespace]{modelBase: newModelBase[backend.VoidNamespace, modelAcc]("aggregating-void", modelVoidNS)},
	}
	return e
}

// note records an operation for the failure message.
func (e *modelEnv) note(format string, args ...any) {
	if len(e.history) == 40 {
		e.history = append(e.history[:0], e.history[20:]...)
	}
	e.history = append(e.history, fmt.Sprintf("%5d: ", e.step)+fmt.Sprintf(format, args...))
}

func (e *modelEnv) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf("config %s seed %d step %d (current key %q set=%v): %s\nlast operations:\n  %s\nreproduce: go test ./backend -run 'TestModel/%s' -seed %d",
		e.cfg.name, e.seed, e.step, e.cur, e.curSet, fmt.Sprintf(format, args...),
		strings.Join(e.history, "\n  "), e.cfg.name, e.seed)
}

// ok fails on an error.
func (e *modelEnv) ok(err error) {
	e.t.Helper()
	if err != nil {
		e.fatalf("unexpected error: %v", err)
	}
}

// noKey checks the error of a state access: with no current key it must be
// ErrNoCurrentKey, and noKey returns true so that the model is left alone;
// with a current key there must be no error.
func (e *modelEnv) noKey(err error) bool {
	e.t.Helper()
	if !e.curSet {
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

func (e *modelEnv) pickState() modelState { return e.states[e.r.IntN(len(e.states))] }

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

// setKey makes a random key current, checking that keys of key groups the
// backend does not own are refused.
func (e *modelEnv) setKey(k string) {
	e.t.Helper()
	e.note("SetCurrentKey(%q)", k)
	err := e.b.SetCurrentKey(k)
	if !e.owned[k] {
		if !errors.Is(err, backend.ErrKeyGroupOutOfRange) {
			e.fatalf("SetCurrentKey(%q) of an unowned key group: error %v, want ErrKeyGroupOutOfRange", k, err)
		}
		e.curSet = false
	} else {
		e.ok(err)
		e.cur, e.curSet = k, true
		e.touched[k] = true
	}
	got, set := e.b.CurrentKey()
	if set != e.curSet || (set && got != e.cur) {
		e.fatalf("CurrentKey() = %q, %v; want %q, %v", got, set, e.cur, e.curSet)
	}
	kg := e.b.CurrentKeyGroup()
	if !e.curSet {
		if kg != -1 {
			e.fatalf("CurrentKeyGroup() = %d with no current key", kg)
		}
		return
	}
	want, _ := backend.KeyGroupOf(backend.String, k, e.cfg.maxP)
	if kg != want {
		e.fatalf("CurrentKeyGroup() = %d, want %d", kg, want)
	}
}

func (e *modelEnv) open() {
	e.t.Helper()
	b, err := backend.Open(backend.String, e.opts)
	if err != nil {
		e.fatalf("open: %v", err)
	}
	e.b = b
	e.curSet = false
	// Register in a random order: ids must be found by name.
	for _, i := range e.r.Perm(len(e.states)) {
		e.states[i].register(e)
	}
}

func (e *modelEnv) reopen() {
	e.t.Helper()
	e.note("reopen")
	old := e.b
	e.ok(old.Close())
	e.ok(old.Close()) // closing twice is a no-op
	for _, s := range e.states {
		s.checkClosed(e)
	}
	if err := old.SetCurrentKey(e.allKeys[0]); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("SetCurrentKey on a closed backend: %v, want ErrClosed", err)
	}
	e.open()
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
		e.setKey(k)
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
	e.open()
	defer func() { _ = e.b.Close() }()
	reopenAt := e.r.IntN(ops)
	for e.step = 0; e.step < ops; e.step++ {
		switch x := e.r.IntN(1000); {
		case x < 100:
			e.setKey(e.pickKey())
		case x < 170:
			e.pickState().setNS(e)
		case x < 173:
			e.note("Flush")
			e.ok(e.b.Flush())
		case x < 195:
			s := e.pickState()
			ns := s.namespaces()
			s.checkKeysIn(e, ns[e.r.IntN(len(ns))])
		case x < 198:
			s := e.pickState()
			ns := s.namespaces()
			s.clearNamespace(e, ns[e.r.IntN(len(ns))])
		default:
			s := e.pickState()
			s.op(e)
			s.checkCurrent(e)
		}
		if e.step == reopenAt {
			e.reopen()
			e.checkAll(1)
		} else if e.step%500 == 499 {
			e.checkAll(0.2)
		}
	}
	e.checkAll(0.25) // the full check after reopening catches any difference too
	e.reopen()
	e.checkAll(1)
}

// modelBase is what every state model shares: the namespace, the model's
// data per (key, namespace), and hooks into the handle.
type modelBase[N, X any] struct {
	nm    string
	ns    modelNS[N]
	curNS int64
	data  map[modelPK]X

	setNamespace func(N) error
	keysIn       func(N) iter.Seq2[string, error]
	clear        func() error
}

func newModelBase[N, X any](name string, ns modelNS[N]) modelBase[N, X] {
	return modelBase[N, X]{nm: name, ns: ns, data: map[modelPK]X{}}
}

func (s *modelBase[N, X]) bind(setNS func(N) error, keysIn func(N) iter.Seq2[string, error], clear func() error) {
	s.setNamespace, s.keysIn, s.clear = setNS, keysIn, clear
	s.curNS = 0
}

func (s *modelBase[N, X]) name() string        { return s.nm }
func (s *modelBase[N, X]) namespaces() []int64 { return s.ns.all }
func (s *modelBase[N, X]) pk(e *modelEnv) modelPK {
	return modelPK{key: e.cur, ns: s.curNS}
}

func (s *modelBase[N, X]) pickNS(e *modelEnv) int64 { return s.ns.all[e.r.IntN(len(s.ns.all))] }

func (s *modelBase[N, X]) setNS(e *modelEnv) { s.useNS(e, s.pickNS(e)) }

func (s *modelBase[N, X]) useNS(e *modelEnv, ns int64) {
	e.t.Helper()
	e.note("%s.SetCurrentNamespace(%d)", s.nm, ns)
	e.ok(s.setNamespace(s.ns.of(ns)))
	s.curNS = ns
}

func (s *modelBase[N, X]) doClear(e *modelEnv) {
	e.t.Helper()
	e.note("%s.Clear()", s.nm)
	if e.noKey(s.clear()) {
		return
	}
	delete(s.data, s.pk(e))
}

func (s *modelBase[N, X]) checkKeysIn(e *modelEnv, ns int64) {
	e.t.Helper()
	e.note("%s.KeysInNamespace(%d)", s.nm, ns)
	want := map[string]bool{}
	for pk := range s.data {
		if pk.ns == ns {
			want[pk.key] = true
		}
	}
	got := map[string]bool{}
	for k, err := range s.keysIn(s.ns.of(ns)) {
		e.ok(err)
		if got[k] {
			e.fatalf("%s.KeysInNamespace(%d) yielded %q twice", s.nm, ns, k)
		}
		if !e.owned[k] {
			e.fatalf("%s.KeysInNamespace(%d) yielded %q of an unowned key group", s.nm, ns, k)
		}
		got[k] = true
	}
	if !maps.Equal(got, want) {
		var missing, extra []string
		for k := range want {
			if !got[k] {
				missing = append(missing, k)
			}
		}
		for k := range got {
			if !want[k] {
				extra = append(extra, k)
			}
		}
		e.fatalf("%s.KeysInNamespace(%d): missing %q, unexpected %q", s.nm, ns, missing, extra)
	}
}

// clearNamespace is how a framework applies a function to every key: the
// loop body sets each key and clears its state while the iteration goes on
// over its point-in-time view.
func (s *modelBase[N, X]) clearNamespace(e *modelEnv, ns int64) {
	e.t.Helper()
	e.note("%s: clear namespace %d of every key, inside KeysInNamespace", s.nm, ns)
	n := 0
	for k, err := range s.keysIn(s.ns.of(ns)) {
		e.ok(err)
		e.ok(e.b.SetCurrentKey(k))
		e.cur, e.curSet = k, true
		s.useNS(e, ns)
		e.ok(s.clear())
		n++
	}
	for pk := range s.data {
		if pk.ns == ns {
			delete(s.data, pk)
			n--
		}
	}
	if n != 0 {
		e.fatalf("%s: KeysInNamespace(%d) yielded %d keys more than the model has", s.nm, ns, n)
	}
	s.checkKeysIn(e, ns)
}

// pickSources returns up to three distinct namespaces, possibly including
// target. (Repeated sources are covered by
// TestModelMergeNamespacesRepeatedSource.)
func (s *modelBase[N, X]) pickSources(e *modelEnv) []int64 {
	n := e.r.IntN(4)
	var out []int64
	for _, i := range e.r.Perm(len(s.ns.all))[:min(n, len(s.ns.all))] {
		out = append(out, s.ns.all[i])
	}
	return out
}

func (s *modelBase[N, X]) nsOf(nss []int64) []N {
	out := make([]N, len(nss))
	for i, n := range nss {
		out[i] = s.ns.of(n)
	}
	return out
}

// --- Value ---

type modelValue[N any] struct {
	modelBase[N, int64]
	h *backend.Value[string, N, int64]
}

func (s *modelValue[N]) register(e *modelEnv) {
	h, err := backend.GetValueNS(e.b, s.ns.codec, backend.ValueDescriptor[int64]{Name: s.nm, Codec: backend.Int64})
	e.ok(err)
	s.h = h
	s.bind(h.SetCurrentNamespace, h.KeysInNamespace, h.Clear)
}

func (s *modelValue[N]) op(e *modelEnv) {
	e.t.Helper()
	switch e.r.IntN(5) {
	case 0, 1:
		v := e.randInt64()
		e.note("%s.Update(%d)", s.nm, v)
		if e.noKey(s.h.Update(v)) {
			return
		}
		s.data[s.pk(e)] = v
	case 2:
		s.doClear(e)
	default:
		e.note("%s.Get()", s.nm)
		s.checkCurrent(e)
	}
}

func (s *modelValue[N]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	v, ok, err := s.h.Get()
	if e.noKey(err) {
		return
	}
	want, wok := s.data[s.pk(e)]
	if ok != wok || v != want {
		e.fatalf("%s.Get() at %q/%d = %d, %v; want %d, %v", s.nm, e.cur, s.curNS, v, ok, want, wok)
	}
}

func (s *modelValue[N]) checkClosed(e *modelEnv) {
	if _, _, err := s.h.Get(); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.Get() after Close: %v, want ErrClosed", s.nm, err)
	}
}

// --- List ---

type modelList[N any] struct {
	modelBase[N, []string]
	h *backend.List[string, N, string]
}

func (s *modelList[N]) register(e *modelEnv) {
	h, err := backend.GetListNS(e.b, s.ns.codec, backend.ListDescriptor[string]{Name: s.nm, Codec: backend.String})
	e.ok(err)
	s.h = h
	s.bind(h.SetCurrentNamespace, h.KeysInNamespace, h.Clear)
}

func (s *modelList[N]) randElems(e *modelEnv) []string {
	es := make([]string, e.r.IntN(4))
	for i := range es {
		es[i] = e.randString()
	}
	return es
}

func (s *modelList[N]) op(e *modelEnv) {
	e.t.Helper()
	pk := s.pk(e)
	switch e.r.IntN(8) {
	case 0, 1:
		v := e.randString()
		e.note("%s.Add(%q)", s.nm, v)
		if e.noKey(s.h.Add(v)) {
			return
		}
		s.data[pk] = append(s.data[pk], v)
	case 2:
		es := s.randElems(e)
		e.note("%s.AddAll(%q)", s.nm, es)
		if e.noKey(s.h.AddAll(es)) {
			return
		}
		if len(es) > 0 {
			s.data[pk] = append(s.data[pk], es...)
		}
	case 3:
		es := s.randElems(e)
		e.note("%s.Update(%q)", s.nm, es)
		if e.noKey(s.h.Update(es)) {
			return
		}
		if len(es) == 0 {
			delete(s.data, pk)
		} else {
			s.data[pk] = slices.Clone(es)
		}
	case 4:
		s.doClear(e)
	case 5:
		target, sources := s.pickNS(e), s.pickSources(e)
		e.note("%s.MergeNamespaces(%d, %d)", s.nm, target, sources)
		if e.noKey(s.h.MergeNamespaces(s.ns.of(target), s.nsOf(sources)...)) {
			return
		}
		tk := modelPK{e.cur, target}
		merged := slices.Clone(s.data[tk])
		for _, src := range sources {
			sk := modelPK{e.cur, src}
			if src == target {
				continue
			}
			merged = append(merged, s.data[sk]...)
			delete(s.data, sk)
		}
		if len(merged) > 0 {
			s.data[tk] = merged
		}
	default:
		e.note("%s.Get()", s.nm)
		s.checkCurrent(e)
	}
}

func (s *modelList[N]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	got, err := s.h.Get()
	if e.noKey(err) {
		return
	}
	want := s.data[s.pk(e)]
	if len(want) == 0 && got != nil {
		e.fatalf("%s.Get() at %q/%d = %q (non-nil), want nil", s.nm, e.cur, s.curNS, got)
	}
	if !slices.Equal(got, want) {
		e.fatalf("%s.Get() at %q/%d = %q, want %q", s.nm, e.cur, s.curNS, got, want)
	}
}

func (s *modelList[N]) checkClosed(e *modelEnv) {
	if err := s.h.Add("x"); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.Add() after Close: %v, want ErrClosed", s.nm, err)
	}
}

// --- Map ---

type modelMap[N any] struct {
	modelBase[N, map[int64]string]
	h *backend.Map[string, N, int64, string]
}

func (s *modelMap[N]) register(e *modelEnv) {
	h, err := backend.GetMapNS(e.b, s.ns.codec, backend.MapDescriptor[int64, string]{Name: s.nm, KeyCodec: backend.Int64, ValueCodec: backend.String})
	e.ok(err)
	s.h = h
	s.bind(h.SetCurrentNamespace, h.KeysInNamespace, h.Clear)
}

func (s *modelMap[N]) randUK(e *modelEnv) int64 {
	if e.r.IntN(20) == 0 {
		return []int64{math.MinInt64, math.MaxInt64}[e.r.IntN(2)]
	}
	return int64(e.r.IntN(9)) - 4
}

// put records uk = v in the model.
func (s *modelMap[N]) put(pk modelPK, uk int64, v string) {
	m := s.data[pk]
	if m == nil {
		m = map[int64]string{}
		s.data[pk] = m
	}
	m[uk] = v
}

// wantEntries returns the model's entries at pk in iteration order.
func (s *modelMap[N]) wantEntries(pk modelPK) []backend.Entry[int64, string] {
	m := s.data[pk]
	var out []backend.Entry[int64, string]
	for _, uk := range slices.Sorted(maps.Keys(m)) {
		out = append(out, backend.Entry[int64, string]{Key: uk, Value: m[uk]})
	}
	return out
}

// collect drains an iterator of the map, or returns ok=false if it ended
// with ErrNoCurrentKey as it must without a current key.
func modelCollect[T any](e *modelEnv, seq iter.Seq2[T, error]) (out []T, ok bool) {
	e.t.Helper()
	for v, err := range seq {
		if err != nil {
			if e.noKey(err) {
				return nil, false
			}
		}
		out = append(out, v)
	}
	if !e.curSet {
		e.fatalf("iteration without a current key ended without ErrNoCurrentKey")
	}
	return out, true
}

func (s *modelMap[N]) op(e *modelEnv) {
	e.t.Helper()
	pk := s.pk(e)
	switch e.r.IntN(13) {
	case 0, 1:
		uk, v := s.randUK(e), e.randString()
		e.note("%s.Put(%d, %q)", s.nm, uk, v)
		if e.noKey(s.h.Put(uk, v)) {
			return
		}
		s.put(pk, uk, v)
	case 2:
		// A sequence that may repeat a key: the last value wins.
		var kvs [][2]any
		for range e.r.IntN(5) {
			kvs = append(kvs, [2]any{s.randUK(e), e.randString()})
		}
		e.note("%s.PutAll(%v)", s.nm, kvs)
		seq := func(yield func(int64, string) bool) {
			for _, kv := range kvs {
				if !yield(kv[0].(int64), kv[1].(string)) {
					return
				}
			}
		}
		if e.noKey(s.h.PutAll(seq)) {
			return
		}
		for _, kv := range kvs {
			s.put(pk, kv[0].(int64), kv[1].(string))
		}
	case 3:
		uk := s.randUK(e)
		e.note("%s.Remove(%d)", s.nm, uk)
		if e.noKey(s.h.Remove(uk)) {
			return
		}
		if m := s.data[pk]; m != nil {
			delete(m, uk)
			if len(m) == 0 {
				delete(s.data, pk)
			}
		}
	case 4:
		s.doClear(e)
	case 5:
		uk := s.randUK(e)
		e.note("%s.Get(%d)", s.nm, uk)
		v, ok, err := s.h.Get(uk)
		if e.noKey(err) {
			return
		}
		want, wok := s.data[pk][uk]
		if v != want || ok != wok {
			e.fatalf("%s.Get(%d) at %q/%d = %q, %v; want %q, %v", s.nm, uk, e.cur, s.curNS, v, ok, want, wok)
		}
	case 6:
		uk := s.randUK(e)
		e.note("%s.Contains(%d)", s.nm, uk)
		ok, err := s.h.Contains(uk)
		if e.noKey(err) {
			return
		}
		if _, wok := s.data[pk][uk]; ok != wok {
			e.fatalf("%s.Contains(%d) at %q/%d = %v, want %v", s.nm, uk, e.cur, s.curNS, ok, wok)
		}
	case 7:
		e.note("%s.IsEmpty()", s.nm)
		empty, err := s.h.IsEmpty()
		if e.noKey(err) {
			return
		}
		if want := len(s.data[pk]) == 0; empty != want {
			e.fatalf("%s.IsEmpty() at %q/%d = %v, want %v", s.nm, e.cur, s.curNS, empty, want)
		}
	case 8:
		e.note("%s.Keys()", s.nm)
		got, ok := modelCollect(e, s.h.Keys())
		if !ok {
			return
		}
		if want := slices.Sorted(maps.Keys(s.data[pk])); !slices.Equal(got, want) {
			e.fatalf("%s.Keys() at %q/%d = %v, want %v", s.nm, e.cur, s.curNS, got, want)
		}
	case 9:
		e.note("%s.Values()", s.nm)
		got, ok := modelCollect(e, s.h.Values())
		if !ok {
			return
		}
		var want []string
		for _, en := range s.wantEntries(pk) {
			want = append(want, en.Value)
		}
		if !slices.Equal(got, want) {
			e.fatalf("%s.Values() at %q/%d = %q, want %q", s.nm, e.cur, s.curNS, got, want)
		}
	case 10:
		// Write inside the loop: the iteration keeps its point-in-time
		// view.
		want := s.wantEntries(pk)
		uk, v := s.randUK(e), e.randString()
		e.note("%s.Entries() with Put(%d, %q) and Remove(first) inside the loop", s.nm, uk, v)
		var got []backend.Entry[int64, string]
		first := true
		for en, err := range s.h.Entries() {
			if err != nil {
				if e.noKey(err) {
					return
				}
			}
			got = append(got, en)
			if first {
				first = false
				e.ok(s.h.Put(uk, v))
				e.ok(s.h.Remove(en.Key))
				m := s.data[pk]
				m[uk] = v
				delete(m, en.Key)
				if len(m) == 0 {
					delete(s.data, pk)
				}
			}
		}
		if !e.curSet {
			e.fatalf("Entries() without a current key ended without ErrNoCurrentKey")
		}
		if !slices.Equal(got, want) {
			e.fatalf("%s.Entries() at %q/%d with writes inside = %v, want %v", s.nm, e.cur, s.curNS, got, want)
		}
	case 11:
		// Stopping early is allowed.
		e.note("%s.Entries() with break", s.nm)
		for _, err := range s.h.Entries() {
			if err != nil {
				e.noKey(err)
			}
			break
		}
	default:
		e.note("%s.Entries()", s.nm)
		s.checkCurrent(e)
	}
}

func (s *modelMap[N]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	got, ok := modelCollect(e, s.h.Entries())
	if !ok {
		return
	}
	if want := s.wantEntries(s.pk(e)); !slices.Equal(got, want) {
		e.fatalf("%s.Entries() at %q/%d = %v, want %v", s.nm, e.cur, s.curNS, got, want)
	}
}

func (s *modelMap[N]) checkClosed(e *modelEnv) {
	if _, err := s.h.Contains(1); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.Contains() after Close: %v, want ErrClosed", s.nm, err)
	}
	for _, err := range s.h.Entries() {
		if !errors.Is(err, backend.ErrClosed) {
			e.fatalf("%s.Entries() after Close: %v, want ErrClosed", s.nm, err)
		}
	}
	for _, err := range s.h.KeysInNamespace(s.ns.of(0)) {
		if !errors.Is(err, backend.ErrClosed) {
			e.fatalf("%s.KeysInNamespace() after Close: %v, want ErrClosed", s.nm, err)
		}
	}
}

// --- Reducing (sum) ---

type modelReducing[N any] struct {
	modelBase[N, int64]
	h *backend.Reducing[string, N, int64]
}

func (s *modelReducing[N]) register(e *modelEnv) {
	h, err := backend.GetReducingNS(e.b, s.ns.codec, backend.ReducingDescriptor[int64]{Name: s.nm, Codec: backend.Int64,
		Reduce: func(a, b int64) int64 { return a + b }})
	e.ok(err)
	s.h = h
	s.bind(h.SetCurrentNamespace, h.KeysInNamespace, h.Clear)
}

func (s *modelReducing[N]) op(e *modelEnv) {
	e.t.Helper()
	pk := s.pk(e)
	switch e.r.IntN(5) {
	case 0, 1:
		v := e.randInt64()
		e.note("%s.Add(%d)", s.nm, v)
		if e.noKey(s.h.Add(v)) {
			return
		}
		s.data[pk] += v
	case 2:
		s.doClear(e)
	case 3:
		target, sources := s.pickNS(e), s.pickSources(e)
		e.note("%s.MergeNamespaces(%d, %d)", s.nm, target, sources)
		if e.noKey(s.h.MergeNamespaces(s.ns.of(target), s.nsOf(sources)...)) {
			return
		}
		tk := modelPK{e.cur, target}
		sum, have := s.data[tk]
		for _, src := range sources {
			sk := modelPK{e.cur, src}
			if v, ok := s.data[sk]; ok && src != target {
				sum += v
				have = true
				delete(s.data, sk)
			}
		}
		if have {
			s.data[tk] = sum
		}
	default:
		e.note("%s.Get()", s.nm)
		s.checkCurrent(e)
	}
}

func (s *modelReducing[N]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	v, ok, err := s.h.Get()
	if e.noKey(err) {
		return
	}
	want, wok := s.data[s.pk(e)]
	if ok != wok || v != want {
		e.fatalf("%s.Get() at %q/%d = %d, %v; want %d, %v", s.nm, e.cur, s.curNS, v, ok, want, wok)
	}
}

func (s *modelReducing[N]) checkClosed(e *modelEnv) {
	if err := s.h.Add(1); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.Add() after Close: %v, want ErrClosed", s.nm, err)
	}
}

// --- Aggregating (count and sum, JSON accumulator) ---

type modelAcc struct {
	N   int64 `json:"n"`
	Sum int64 `json:"sum"`
}

type modelCountSum struct{}

func (modelCountSum) CreateAccumulator() modelAcc { return modelAcc{} }
func (modelCountSum) Add(in int64, acc modelAcc) modelAcc {
	return modelAcc{N: acc.N + 1, Sum: acc.Sum + in}
}
func (modelCountSum) Result(acc modelAcc) string { return fmt.Sprintf("%d/%d", acc.N, acc.Sum) }
func (modelCountSum) Merge(a, b modelAcc) modelAcc {
	return modelAcc{N: a.N + b.N, Sum: a.Sum + b.Sum}
}

type modelAggregating[N any] struct {
	modelBase[N, modelAcc]
	h *backend.Aggregating[string, N, int64, modelAcc, string]
}

func (s *modelAggregating[N]) register(e *modelEnv) {
	h, err := backend.GetAggregatingNS(e.b, s.ns.codec, backend.AggregatingDescriptor[int64, modelAcc, string]{
		Name: s.nm, Codec: backend.JSON[modelAcc](), Function: modelCountSum{}})
	e.ok(err)
	s.h = h
	s.bind(h.SetCurrentNamespace, h.KeysInNamespace, h.Clear)
}

func (s *modelAggregating[N]) op(e *modelEnv) {
	e.t.Helper()
	pk := s.pk(e)
	switch e.r.IntN(5) {
	case 0, 1:
		v := e.randInt64()
		e.note("%s.Add(%d)", s.nm, v)
		if e.noKey(s.h.Add(v)) {
			return
		}
		s.data[pk] = modelCountSum{}.Add(v, s.data[pk])
	case 2:
		s.doClear(e)
	case 3:
		target, sources := s.pickNS(e), s.pickSources(e)
		e.note("%s.MergeNamespaces(%d, %d)", s.nm, target, sources)
		if e.noKey(s.h.MergeNamespaces(s.ns.of(target), s.nsOf(sources)...)) {
			return
		}
		tk := modelPK{e.cur, target}
		acc, have := s.data[tk]
		for _, src := range sources {
			sk := modelPK{e.cur, src}
			if v, ok := s.data[sk]; ok && src != target {
				acc = modelCountSum{}.Merge(acc, v)
				have = true
				delete(s.data, sk)
			}
		}
		if have {
			s.data[tk] = acc
		}
	default:
		e.note("%s.Get()", s.nm)
		s.checkCurrent(e)
	}
}

func (s *modelAggregating[N]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	v, ok, err := s.h.Get()
	if e.noKey(err) {
		return
	}
	acc, wok := s.data[s.pk(e)]
	want := ""
	if wok {
		want = modelCountSum{}.Result(acc)
	}
	if ok != wok || v != want {
		e.fatalf("%s.Get() at %q/%d = %q, %v; want %q, %v", s.nm, e.cur, s.curNS, v, ok, want, wok)
	}
}

func (s *modelAggregating[N]) checkClosed(e *modelEnv) {
	if err := s.h.MergeNamespaces(s.ns.of(0)); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.MergeNamespaces() after Close: %v, want ErrClosed", s.nm, err)
	}
}

// TestModelMergeNamespacesRepeatedSource checks MergeNamespaces when a
// source namespace is listed twice: its contents move to the target once
// and the source is cleared, as when the sources are taken one at a time
// (and as Flink's RocksDB backend does).
func TestModelMergeNamespacesRepeatedSource(t *testing.T) {
	b, err := backend.Open(backend.String, backend.Options{Dir: t.TempDir(), MemTableSize: 1 << 20, BlockCacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetCurrentKey("k"); err != nil {
		t.Fatal(err)
	}
	l, err := backend.GetListNS(b, backend.Int64, backend.ListDescriptor[string]{Name: "l", Codec: backend.String})
	if err != nil {
		t.Fatal(err)
	}
	r, err := backend.GetReducingNS(b, backend.Int64, backend.ReducingDescriptor[int64]{Name: "r", Codec: backend.Int64,
		Reduce: func(a, b int64) int64 { return a + b }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := backend.GetAggregatingNS(b, backend.Int64, backend.AggregatingDescriptor[int64, modelAcc, string]{
		Name: "a", Codec: backend.JSON[modelAcc](), Function: modelCountSum{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []interface{ SetCurrentNamespace(int64) error }{l, r, a} {
		if err := s.SetCurrentNamespace(1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Add("x"); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(5); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(5); err != nil {
		t.Fatal(err)
	}
	if err := l.MergeNamespaces(2, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := r.MergeNamespaces(2, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.MergeNamespaces(2, 1, 1); err != nil {
		t.Fatal(err)
	}
	for _, s := range []interface{ SetCurrentNamespace(int64) error }{l, r, a} {
		if err := s.SetCurrentNamespace(2); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := l.Get(); err != nil || !slices.Equal(got, []string{"x"}) {
		t.Errorf("list: MergeNamespaces(2, 1, 1) gave %q, %v; want [x]", got, err)
	}
	if got, _, err := r.Get(); err != nil || got != 5 {
		t.Errorf("reducing: MergeNamespaces(2, 1, 1) gave %d, %v; want 5", got, err)
	}
	if got, _, err := a.Get(); err != nil || got != "1/5" {
		t.Errorf("aggregating: MergeNamespaces(2, 1, 1) gave %q, %v; want 1/5", got, err)
	}
}
