package backend_test

// What the state models of TestModel share: the model of a state's data
// (every stored entry with its TTL stamp, per key and namespace), its TTL
// as the model judges it, namespaces, KeysInNamespace, clearing a
// namespace, and the choice of a run's states. The kinds are in
// model_kinds_test.go and model_map_test.go.

import (
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/ttl"
)

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

// modelStamped is a stored value and its TTL stamp (ms).
type modelStamped[V any] struct {
	v  V
	ts int64
}

// modelTTL is a state's time-to-live as the model sees it.
type modelTTL struct {
	cfg    ttl.Config
	ms     int64 // 0: TTL off
	onRead bool  // OnReadAndWrite: reads restamp
	// exact says that only the state's own reads and writes remove
	// entries (no background or access cleanup, no FullSnapshot
	// filter), so the model knows every stored entry, expired or not.
	exact bool
}

// live is Flink's predicate: an entry is expired iff stamp + ttl <= now.
func (x modelTTL) live(ts, now int64) bool { return x.ms == 0 || ts+x.ms > now }

func (x modelTTL) String() string {
	if x.ms == 0 {
		return "no TTL"
	}
	upd := "OnCreateAndWrite"
	if x.onRead {
		upd = "OnReadAndWrite"
	}
	c := x.cfg.Cleanup
	return fmt.Sprintf("TTL %dms %s (background %v, incremental %v/%d/%v, full snapshot %v)", x.ms, upd,
		!c.DisableBackground, c.OnAccess.Enabled, c.OnAccess.Size, c.OnAccess.OnEveryKey, c.FullSnapshot)
}

// modelState is one state under test together with its model.
type modelState interface {
	name() string
	// register (re)registers the state on instance in; its namespace
	// there becomes the zero namespace.
	register(e *modelEnv, in *modelInst)
	// op performs one random operation on the current key, checking reads.
	op(e *modelEnv)
	// setNS sets a random current namespace.
	setNS(e *modelEnv)
	// useNS sets namespace ns.
	useNS(e *modelEnv, ns int64)
	// checkCurrent compares the current key and namespace with the model.
	checkCurrent(e *modelEnv)
	// checkKeysIn compares KeysInNamespace(ns), over every instance, with
	// the model.
	checkKeysIn(e *modelEnv, ns int64)
	// checkKeysHere compares KeysInNamespace of the current namespace on
	// the current instance with the model.
	checkKeysHere(e *modelEnv)
	// clearNamespace clears ns for every key KeysInNamespace yields, from
	// inside the iteration, on every instance.
	clearNamespace(e *modelEnv, ns int64)
	// namespaces returns the namespaces the state uses.
	namespaces() []int64
	// checkClosed checks that the handle of the closed instance in refuses
	// use.
	checkClosed(e *modelEnv, in *modelInst)
	// data returns a deep copy of the model's data; setData installs a
	// deep copy of d.
	data() any
	setData(d any)
	// ttlOf is the state's TTL.
	ttlOf() modelTTL
	// expiries returns the instants (ms) after now at which stored
	// entries (of key, if not "") expire.
	expiries(now int64, key string) []int64
}

// modelBinding is what modelBase needs of a state's handle on one
// instance.
type modelBinding[N any] struct {
	setNS  func(N) error
	keysIn func(N) iter.Seq2[string, error]
	clear  func() error
}

// modelBase is what every state model shares: the namespaces, the TTL,
// the model's data per (key, namespace), and the handles of the instances.
type modelBase[N, X any] struct {
	nm    string
	ns    modelNS[N]
	ttl   modelTTL
	store map[modelPK]X
	bind  map[*modelInst]modelBinding[N]
	curNS map[*modelInst]int64
	// live reports whether x holds an entry a read would return at now.
	live func(s *modelBase[N, X], x X, now int64) bool
	// clone deep-copies x.
	clone func(x X) X
	// stamps returns the TTL stamps in x.
	stamps func(x X) []int64
}

func newModelBase[N, X any](name string, ns modelNS[N], t modelTTL, live func(*modelBase[N, X], X, int64) bool, clone func(X) X, stamps func(X) []int64) modelBase[N, X] {
	return modelBase[N, X]{nm: name, ns: ns, ttl: t, store: map[modelPK]X{}, bind: map[*modelInst]modelBinding[N]{},
		curNS: map[*modelInst]int64{}, live: live, clone: clone, stamps: stamps}
}

func (s *modelBase[N, X]) bindTo(in *modelInst, b modelBinding[N]) {
	s.bind[in] = b
	s.curNS[in] = 0
}

func (s *modelBase[N, X]) name() string        { return s.nm }
func (s *modelBase[N, X]) namespaces() []int64 { return s.ns.all }

func (s *modelBase[N, X]) data() any {
	c := make(map[modelPK]X, len(s.store))
	for pk, x := range s.store {
		c[pk] = s.clone(x)
	}
	return c
}

func (s *modelBase[N, X]) setData(d any) {
	s.store = map[modelPK]X{}
	for pk, x := range d.(map[modelPK]X) {
		s.store[pk] = s.clone(x)
	}
}

