package backend

import (
	"iter"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// MapDescriptor describes a map state: a map from user keys to user values
// per key and namespace.
type MapDescriptor[UK, UV any] struct {
	Name       string     // unique among the backend's states
	KeyCodec   Codec[UK]  // encodes map keys; iteration follows its byte order
	ValueCodec Codec[UV]  // encodes map values
	TTL        ttl.Config // time-to-live of each entry; the zero value is off
}

// Map is a state holding a map per key and namespace, like Flink's
// MapState. Each entry is its own Pebble key, so Get, Put and Remove touch
// one entry. Iteration is in the byte order of the encoded map keys (numeric
// order for the built-in number codecs) over a point-in-time view.
type Map[K, N, UK, UV any] struct {
	state[K, N]
	kc Codec[UK]
	vc Codec[UV]
}

// Entry is one entry of a map state.
type Entry[UK, UV any] struct {
	Key   UK
	Value UV
}

// GetMap registers a map state in the void namespace, or returns the one
// already registered under the descriptor's name.
func GetMap[K, UK, UV any](b *Backend[K], d MapDescriptor[UK, UV]) (*Map[K, VoidNamespace, UK, UV], error) {
	return GetMapNS(b, Void, d)
}

// GetMapNS registers a map state whose namespaces are encoded by ns, or
// returns the one already registered under the descriptor's name.
func GetMapNS[K, N, UK, UV any](b *Backend[K], ns Codec[N], d MapDescriptor[UK, UV]) (*Map[K, N, UK, UV], error) {
	if err := checkDescriptor(d.Name, d.TTL, role{"namespace", ns}, role{"map key", d.KeyCodec}, role{"map value", d.ValueCodec}); err != nil {
		return nil, err
	}
	m := meta.State{Name: d.Name, Kind: meta.KindMap, NamespaceCodec: ns.Name(),
		UserKeyCodec: d.KeyCodec.Name(), ValueCodec: d.ValueCodec.Name(), TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func(m meta.State) (*Map[K, N, UK, UV], error) {
		s := &Map[K, N, UK, UV]{kc: d.KeyCodec, vc: d.ValueCodec}
		return s, s.init(b, m, ns, d.TTL)
	})
}

// entryKey returns the stored key of map key uk under the current key and
// namespace.
func (s *Map[K, N, UK, UV]) entryKey(uk UK) ([]byte, error) {
	if err := s.accessed(); err != nil {
		return nil, err
	}
	prefix, err := s.key()
	if err != nil {
		return nil, err
	}
	if s.buf, err = s.kc.Append(prefix, uk); err != nil {
		return nil, s.wrap("encode map key", err)
	}
	return s.buf, nil
}

func (s *Map[K, N, UK, UV]) returnExpired() bool {
	return s.ttl != nil && s.ttl.returnExpired
}

// Get returns the value of map key uk and true, or the zero value and
// false if uk is absent (or, with TTL, expired).
func (s *Map[K, N, UK, UV]) Get(uk UK) (UV, bool, error) {
	var v UV
	key, err := s.entryKey(uk)
	if err != nil {
		return v, false, err
	}
	user, closer, found, err := s.getSingle(key, s.returnExpired())
	if !found || err != nil {
		return v, false, err
	}
	v, err = s.vc.Decode(user)
	closer.Close()
	if err != nil {
		return v, false, s.corrupt("decode map value", err)
	}
	return v, true, nil
}

// Contains reports whether map key uk is present, as Get would.
func (s *Map[K, N, UK, UV]) Contains(uk UK) (bool, error) {
	key, err := s.entryKey(uk)
	if err != nil {
		return false, err
	}
	_, closer, found, err := s.getSingle(key, s.returnExpired())
	if !found || err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// Put sets the value of map key uk.
func (s *Map[K, N, UK, UV]) Put(uk UK, uv UV) error {
	key, err := s.entryKey(uk)
	if err != nil {
		return err
	}
	if s.vbuf, err = s.vc.Append(s.stamp(s.vbuf[:0]), uv); err != nil {
		return s.wrap("encode map value", err)
	}
	if err := s.b.st.Set(key, s.vbuf); err != nil {
		return s.wrap("put", err)
	}
	return nil
}

// PutAll sets every entry entries yields, in one atomic write. Use
// maps.All to put a Go map.
func (s *Map[K, N, UK, UV]) PutAll(entries iter.Seq2[UK, UV]) error {
	if err := s.accessed(); err != nil {
		return err
	}
	if _, err := s.key(); err != nil {
		return err // closed or no current key, even for no entries
	}
	var stamp []byte
	if s.ttl != nil {
		stamp = ttl.AppendStamp(nil, s.now())
	}
	batch := s.b.st.NewBatch()
	defer batch.Close()
	for uk, uv := range entries {
		key, err := s.key()
		if err != nil {
			return err
		}
		if s.buf, err = s.kc.Append(key, uk); err != nil {
			return s.wrap("encode map key", err)
		}
		if s.vbuf, err = s.vc.Append(append(s.vbuf[:0], stamp...), uv); err != nil {
			return s.wrap("encode map value", err)
		}
		if err := batch.Set(s.buf, s.vbuf); err != nil {
			return s.wrap("put all", err)
		}
	}
	if err := s.b.st.Commit(batch); err != nil {
		return s.wrap("put all", err)
	}
	return nil
}

// Remove deletes map key uk; removing an absent key does nothing.
func (s *Map[K, N, UK, UV]) Remove(uk UK) error {
	key, err := s.entryKey(uk)
	if err != nil {
		return err
	}
	if err := s.b.st.Delete(key); err != nil {
		return s.wrap("remove", err)
	}
	return nil
}

// IsEmpty reports whether the map has no entries (with TTL: no entries a
// read could return).
func (s *Map[K, N, UK, UV]) IsEmpty() (bool, error) {
	empty := true
	var err error
	s.scan(false, false, func(_ Entry[UK, UV], e error) bool {
		err, empty = e, e != nil
		return false
	})
	return empty && err == nil, err
}

// Entries yields the map's entries. An error ends the iteration as the
// last pair yielded.
func (s *Map[K, N, UK, UV]) Entries() iter.Seq2[Entry[UK, UV], error] {
	return func(yield func(Entry[UK, UV], error) bool) {
		s.scan(true, true, func(e Entry[UK, UV], err error) bool { return yield(e, err) })
	}
}

// Keys yields the map's keys. An error ends the iteration as the last pair
// yielded.
func (s *Map[K, N, UK, UV]) Keys() iter.Seq2[UK, error] {
	return func(yield func(UK, error) bool) {
		s.scan(true, false, func(e Entry[UK, UV], err error) bool { return yield(e.Key, err) })
	}
}

// Values yields the map's values. An error ends the iteration as the last
// pair yielded.
func (s *Map[K, N, UK, UV]) Values() iter.Seq2[UV, error] {
	return func(yield func(UV, error) bool) {
		s.scan(false, true, func(e Entry[UK, UV], err error) bool { return yield(e.Value, err) })
	}
}

// scan walks the entries of the current key and namespace, decoding map
// keys and values as asked. With TTL it skips expired entries (yielding
// them under ReturnExpiredIfNotCleanedUp), removes them, and under
// OnReadAndWrite restamps the entries it yields.
func (s *Map[K, N, UK, UV]) scan(wantKey, wantValue bool, yield func(Entry[UK, UV], error) bool) {
	var zero Entry[UK, UV]
	if err := s.accessed(); err != nil {
		yield(zero, err)
		return
	}
	prefix, err := s.key()
	if err != nil {
		yield(zero, err)
		return
	}
	// The iterator must own its bounds: s.buf is reused by the loop body.
	lo := append([]byte(nil), prefix...)
	var gen uint64 // every write up to gen is visible to the iterator
	if s.ttl != nil {
		gen = s.b.st.WriteGen()
	}
	it, err := s.b.st.NewIter(lo, keys.PrefixEnd(lo))
	if err != nil {
		yield(zero, s.wrap("iterate", err))
		return
	}
	defer it.Close()
	var now int64
	if s.ttl != nil {
		now = s.now()
	}
	for valid := it.First(); valid; valid = it.Next() {
		raw, err := it.Value()
		if err != nil {
			yield(zero, s.wrap("iterate", err))
			return
		}
		if s.ttl != nil {
			var live bool
			if raw, live, err = s.judgeScanned(it.Key(), raw, now, gen); err != nil {
				yield(zero, err)
				return
			}
			if !live && !s.ttl.returnExpired {
				continue
			}
		}
		var e Entry[UK, UV]
		if wantKey {
			if e.Key, err = s.kc.Decode(it.Key()[len(lo):]); err != nil {
				yield(zero, s.corrupt("decode map key", err))
				return
			}
		}
		if wantValue {
			if e.Value, err = s.vc.Decode(raw); err != nil {
				yield(zero, s.corrupt("decode map value", err))
				return
			}
		}
		if !yield(e, nil) {
			return
		}
	}
	if err := it.Error(); err != nil {
		yield(zero, s.wrap("iterate", err))
	}
}
