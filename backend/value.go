package backend

import (
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// ValueDescriptor describes a value state: one value per key and namespace.
type ValueDescriptor[V any] struct {
	Name  string     // unique among the backend's states
	Codec Codec[V]   // encodes the value
	TTL   ttl.Config // time-to-live; the zero value is off
}

// Value is a state holding one value per key and namespace, like Flink's
// ValueState. Its methods act on the backend's current key and the state's
// current namespace.
type Value[K, N, V any] struct {
	state[K, N]
	codec Codec[V]
}

// GetValue registers a value state in the void namespace, or returns the
// one already registered under the descriptor's name.
func GetValue[K, V any](b *Backend[K], d ValueDescriptor[V]) (*Value[K, VoidNamespace, V], error) {
	return GetValueNS(b, Void, d)
}

// GetValueNS registers a value state whose namespaces are encoded by ns, or
// returns the one already registered under the descriptor's name.
func GetValueNS[K, N, V any](b *Backend[K], ns Codec[N], d ValueDescriptor[V]) (*Value[K, N, V], error) {
	if err := checkDescriptor(d.Name, d.TTL, role{"namespace", ns}, role{"value", d.Codec}); err != nil {
		return nil, err
	}
	m := meta.State{Name: d.Name, Kind: meta.KindValue, NamespaceCodec: ns.Name(), ValueCodec: d.Codec.Name(), TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func(m meta.State) (*Value[K, N, V], error) {
		s := &Value[K, N, V]{codec: d.Codec}
		return s, s.init(b, m, ns, d.TTL)
	})
}

// Get returns the value and true, or the zero value and false if there is
// none (or, with TTL, if it expired).
func (s *Value[K, N, V]) Get() (V, bool, error) {
	var v V
	if err := s.accessed(); err != nil {
		return v, false, err
	}
	key, err := s.key()
	if err != nil {
		return v, false, err
	}
	user, closer, found, err := s.getSingle(key, s.ttl != nil && s.ttl.returnExpired)
	if !found || err != nil {
		return v, false, err
	}
	v, err = s.codec.Decode(user)
	closer.Close()
	if err != nil {
		return v, false, s.corrupt("decode value", err)
	}
	return v, true, nil
}

// Update sets the value.
func (s *Value[K, N, V]) Update(v V) error {
	if err := s.accessed(); err != nil {
		return err
	}
	key, err := s.key()
	if err != nil {
		return err
	}
	if s.vbuf, err = s.codec.Append(s.stamp(s.vbuf[:0]), v); err != nil {
		return s.wrap("encode value", err)
	}
	if err := s.b.st.Set(key, s.vbuf); err != nil {
		return s.wrap("update", err)
	}
	return nil
}