func (s *modelBase[N, X]) ttlOf() modelTTL { return s.ttl }

func (s *modelBase[N, X]) expiries(now int64, key string) []int64 {
	if s.ttl.ms == 0 {
		return nil
	}
	var out []int64
	for pk, x := range s.store {
		if key != "" && pk.key != key {
			continue
		}
		for _, ts := range s.stamps(x) {
			if ts+s.ttl.ms > now {
				out = append(out, ts+s.ttl.ms)
			}
		}
	}
	return out
}

// pk is the current key and namespace.
func (s *modelBase[N, X]) pk(e *modelEnv) modelPK {
	return modelPK{key: e.in().cur, ns: s.curNS[e.in()]}
}

func (s *modelBase[N, X]) pickNS(e *modelEnv) int64 { return s.ns.all[e.r.IntN(len(s.ns.all))] }

func (s *modelBase[N, X]) setNS(e *modelEnv) { s.useNS(e, s.pickNS(e)) }

func (s *modelBase[N, X]) useNS(e *modelEnv, ns int64) {
	e.t.Helper()
	e.note("%s.SetCurrentNamespace(%d)", s.nm, ns)
	e.ok(s.bind[e.in()].setNS(s.ns.of(ns)))
	s.curNS[e.in()] = ns
}

func (s *modelBase[N, X]) doClear(e *modelEnv) {
	e.t.Helper()
	e.note("%s.Clear()", s.nm)
	if e.noKey(s.bind[e.in()].clear()) {
		return
	}
	delete(s.store, s.pk(e))
}

// keysIn returns the keys with an entry in namespace ns that instance in
// owns: those a read would find (must), and those that may be stored
// (may). Where the state is exact, both are the keys the model stores.
func (s *modelBase[N, X]) keysIn(e *modelEnv, in *modelInst, ns int64) (must, may map[string]bool) {
	must, may = map[string]bool{}, map[string]bool{}
	now := e.now()
	for pk, x := range s.store {
		if pk.ns != ns || !in.owns(e, pk.key) {
			continue
		}
		may[pk.key] = true
		if s.live(s, x, now) {
			must[pk.key] = true
		}
	}
	if s.ttl.exact {
		must = may
	}
	return must, may
}

// yielded drains KeysInNamespace(ns) of instance in, checking that every
// key comes once and belongs to the instance.
func (s *modelBase[N, X]) yielded(e *modelEnv, in *modelInst, ns int64) map[string]bool {
	e.t.Helper()
	got := map[string]bool{}
	for k, err := range s.bind[in].keysIn(s.ns.of(ns)) {
		e.ok(err)
		if got[k] {
			e.fatalf("%s.KeysInNamespace(%d) yielded %q twice", s.nm, ns, k)
		}
		if !in.owns(e, k) {
			e.fatalf("%s.KeysInNamespace(%d) of instance %s yielded %q of another key group", s.nm, ns, in.kgs, k)
		}
		got[k] = true
	}
	return got
}

