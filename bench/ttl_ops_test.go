package bench

import (
	"iter"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
	"github.com/pebblestate/pebblestate/ttl"
)

// The ops of the TTL benchmarks, written once for both sides of each
// comparison: the same code runs on a TTL state (BenchmarkTtl*) and on its
// non-TTL twin (the plain side of BenchmarkTtlPaired), so the two differ
// in nothing but the state's TTL config.

// stateOp is one benchmark op on setup key index i: SetCurrentKey plus one
// call on the state. It reports whether a read found what it looked for
// (writes always do).
type stateOp func(i int) (hit bool, err error)

// ttlOp is one of flink's six TTL state benchmarks. open opens a fresh
// clone of the state's fixture and returns the op on it: the TTL fixture
// with config cfg on clock, or with a nil clock the non-TTL fixture, as
// the plain benchmark of the same op opens it (reads warm the block cache
// first, writes do not).
type ttlOp struct {
	name string // the plain benchmark's name without "Benchmark"
	read bool
	open func(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], stateOp)
}

var ttlOps = []ttlOp{ttlValueGetOp, ttlValueUpdateOp, ttlListAppendOp, ttlListGetOp, ttlMapGetOp, ttlMapUpdateOp}

// sink keeps the values reads return alive, so no read is optimised away.
var sink struct {
	i int64
	f float64
}

var ttlValueGetOp = ttlOp{name: "ValueGet", read: true, open: func(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], stateOp) {
	w := getWorkload(b)
	be, v := openValueState(b, clock, cfg)
	warmState(b, clock, v.KeysInNamespace(voidNS()))
	return be, func(i int) (bool, error) {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			return false, err
		}
		x, ok, err := v.Get()
		sink.i += x
		return ok, err
	}
}}

var ttlValueUpdateOp = ttlOp{name: "ValueUpdate", open: func(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], stateOp) {
	w := getWorkload(b)
	be, v := openValueState(b, clock, cfg)
	return be, func(i int) (bool, error) {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			return false, err
		}
		return true, v.Update(w.value(i))
	}
}}

var ttlListAppendOp = ttlOp{name: "ListAppend", open: func(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], stateOp) {
	w := getWorkload(b)
	be, l := openListState(b, clock, cfg)
	return be, func(i int) (bool, error) {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			return false, err
		}
		return true, l.Add(w.value(i))
	}
}}

var ttlListGetOp = ttlOp{name: "ListGet", read: true, open: func(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], stateOp) {
	w := getWorkload(b)
	be, l := openListState(b, clock, cfg)
	warmState(b, clock, l.KeysInNamespace(voidNS()))
	return be, func(i int) (bool, error) {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			return false, err
		}
		es, err := l.Get()
		if len(es) == 0 {
			return false, err
		}
		sink.i += es[0]
		return true, err
	}
}}

var ttlMapGetOp = ttlOp{name: "MapGet", read: true, open: func(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], stateOp) {
	w := getWorkload(b)
	be, m := openMapState(b, clock, cfg)
	return be, func(i int) (bool, error) {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			return false, err
		}
		x, ok, err := m.Get(w.mapKey(i))
		sink.f += x
		return ok, err
	}
}}

var ttlMapUpdateOp = ttlOp{name: "MapUpdate", open: func(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], stateOp) {
	w := getWorkload(b)
	be, m := openMapState(b, clock, cfg)
	return be, func(i int) (bool, error) {
		if err := be.SetCurrentKey(w.setupKey(i)); err != nil {
			return false, err
		}
		return true, m.Put(w.mapKey(i), w.mapValue(i))
	}
}}

// openValueState opens the value fixture: the TTL one on clock with cfg,
// or the plain one if clock is nil.
func openValueState(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], *backend.Value[int64, backend.VoidNamespace, int64]) {
	if clock == nil {
		return openValue(b, false)
	}
	be := ttlOpenBackend(b, ttlValueFixture, clock, nil)
	v, err := backend.GetValue(be, ttlValueDesc(cfg))
	if err != nil {
		b.Fatal(err)
	}
	return be, v
}

// openListState is openValueState for the list fixtures.
func openListState(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], *backend.List[int64, backend.VoidNamespace, int64]) {
	if clock == nil {
		return openList(b)
	}
	be := ttlOpenBackend(b, ttlListFixture, clock, nil)
	l, err := backend.GetList(be, ttlListDesc(cfg))
	if err != nil {
		b.Fatal(err)
	}
	return be, l
}

// openMapState is openValueState for the map fixtures, which it also
// warms, as openMap does: BenchmarkMapGet and BenchmarkMapUpdate both start
// warm.
func openMapState(b *testing.B, clock *ttl.ManualClock, cfg ttl.Config) (*backend.Backend[int64], *backend.Map[int64, backend.VoidNamespace, int64, float64]) {
	if clock == nil {
		return openMap(b)
	}
	be := ttlOpenBackend(b, ttlMapFixture, clock, nil)
	m, err := backend.GetMap(be, ttlMapDesc(cfg))
	if err != nil {
		b.Fatal(err)
	}
	ttlWarm(b, m.KeysInNamespace(voidNS()))
	return be, m
}

// warmState warms a state's fixture: with ttlWarm for a TTL state (a clock
// given), with warm for a plain one.
func warmState(b *testing.B, clock *ttl.ManualClock, keys iter.Seq2[int64, error]) {
	if clock == nil {
		warm(b, keys)
	} else {
		ttlWarm(b, keys)
	}
}
