package backend

import (
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// AggregateFunction folds inputs of type IN into an accumulator of type
// ACC and produces results of type OUT, like Flink's AggregateFunction.
// Merge combines two accumulators; it is used when namespaces merge.
type AggregateFunction[IN, ACC, OUT any] interface {
	CreateAccumulator() ACC
	Add(in IN, acc ACC) ACC
	Result(acc ACC) OUT
	Merge(a, b ACC) ACC
}

// AggregatingDescriptor describes an aggregating state.
type AggregatingDescriptor[IN, ACC, OUT any] struct {
	Name     string                          // unique among the backend's states
	Codec    Codec[ACC]                      // encodes the accumulator
	Function AggregateFunction[IN, ACC, OUT] // folds inputs
	TTL      ttl.Config                      // time-to-live; the zero value is off
}

// ReducingDescriptor describes a reducing state.
type ReducingDescriptor[V any] struct {
	Name   string         // unique among the backend's states
	Codec  Codec[V]       // encodes the value
	Reduce func(a, b V) V // combines the stored value (a) with a new one (b)
	TTL    ttl.Config     // time-to-live; the zero value is off
}

// accumulating is the shared core of reducing and aggregating state: one
// stored accumulator per key and namespace, read, folded and written back.
type accumulating[K, N, ACC any] struct {
	state[K, N]
	codec Codec[ACC]
	merge func(a, b ACC) ACC
}

// load returns the stored accumulator of the current key and namespace.
// An expired accumulator counts as absent unless allowExpired.
func (s *accumulating[K, N, ACC]) load(allowExpired bool) (acc ACC, key []byte, found bool, err error) {
	if err = s.accessed(); err != nil {
		return acc, nil, false, err
	}
	if key, err = s.key(); err != nil {
		return acc, nil, false, err
	}
	user, closer, found, err := s.getSingle(key, allowExpired)
	if !found || err != nil {
		return acc, key, false, err
	}
	acc, err = s.codec.Decode(user)
	closer.Close()
	if err != nil {
		return acc, nil, false, s.corrupt("decode accumulator", err)
	}
	return acc, key, true, nil
}

// returnExpired reports whether Get may return an expired accumulator.
func (s *accumulating[K, N, ACC]) returnExpired() bool {
	return s.ttl != nil && s.ttl.returnExpired
}

func (s *accumulating[K, N, ACC]) store(key []byte, acc ACC) error {
	var err error
	if s.vbuf, err = s.codec.Append(s.stamp(s.vbuf[:0]), acc); err != nil {
		return s.wrap("encode accumulator", err)
	}
	if err := s.b.st.Set(key, s.vbuf); err != nil {
		return s.wrap("add", err)
	}
	return nil
}

// MergeNamespaces merges the accumulators of the current key in namespaces
// sources into its accumulator in namespace target, in the order of
// sources, and clears the sources, in one atomic write. A source equal to
// target is skipped.
func (s *accumulating[K, N, ACC]) MergeNamespaces(target N, sources ...N) error {
	if err := s.accessed(); err != nil {
		return err
	}
	batch := s.b.st.NewBatch()
	defer batch.Close()
	raws, targetKey, err := s.takeSources(batch, target, sources)
	if err != nil || len(raws) == 0 {
		return err
	}
	var merged ACC
	have := false
	now := s.now()
	for _, r := range raws {
		user, live, err := s.unstamp(r, now)
		if err != nil {
			return err
		}
		if !live {
			continue // an expired accumulator merges as nothing, as in Flink
		}
		acc, err := s.codec.Decode(user)
		if err != nil {
			return s.corrupt("decode accumulator", err)
		}
		if have {
			merged = s.merge(merged, acc)
		} else {
			merged, have = acc, true
		}
	}
	if raw, closer, found, err := s.b.st.Get(targetKey); err == nil && found {
		user, live, uerr := s.unstamp(raw, now)
		if uerr == nil && live {
			var cur ACC
			if cur, uerr = s.codec.Decode(user); uerr == nil {
				if have {
					merged = s.merge(merged, cur)
				} else {
					merged, have = cur, true
				}
			} else {
				uerr = s.corrupt("decode accumulator", uerr)
			}
		}
		closer.Close()
		if uerr != nil {
			return uerr
		}
	} else if err != nil {
		return s.wrap("merge namespaces", err)
	}
	if have {
		if s.vbuf, err = s.codec.Append(s.stamp(s.vbuf[:0]), merged); err != nil {
			return s.wrap("encode accumulator", err)
		}
		err = batch.Set(targetKey, s.vbuf)
	} else {
		err = batch.Delete(targetKey)
	}
	if err != nil {
		return s.wrap("merge namespaces", err)
	}
	if err := s.b.st.Commit(batch); err != nil {
		return s.wrap("merge namespaces", err)
	}
	return nil
}

// unstamp returns the user's bytes of a stored accumulator and whether it
// is live (always, without TTL).
func (s *accumulating[K, N, ACC]) unstamp(raw []byte, now int64) (user []byte, live bool, err error) {
	if s.ttl == nil {
		return raw, true, nil
	}
	v, _, _, err := ttl.Judge(ttl.Single, raw, s.ttl.clean, now, nil)
	if err != nil {
		return nil, false, s.corrupt("read TTL stamp", err)
	}
	return raw[ttl.StampLen:], v != ttl.Drop, nil
}

// Reducing is a state holding one value per key and namespace that new
// values are folded into with a reduce function, like Flink's
// ReducingState.
type Reducing[K, N, V any] struct {
	accumulating[K, N, V]
}

// GetReducing registers a reducing state in the void namespace, or returns
// the one already registered under the descriptor's name (with the reduce
// function it was first registered with).
func GetReducing[K, V any](b *Backend[K], d ReducingDescriptor[V]) (*Reducing[K, VoidNamespace, V], error) {
	return GetReducingNS(b, Void, d)
}

// GetReducingNS registers a reducing state whose namespaces are encoded by
// ns, or returns the one already registered under the descriptor's name.
func GetReducingNS[K, N, V any](b *Backend[K], ns Codec[N], d ReducingDescriptor[V]) (*Reducing[K, N, V], error) {
	if err := checkDescriptor(d.Name, d.TTL, role{"namespace", ns}, role{"value", d.Codec}); err != nil {
		return nil, err
	}
	if d.Reduce == nil {
		return nil, errorf(ErrInvalidArgument, "state %q: reduce function is nil", d.Name)
	}
	m := meta.State{Name: d.Name, Kind: meta.KindReducing, NamespaceCodec: ns.Name(), ValueCodec: d.Codec.Name(), TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func(m meta.State) (*Reducing[K, N, V], error) {
		s := &Reducing[K, N, V]{accumulating[K, N, V]{codec: d.Codec, merge: d.Reduce}}
		return s, s.init(b, m, ns, d.TTL)
	})
}

// Get returns the reduced value and true, or the zero value and false if
// nothing was added.
func (s *Reducing[K, N, V]) Get() (V, bool, error) {
	v, _, found, err := s.load(s.returnExpired())
	return v, found, err
}

// Add folds v into the stored value: the stored value becomes
// Reduce(stored, v), or v if there was none.
func (s *Reducing[K, N, V]) Add(v V) error {
	cur, key, found, err := s.load(false)
	if err != nil {
		return err
	}
	if found {
		v = s.merge(cur, v)
	}
	return s.store(key, v)
}

// Aggregating is a state holding one accumulator per key and namespace
// that inputs are added to through an AggregateFunction, like Flink's
// AggregatingState.
type Aggregating[K, N, IN, ACC, OUT any] struct {
	accumulating[K, N, ACC]
	fn AggregateFunction[IN, ACC, OUT]
}

// GetAggregating registers an aggregating state in the void namespace, or
// returns the one already registered under the descriptor's name (with the
// function it was first registered with).
func GetAggregating[K, IN, ACC, OUT any](b *Backend[K], d AggregatingDescriptor[IN, ACC, OUT]) (*Aggregating[K, VoidNamespace, IN, ACC, OUT], error) {
	return GetAggregatingNS(b, Void, d)
}

// GetAggregatingNS registers an aggregating state whose namespaces are
// encoded by ns, or returns the one already registered under the
// descriptor's name.
func GetAggregatingNS[K, N, IN, ACC, OUT any](b *Backend[K], ns Codec[N], d AggregatingDescriptor[IN, ACC, OUT]) (*Aggregating[K, N, IN, ACC, OUT], error) {
	if err := checkDescriptor(d.Name, d.TTL, role{"namespace", ns}, role{"accumulator", d.Codec}); err != nil {
		return nil, err
	}
	if d.Function == nil {
		return nil, errorf(ErrInvalidArgument, "state %q: aggregate function is nil", d.Name)
	}
	m := meta.State{Name: d.Name, Kind: meta.KindAggregating, NamespaceCodec: ns.Name(), ValueCodec: d.Codec.Name(), TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func(m meta.State) (*Aggregating[K, N, IN, ACC, OUT], error) {
		s := &Aggregating[K, N, IN, ACC, OUT]{accumulating: accumulating[K, N, ACC]{codec: d.Codec, merge: d.Function.Merge}, fn: d.Function}
		return s, s.init(b, m, ns, d.TTL)
	})
}

// Get returns the result of the accumulator and true, or the zero value
// and false if nothing was added.
func (s *Aggregating[K, N, IN, ACC, OUT]) Get() (OUT, bool, error) {
	acc, _, found, err := s.load(s.returnExpired())
	if err != nil || !found {
		var out OUT
		return out, false, err
	}
	return s.fn.Result(acc), true, nil
}

// Add adds in to the accumulator, creating the accumulator first if there
// is none.
func (s *Aggregating[K, N, IN, ACC, OUT]) Add(in IN) error {
	acc, key, found, err := s.load(false)
	if err != nil {
		return err
	}
	if !found {
		acc = s.fn.CreateAccumulator()
	}
	return s.store(key, s.fn.Add(in, acc))
}