// checkYielded checks that got holds every key of must and no key outside
// may.
func (s *modelBase[N, X]) checkYielded(e *modelEnv, ns int64, got, must, may map[string]bool) {
	e.t.Helper()
	var missing, extra []string
	for k := range must {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !may[k] {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(extra)
		e.fatalf("%s (%s).KeysInNamespace(%d): missing %q, unexpected %q", s.nm, s.ttl, ns, missing, extra)
	}
}

func (s *modelBase[N, X]) checkKeysIn(e *modelEnv, ns int64) {
	e.t.Helper()
	e.note("%s.KeysInNamespace(%d)", s.nm, ns)
	for _, in := range e.insts {
		must, may := s.keysIn(e, in, ns)
		s.checkYielded(e, ns, s.yielded(e, in, ns), must, may)
	}
}

func (s *modelBase[N, X]) checkKeysHere(e *modelEnv) {
	e.t.Helper()
	in, ns := e.in(), s.curNS[e.in()]
	e.note("%s.KeysInNamespace(%d) on this instance", s.nm, ns)
	must, may := s.keysIn(e, in, ns)
	s.checkYielded(e, ns, s.yielded(e, in, ns), must, may)
}

// clearNamespace is how a framework applies a function to every key: the
// loop body sets each key and clears its state while the iteration goes on
// over its point-in-time view.
func (s *modelBase[N, X]) clearNamespace(e *modelEnv, ns int64) {
	e.t.Helper()
	e.note("%s: clear namespace %d of every key, inside KeysInNamespace", s.nm, ns)
	keep := e.ci
	for i, in := range e.insts {
		e.ci = i
		must, may := s.keysIn(e, in, ns)
		got := map[string]bool{}
		for k, err := range s.bind[in].keysIn(s.ns.of(ns)) {
			e.ok(err)
			got[k] = true
			e.ok(in.b.SetCurrentKey(k))
			in.cur, in.curSet = k, true
			s.useNS(e, ns)
			e.ok(s.bind[in].clear())
		}
		s.checkYielded(e, ns, got, must, may)
		// What was not yielded is not stored: the model forgets it too.
		for pk := range s.store {
			if pk.ns == ns && in.owns(e, pk.key) {
				delete(s.store, pk)
			}
		}
	}
	e.ci = keep
	s.checkKeysIn(e, ns)
}

// pickSources returns up to three distinct namespaces, possibly including
// target; half the time they are namespaces in which the current key has
// entries, so that merges have something to merge. (Repeated sources are
// covered by TestModelMergeNamespacesRepeatedSource.)
func (s *modelBase[N, X]) pickSources(e *modelEnv) []int64 {
	all := s.ns.all
	if e.r.IntN(2) == 0 {
		var stored []int64
		for _, ns := range s.ns.all {
			if _, ok := s.store[modelPK{e.in().cur, ns}]; ok {
				stored = append(stored, ns)
			}
		}
		if len(stored) > 0 {
			all = stored
		}
	}
	var out []int64
	for _, i := range e.r.Perm(len(all))[:min(e.r.IntN(4), len(all))] {
		out = append(out, all[i])
	}
	return out
}

// afterMerge mostly makes the target of a merge the current namespace, as
// a framework reads the merged window, so that the check after the
// operation reads what the merge wrote.
func (s *modelBase[N, X]) afterMerge(e *modelEnv, target int64) {
	if e.r.IntN(4) != 0 {
		s.useNS(e, target)
	}
}

func (s *modelBase[N, X]) nsOf(nss []int64) []N {
	out := make([]N, len(nss))
	for i, n := range nss {
		out[i] = s.ns.of(n)
	}
	return out
}

// takeSources removes the stored entries of the current key in namespaces
// sources other than target, each once, and returns them in order: what
// MergeNamespaces takes.
func (s *modelBase[N, X]) takeSources(e *modelEnv, target int64, sources []int64) []X {
	var out []X
	seen := map[int64]bool{target: true}
	for _, src := range sources {
		if seen[src] {
			continue
		}
		seen[src] = true
		sk := modelPK{e.in().cur, src}
		if x, ok := s.store[sk]; ok {
			out = append(out, x)
			delete(s.store, sk)
		}
	}
	return out
}

// modelStates returns the states of a run: for each kind, one in int64
// namespaces without TTL, one with TTL under each update type, and one in
// the void namespace with TTL off or on (the run's random choice). TTL
// durations are 200 ms to 2 s; values, lists and maps get random cleanup
// strategies besides reads. Reducing and aggregating states stay exact:
// whether an expired source of MergeNamespaces is still stored decides
// whether the target is restamped, so cleanup would make their expiry
// unpredictable.
func modelStates(e *modelEnv) []modelState {
	const (
		off = iota
		onCreate
		onRead
		random
	)
	pick := func(kind int, cleanup bool) modelTTL {
		if kind == random {
			kind = e.r.IntN(3)
		}
		x := modelTTL{exact: true}
		if kind == off {
			return x
		}
		x.onRead = kind == onRead
		if x.onRead {
			x.cfg.Update = ttl.OnReadAndWrite
		}
		x.ms = 200 * int64(1+e.r.IntN(10))
		x.cfg.TTL = time.Duration(x.ms) * time.Millisecond
		x.cfg.Cleanup.DisableBackground = true
		if cleanup && e.r.IntN(2) == 0 {
			x.exact = false
			x.cfg.Cleanup = ttl.Cleanup{
				DisableBackground: e.r.IntN(2) == 0,
				OnAccess:          ttl.AccessCleanup{Enabled: e.r.IntN(2) == 0, Size: 1 + e.r.IntN(5), OnEveryKey: e.r.IntN(2) == 0},
				FullSnapshot:      e.r.IntN(2) == 0,
			}
		}
		return x
	}
	var out []modelState
	for _, v := range []struct {
		suffix string
		kind   int
	}{{"", off}, {"-ttl", onCreate}, {"-read", onRead}, {"-void", random}} {
		ns := modelInt64NS
		if v.suffix == "-void" {
			out = append(out,
				newModelValue("value"+v.suffix, modelVoidNS, pick(v.kind, true)),
				newModelList("list"+v.suffix, modelVoidNS, pick(v.kind, true)),
				newModelMap("map"+v.suffix, modelVoidNS, pick(v.kind, true)),
				newModelReducing("reducing"+v.suffix, modelVoidNS, pick(v.kind, false)),
				newModelAggregating("aggregating"+v.suffix, modelVoidNS, pick(v.kind, false)))
			continue
		}
		out = append(out,
			newModelValue("value"+v.suffix, ns, pick(v.kind, true)),
			newModelList("list"+v.suffix, ns, pick(v.kind, true)),
			newModelMap("map"+v.suffix, ns, pick(v.kind, true)),
			newModelReducing("reducing"+v.suffix, ns, pick(v.kind, false)),
			newModelAggregating("aggregating"+v.suffix, ns, pick(v.kind, false)))
	}
	return out
}
