package backend_test

// The value, list, reducing and aggregating state models of TestModel
// (the map's is in model_map_test.go): the random operations on the
// current key of the current instance, mirrored in the model with their
// TTL stamps, and the checks of what a read returns.

import (
	"errors"
	"slices"

	"github.com/pebblestate/pebblestate/backend"
)

// readSingle is a read of a single-stamped entry (a value, an
// accumulator): an expired entry is removed and not returned, a live one
// is restamped under OnReadAndWrite.
func readSingle[N, V any](e *modelEnv, s *modelBase[N, modelStamped[V]], pk modelPK) (V, bool) {
	x, ok := s.store[pk]
	now := e.now()
	switch {
	case !ok:
		var zero V
		return zero, false
	case !s.ttl.live(x.ts, now):
		delete(s.store, pk)
		var zero V
		return zero, false
	case s.ttl.onRead:
		x.ts = now
		s.store[pk] = x
	}
	return x.v, true
}

func liveSingle[N, V any](s *modelBase[N, modelStamped[V]], x modelStamped[V], now int64) bool {
	return s.ttl.live(x.ts, now)
}

func cloneSingle[V any](x modelStamped[V]) modelStamped[V] { return x }

func stampSingle[V any](x modelStamped[V]) []int64 { return []int64{x.ts} }

// --- Value ---

type modelValue[N any] struct {
	modelBase[N, modelStamped[int64]]
	h map[*modelInst]*backend.Value[string, N, int64]
}

func newModelValue[N any](name string, ns modelNS[N], t modelTTL) *modelValue[N] {
	return &modelValue[N]{modelBase: newModelBase(name, ns, t, liveSingle[N, int64], cloneSingle[int64], stampSingle[int64]),
		h: map[*modelInst]*backend.Value[string, N, int64]{}}
}

func (s *modelValue[N]) register(e *modelEnv, in *modelInst) {
	h, err := backend.GetValueNS(in.b, s.ns.codec, backend.ValueDescriptor[int64]{Name: s.nm, Codec: backend.Int64, TTL: s.ttl.cfg})
	e.ok(err)
	s.h[in] = h
	s.bindTo(in, modelBinding[N]{h.SetCurrentNamespace, h.KeysInNamespace, h.Clear})
}

func (s *modelValue[N]) op(e *modelEnv) {
	e.t.Helper()
	switch e.r.IntN(5) {
	case 0, 1:
		v := e.randInt64()
		e.note("%s.Update(%d)", s.nm, v)
		if e.noKey(s.h[e.in()].Update(v)) {
			return
		}
		s.store[s.pk(e)] = modelStamped[int64]{v, e.now()}
	case 2:
		s.doClear(e)
	default:
		e.note("%s.Get()", s.nm)
		s.checkCurrent(e)
	}
}

func (s *modelValue[N]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	v, ok, err := s.h[e.in()].Get()
	if e.noKey(err) {
		return
	}
	want, wok := readSingle(e, &s.modelBase, s.pk(e))
	if ok != wok || v != want {
		e.fatalf("%s.Get() at %q/%d = %d, %v; want %d, %v", s.nm, e.in().cur, s.curNS[e.in()], v, ok, want, wok)
	}
}

func (s *modelValue[N]) checkClosed(e *modelEnv, in *modelInst) {
	if _, _, err := s.h[in].Get(); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.Get() after Close: %v, want ErrClosed", s.nm, err)
	}
}

// --- List: every element has its own stamp ---

type modelList[N any] struct {
	modelBase[N, []modelStamped[string]]
	h map[*modelInst]*backend.List[string, N, string]
}

func newModelList[N any](name string, ns modelNS[N], t modelTTL) *modelList[N] {
	live := func(s *modelBase[N, []modelStamped[string]], l []modelStamped[string], now int64) bool {
		return slices.ContainsFunc(l, func(x modelStamped[string]) bool { return s.ttl.live(x.ts, now) })
	}
	stamps := func(l []modelStamped[string]) []int64 {
		var out []int64
		for _, x := range l {
			out = append(out, x.ts)
		}
		return out
	}
	return &modelList[N]{modelBase: newModelBase(name, ns, t, live, slices.Clone[[]modelStamped[string]], stamps),
		h: map[*modelInst]*backend.List[string, N, string]{}}
}

func (s *modelList[N]) register(e *modelEnv, in *modelInst) {
	h, err := backend.GetListNS(in.b, s.ns.codec, backend.ListDescriptor[string]{Name: s.nm, Codec: backend.String, TTL: s.ttl.cfg})
	e.ok(err)
	s.h[in] = h
	s.bindTo(in, modelBinding[N]{h.SetCurrentNamespace, h.KeysInNamespace, h.Clear})
}

func (s *modelList[N]) randElems(e *modelEnv) []string {
	es := make([]string, e.r.IntN(4))
	for i := range es {
		es[i] = e.randString()
	}
	return es
}

