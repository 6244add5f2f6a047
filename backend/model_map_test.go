package backend_test

// The map state model of TestModel: every map entry has its own TTL
// stamp; point reads and iteration remove the expired entries they meet
// and, under OnReadAndWrite, restamp the live ones they return.

import (
	"errors"
	"iter"
	"maps"
	"math"
	"slices"

	"github.com/pebblestate/pebblestate/backend"
)

type modelMapData = map[int64]modelStamped[string]

type modelMap[N any] struct {
	modelBase[N, modelMapData]
	h map[*modelInst]*backend.Map[string, N, int64, string]
}

func newModelMap[N any](name string, ns modelNS[N], t modelTTL) *modelMap[N] {
	live := func(s *modelBase[N, modelMapData], m modelMapData, now int64) bool {
		for _, x := range m {
			if s.ttl.live(x.ts, now) {
				return true
			}
		}
		return false
	}
	stamps := func(m modelMapData) []int64 {
		var out []int64
		for _, x := range m {
			out = append(out, x.ts)
		}
		return out
	}
	return &modelMap[N]{modelBase: newModelBase(name, ns, t, live, maps.Clone[modelMapData], stamps),
		h: map[*modelInst]*backend.Map[string, N, int64, string]{}}
}

func (s *modelMap[N]) register(e *modelEnv, in *modelInst) {
	h, err := backend.GetMapNS(in.b, s.ns.codec, backend.MapDescriptor[int64, string]{Name: s.nm, KeyCodec: backend.Int64, ValueCodec: backend.String, TTL: s.ttl.cfg})
	e.ok(err)
	s.h[in] = h
	s.bindTo(in, modelBinding[N]{h.SetCurrentNamespace, h.KeysInNamespace, h.Clear})
}

func (s *modelMap[N]) randUK(e *modelEnv) int64 {
	if e.r.IntN(20) == 0 {
		return []int64{math.MinInt64, math.MaxInt64}[e.r.IntN(2)]
	}
	return int64(e.r.IntN(9)) - 4
}

// put records uk = v, stamped now, in the model.
func (s *modelMap[N]) put(e *modelEnv, pk modelPK, uk int64, v string) {
	m := s.store[pk]
	if m == nil {
		m = modelMapData{}
		s.store[pk] = m
	}
	m[uk] = modelStamped[string]{v, e.now()}
}

// remove removes uk from the model.
func (s *modelMap[N]) remove(pk modelPK, uk int64) {
	if m := s.store[pk]; m != nil {
		delete(m, uk)
		if len(m) == 0 {
			delete(s.store, pk)
		}
	}
}

// getEntry is Get or Contains of uk: an expired entry is removed, a live
// one restamped under OnReadAndWrite.
func (s *modelMap[N]) getEntry(e *modelEnv, pk modelPK, uk int64) (string, bool) {
	x, ok := s.store[pk][uk]
	now := e.now()
	switch {
	case !ok:
		return "", false
	case !s.ttl.live(x.ts, now):
		s.remove(pk, uk)
		return "", false
	case s.ttl.onRead:
		s.store[pk][uk] = modelStamped[string]{x.v, now}
	}
	return x.v, true
}

// iterate is an iteration over the entries at pk, from a point-in-time
// view, in key order: expired entries met are removed, live ones
// restamped under OnReadAndWrite and returned. If body is set, it runs
// after the first live entry, and the iteration stops there if it
// returns false.
func (s *modelMap[N]) iterate(e *modelEnv, pk modelPK, body func(en backend.Entry[int64, string]) bool) []backend.Entry[int64, string] {
	view := maps.Clone(s.store[pk])
	now := e.now()
	var out []backend.Entry[int64, string]
	for _, uk := range slices.Sorted(maps.Keys(view)) {
		x := view[uk]
		live := s.ttl.live(x.ts, now)
		if cur, ok := s.store[pk][uk]; ok && cur != x {
			// The loop body wrote the key after the view was taken: the
			// removal or restamp judges what it holds now instead.
			if !s.ttl.live(cur.ts, now) {
				s.remove(pk, uk)
			} else if s.ttl.onRead {
				s.put(e, pk, uk, cur.v)
			}
		} else if ok && !live {
			s.remove(pk, uk)
		} else if ok && s.ttl.onRead {
			s.put(e, pk, uk, x.v)
		}
		if !live {
			continue
		}
		en := backend.Entry[int64, string]{Key: uk, Value: x.v}
		out = append(out, en)
		if len(out) == 1 && body != nil && !body(en) {
			break
		}
	}
	return out
}