// stamped stamps es with now.
func (s *modelList[N]) stamped(e *modelEnv, es []string) []modelStamped[string] {
	out := make([]modelStamped[string], len(es))
	for i, v := range es {
		out[i] = modelStamped[string]{v, e.now()}
	}
	return out
}

// read is a read of the list at pk: expired elements are dropped from
// the stored list, live ones restamped under OnReadAndWrite.
func (s *modelList[N]) read(e *modelEnv, pk modelPK) []string {
	now := e.now()
	var out []string
	var keep []modelStamped[string]
	for _, x := range s.store[pk] {
		if !s.ttl.live(x.ts, now) {
			continue
		}
		if s.ttl.onRead {
			x.ts = now
		}
		keep = append(keep, x)
		out = append(out, x.v)
	}
	if len(keep) == 0 {
		delete(s.store, pk)
	} else {
		s.store[pk] = keep
	}
	return out
}

func (s *modelList[N]) op(e *modelEnv) {
	e.t.Helper()
	h, pk := s.h[e.in()], s.pk(e)
	switch e.r.IntN(8) {
	case 0, 1:
		v := e.randString()
		e.note("%s.Add(%q)", s.nm, v)
		if e.noKey(h.Add(v)) {
			return
		}
		s.store[pk] = append(s.store[pk], s.stamped(e, []string{v})...)
	case 2:
		es := s.randElems(e)
		e.note("%s.AddAll(%q)", s.nm, es)
		if e.noKey(h.AddAll(es)) {
			return
		}
		if len(es) > 0 {
			s.store[pk] = append(s.store[pk], s.stamped(e, es)...)
		}
	case 3:
		es := s.randElems(e)
		e.note("%s.Update(%q)", s.nm, es)
		if e.noKey(h.Update(es)) {
			return
		}
		if len(es) == 0 {
			delete(s.store, pk)
		} else {
			s.store[pk] = s.stamped(e, es)
		}
	case 4:
		s.doClear(e)
	case 5:
		target, sources := s.pickNS(e), s.pickSources(e)
		e.note("%s.MergeNamespaces(%d, %d)", s.nm, target, sources)
		if e.noKey(h.MergeNamespaces(s.ns.of(target), s.nsOf(sources)...)) {
			return
		}
		// The sources' elements are appended to the target's, keeping
		// their stamps, expired or not.
		tk := modelPK{e.in().cur, target}
		merged := s.store[tk]
		for _, l := range s.takeSources(e, target, sources) {
			merged = append(merged, l...)
		}
		if len(merged) > 0 {
			s.store[tk] = merged
		}
		s.afterMerge(e, target)
	default:
		e.note("%s.Get()", s.nm)
		s.checkCurrent(e)
	}
}

func (s *modelList[N]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	got, err := s.h[e.in()].Get()
	if e.noKey(err) {
		return
	}
	want := s.read(e, s.pk(e))
	if len(want) == 0 && got != nil {
		e.fatalf("%s.Get() at %q/%d = %q (non-nil), want nil", s.nm, e.in().cur, s.curNS[e.in()], got)
	}
	if !slices.Equal(got, want) {
		e.fatalf("%s.Get() at %q/%d = %q, want %q", s.nm, e.in().cur, s.curNS[e.in()], got, want)
	}
}

func (s *modelList[N]) checkClosed(e *modelEnv, in *modelInst) {
	if err := s.h[in].Add("x"); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.Add() after Close: %v, want ErrClosed", s.nm, err)
	}
}

// --- Reducing (sum) and aggregating (sum and count): one stamped
// accumulator per key and namespace ---

// modelAccumulating is the model of reducing and aggregating state: add
// folds a value into an accumulator (or starts one), merge merges two.
type modelAccumulating[N any, A comparable] struct {
	modelBase[N, modelStamped[A]]
	add   func(acc A, had bool, in int64) A
	merge func(a, b A) A
	// handle operations on an instance
	doAdd   func(in *modelInst, v int64) error
	doGet   func(in *modelInst) (A, bool, error)
	doMerge func(in *modelInst, target N, sources ...N) error
}

func (s *modelAccumulating[N, A]) op(e *modelEnv) {
	e.t.Helper()
	pk := s.pk(e)
	switch e.r.IntN(5) {
	case 0, 1:
		v := e.randInt64()
		e.note("%s.Add(%d)", s.nm, v)
		if e.noKey(s.doAdd(e.in(), v)) {
			return
		}
		// Add reads the accumulator first: an expired one is gone.
		acc, had := readSingle(e, &s.modelBase, pk)
		s.store[pk] = modelStamped[A]{s.add(acc, had, v), e.now()}
	case 2:
		s.doClear(e)
	case 3:
		target, sources := s.pickNS(e), s.pickSources(e)
		e.note("%s.MergeNamespaces(%d, %d)", s.nm, target, sources)
		if e.noKey(s.doMerge(e.in(), s.ns.of(target), s.nsOf(sources)...)) {
			return
		}
		taken := s.takeSources(e, target, sources)
		if len(taken) == 0 {
			return // no source stored: the target is left as it is
		}
		// Expired accumulators, source or target, merge as nothing; the
		// result is stamped now, or the target goes if nothing was live.
		now := e.now()
		tk := modelPK{e.in().cur, target}
		var acc A
		have := false
		if x, ok := s.store[tk]; ok && s.ttl.live(x.ts, now) {
			taken = append(taken, x)
		}
		for _, x := range taken {
			if !s.ttl.live(x.ts, now) {
				continue
			}
			if have {
				acc = s.merge(acc, x.v)
			} else {
				acc, have = x.v, true
			}
		}
		if have {
			s.store[tk] = modelStamped[A]{acc, now}
		} else {
			delete(s.store, tk)
		}
		s.afterMerge(e, target)
	default:
		e.note("%s.Get()", s.nm)
		s.checkCurrent(e)
	}
}

func (s *modelAccumulating[N, A]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	v, ok, err := s.doGet(e.in())
	if e.noKey(err) {
		return
	}
	want, wok := readSingle(e, &s.modelBase, s.pk(e))
	if ok != wok || v != want {
		e.fatalf("%s.Get() at %q/%d = %v, %v; want %v, %v", s.nm, e.in().cur, s.curNS[e.in()], v, ok, want, wok)
	}
}

func (s *modelAccumulating[N, A]) checkClosed(e *modelEnv, in *modelInst) {
	if err := s.doMerge(in, s.ns.of(0)); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.MergeNamespaces() after Close: %v, want ErrClosed", s.nm, err)
	}
}

type modelReducing[N any] struct {
	modelAccumulating[N, int64]
	h map[*modelInst]*backend.Reducing[string, N, int64]
}

func newModelReducing[N any](name string, ns modelNS[N], t modelTTL) *modelReducing[N] {
	s := &modelReducing[N]{h: map[*modelInst]*backend.Reducing[string, N, int64]{}}
	s.modelAccumulating = modelAccumulating[N, int64]{
		modelBase: newModelBase(name, ns, t, liveSingle[N, int64], cloneSingle[int64], stampSingle[int64]),
		add: func(acc int64, had bool, in int64) int64 {
			if had {
				return sum(acc, in)
			}
			return in
		},
		merge:   sum,
		doAdd:   func(in *modelInst, v int64) error { return s.h[in].Add(v) },
		doGet:   func(in *modelInst) (int64, bool, error) { return s.h[in].Get() },
		doMerge: func(in *modelInst, target N, sources ...N) error { return s.h[in].MergeNamespaces(target, sources...) },
	}
	return s
}

func (s *modelReducing[N]) register(e *modelEnv, in *modelInst) {
	h, err := backend.GetReducingNS(in.b, s.ns.codec, backend.ReducingDescriptor[int64]{Name: s.nm, Codec: backend.Int64, Reduce: sum, TTL: s.ttl.cfg})
	e.ok(err)
	s.h[in] = h
	s.bindTo(in, modelBinding[N]{h.SetCurrentNamespace, h.KeysInNamespace, h.Clear})
}

type modelAggregating[N any] struct {
	modelAccumulating[N, avgAcc]
	h map[*modelInst]*backend.Aggregating[string, N, int64, avgAcc, avgAcc]
}

func newModelAggregating[N any](name string, ns modelNS[N], t modelTTL) *modelAggregating[N] {
	s := &modelAggregating[N]{h: map[*modelInst]*backend.Aggregating[string, N, int64, avgAcc, avgAcc]{}}
	fn := identityAvg{}
	s.modelAccumulating = modelAccumulating[N, avgAcc]{
		modelBase: newModelBase(name, ns, t, liveSingle[N, avgAcc], cloneSingle[avgAcc], stampSingle[avgAcc]),
		add: func(acc avgAcc, had bool, in int64) avgAcc {
			if !had {
				acc = fn.CreateAccumulator()
			}
			return fn.Add(in, acc)
		},
		merge:   fn.Merge,
		doAdd:   func(in *modelInst, v int64) error { return s.h[in].Add(v) },
		doGet:   func(in *modelInst) (avgAcc, bool, error) { return s.h[in].Get() },
		doMerge: func(in *modelInst, target N, sources ...N) error { return s.h[in].MergeNamespaces(target, sources...) },
	}
	return s
}

func (s *modelAggregating[N]) register(e *modelEnv, in *modelInst) {
	h, err := backend.GetAggregatingNS(in.b, s.ns.codec, backend.AggregatingDescriptor[int64, avgAcc, avgAcc]{
		Name: s.nm, Codec: backend.JSON[avgAcc](), Function: identityAvg{}, TTL: s.ttl.cfg})
	e.ok(err)
	s.h[in] = h
	s.bindTo(in, modelBinding[N]{h.SetCurrentNamespace, h.KeysInNamespace, h.Clear})
}