// modelCollect drains an iterator of the map, or returns ok=false if it
// ended with ErrNoCurrentKey as it must without a current key.
func modelCollect[T any](e *modelEnv, seq iter.Seq2[T, error]) (out []T, ok bool) {
	e.t.Helper()
	for v, err := range seq {
		if err != nil && e.noKey(err) {
			return nil, false
		}
		out = append(out, v)
	}
	if !e.in().curSet {
		e.fatalf("iteration without a current key ended without ErrNoCurrentKey")
	}
	return out, true
}

func (s *modelMap[N]) op(e *modelEnv) {
	e.t.Helper()
	h, pk := s.h[e.in()], s.pk(e)
	where := func() string { return e.at(s.curNS[e.in()]) }
	switch e.r.IntN(13) {
	case 0, 1:
		uk, v := s.randUK(e), e.randString()
		e.note("%s.Put(%d, %q)", s.nm, uk, v)
		if e.noKey(h.Put(uk, v)) {
			return
		}
		s.put(e, pk, uk, v)
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
		if e.noKey(h.PutAll(seq)) {
			return
		}
		for _, kv := range kvs {
			s.put(e, pk, kv[0].(int64), kv[1].(string))
		}
	case 3:
		uk := s.randUK(e)
		e.note("%s.Remove(%d)", s.nm, uk)
		if e.noKey(h.Remove(uk)) {
			return
		}
		s.remove(pk, uk)
	case 4:
		s.doClear(e)
	case 5:
		uk := s.randUK(e)
		e.note("%s.Get(%d)", s.nm, uk)
		v, ok, err := h.Get(uk)
		if e.noKey(err) {
			return
		}
		if want, wok := s.getEntry(e, pk, uk); v != want || ok != wok {
			e.fatalf("%s.Get(%d) at %s = %q, %v; want %q, %v", s.nm, uk, where(), v, ok, want, wok)
		}
	case 6:
		uk := s.randUK(e)
		e.note("%s.Contains(%d)", s.nm, uk)
		ok, err := h.Contains(uk)
		if e.noKey(err) {
			return
		}
		if _, wok := s.getEntry(e, pk, uk); ok != wok {
			e.fatalf("%s.Contains(%d) at %s = %v, want %v", s.nm, uk, where(), ok, wok)
		}
	case 7:
		// IsEmpty looks as far as the first live entry.
		e.note("%s.IsEmpty()", s.nm)
		empty, err := h.IsEmpty()
		if e.noKey(err) {
			return
		}
		if want := len(s.iterate(e, pk, func(backend.Entry[int64, string]) bool { return false })) == 0; empty != want {
			e.fatalf("%s.IsEmpty() at %s = %v, want %v", s.nm, where(), empty, want)
		}
	case 8:
		e.note("%s.Keys()", s.nm)
		got, ok := modelCollect(e, h.Keys())
		if !ok {
			return
		}
		var want []int64
		for _, en := range s.iterate(e, pk, nil) {
			want = append(want, en.Key)
		}
		if !slices.Equal(got, want) {
			e.fatalf("%s.Keys() at %s = %v, want %v", s.nm, where(), got, want)
		}
	case 9:
		e.note("%s.Values()", s.nm)
		got, ok := modelCollect(e, h.Values())
		if !ok {
			return
		}
		var want []string
		for _, en := range s.iterate(e, pk, nil) {
			want = append(want, en.Value)
		}
		if !slices.Equal(got, want) {
			e.fatalf("%s.Values() at %s = %q, want %q", s.nm, where(), got, want)
		}
	case 10:
		s.writeWhileIterating(e)
	case 11:
		// Stopping early is allowed.
		e.note("%s.Entries() with break", s.nm)
		var got []backend.Entry[int64, string]
		for en, err := range h.Entries() {
			if err != nil && e.noKey(err) {
				return
			}
			got = append(got, en)
			break
		}
		if want := s.iterate(e, pk, func(backend.Entry[int64, string]) bool { return false }); !slices.Equal(got, want) {
			e.fatalf("%s.Entries() with break at %s = %v, want %v", s.nm, where(), got, want)
		}
	default:
		e.note("%s.Entries()", s.nm)
		s.checkCurrent(e)
	}
}

// writeWhileIterating writes inside the loop over Entries: the iteration
// keeps its point-in-time view. The loop puts a random map key and removes
// the current one. With TTL, the iteration's removals and restamps of the
// entries it meets later apply to what those keys hold when it reaches
// them, never over what the loop wrote (TestMap_WriteDuringIterationWithTTL).
func (s *modelMap[N]) writeWhileIterating(e *modelEnv) {
	e.t.Helper()
	h, pk := s.h[e.in()], s.pk(e)
	uk, v := s.randUK(e), e.randString()
	e.note("%s.Entries() with Put(%d, %q) and Remove(first) inside the loop", s.nm, uk, v)
	body := func(en backend.Entry[int64, string], put func(int64, string) error, remove func(int64) error) error {
		return errors.Join(put(uk, v), remove(en.Key))
	}
	var got []backend.Entry[int64, string]
	for en, err := range h.Entries() {
		if err != nil && e.noKey(err) {
			return
		}
		got = append(got, en)
		if len(got) == 1 {
			e.ok(body(en, h.Put, h.Remove))
		}
	}
	if !e.in().curSet {
		e.fatalf("Entries() without a current key ended without ErrNoCurrentKey")
	}
	want := s.iterate(e, pk, func(en backend.Entry[int64, string]) bool {
		e.ok(body(en, func(k int64, v string) error { s.put(e, pk, k, v); return nil },
			func(k int64) error { s.remove(pk, k); return nil }))
		return true
	})
	if !slices.Equal(got, want) {
		e.fatalf("%s.Entries() at %s with writes inside = %v, want %v", s.nm, e.at(s.curNS[e.in()]), got, want)
	}
}

func (s *modelMap[N]) checkCurrent(e *modelEnv) {
	e.t.Helper()
	got, ok := modelCollect(e, s.h[e.in()].Entries())
	if !ok {
		return
	}
	if want := s.iterate(e, s.pk(e), nil); !slices.Equal(got, want) {
		e.fatalf("%s.Entries() at %s = %v, want %v", s.nm, e.at(s.curNS[e.in()]), got, want)
	}
}

func (s *modelMap[N]) checkClosed(e *modelEnv, in *modelInst) {
	h := s.h[in]
	if _, err := h.Contains(1); !errors.Is(err, backend.ErrClosed) {
		e.fatalf("%s.Contains() after Close: %v, want ErrClosed", s.nm, err)
	}
	for _, err := range h.Entries() {
		if !errors.Is(err, backend.ErrClosed) {
			e.fatalf("%s.Entries() after Close: %v, want ErrClosed", s.nm, err)
		}
	}
	for _, err := range h.KeysInNamespace(s.ns.of(0)) {
		if !errors.Is(err, backend.ErrClosed) {
			e.fatalf("%s.KeysInNamespace() after Close: %v, want ErrClosed", s.nm, err)
		}
	}
}
