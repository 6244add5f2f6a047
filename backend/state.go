package backend

import (
	"errors"
	"fmt"
	"iter"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pebblestate/pebblestate/internal/keys"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// state is what every state kind shares: its identity, its namespace, and
// the buffer its keys are built in.
type state[K, N any] struct {
	b       *Backend[K]
	name    string
	id      uint16
	kind    meta.Kind
	nsCodec Codec[N]
	nsFixed int
	ns      []byte // encoded current namespace component
	nsVal   N
	buf     []byte // [state id][key group][key][namespace] of the last access
	vbuf    []byte // scratch for encoding values
	ttl     *ttlState
}

func (s *state[K, N]) init(b *Backend[K], m meta.State, nsCodec Codec[N], cfg ttl.Config) error {
	s.b, s.name, s.id, s.kind = b, m.Name, m.ID, m.Kind
	s.nsCodec, s.nsFixed = nsCodec, fixedSize(nsCodec)
	if cfg.Enabled() {
		s.ttl = newTTLState(cfg, m.Kind)
	}
	var zero N
	return s.SetCurrentNamespace(zero)
}

// Name returns the state's registered name.
func (s *state[K, N]) Name() string { return s.name }

// SetCurrentNamespace scopes later access through this state to namespace
// n (a window, say) under the current key. A new state starts in the zero
// namespace; states in the void namespace never need to call it.
func (s *state[K, N]) SetCurrentNamespace(n N) error {
	enc, err := s.encodeNamespace(s.ns[:0], n)
	if err != nil {
		return err
	}
	s.ns, s.nsVal = enc, n
	return nil
}

// CurrentNamespace returns the namespace set by SetCurrentNamespace.
func (s *state[K, N]) CurrentNamespace() N { return s.nsVal }

func (s *state[K, N]) encodeNamespace(dst []byte, n N) ([]byte, error) {
	raw, err := s.nsCodec.Append(s.vbuf[:0], n)
	s.vbuf = raw[:0]
	if err != nil {
		return dst, fmt.Errorf("backend: state %q: encode namespace: %w", s.name, err)
	}
	dst, err = keys.AppendComponent(dst, raw, s.nsFixed)
	if err != nil {
		return dst, fmt.Errorf("%w: state %q: namespace codec %q: %w", ErrInvalidArgument, s.name, s.nsCodec.Name(), err)
	}
	return dst, nil
}

// key returns [state id][key group][key][namespace] for the current key
// and namespace. The slice is reused by the next call.
func (s *state[K, N]) key() ([]byte, error) {
	return s.keyIn(s.ns)
}

// keyIn is key with another encoded namespace component.
func (s *state[K, N]) keyIn(ns []byte) ([]byte, error) {
	b := s.b
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if !b.cur.set {
		return nil, ErrNoCurrentKey
	}
	buf := keys.AppendStateID(s.buf[:0], s.id)
	buf = append(buf, b.cur.enc...)
	buf = append(buf, ns...)
	s.buf = buf
	return buf, nil
}

func (s *state[K, N]) wrap(op string, err error) error {
	return fmt.Errorf("backend: state %q: %s: %w", s.name, op, err)
}

func (s *state[K, N]) corrupt(what string, err error) error {
	if errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("backend: state %q: %s: %w", s.name, what, err)
	}
	return fmt.Errorf("%w: state %q: %s: %w", ErrCorrupt, s.name, what, err)
}

// Clear removes the state's entry for the current key and namespace.
func (s *state[K, N]) Clear() error {
	if err := s.accessed(); err != nil {
		return err
	}
	key, err := s.key()
	if err != nil {
		return err
	}
	if s.kind == meta.KindMap {
		return s.clearPrefix(key)
	}
	if err := s.b.del(key); err != nil {
		return s.wrap("clear", err)
	}
	return nil
}

// clearPrefix deletes every entry under prefix in one batch. Point deletes
// rather than a range tombstone: maps are small, and range tombstones per
// map would slow every later read of the state.
func (s *state[K, N]) clearPrefix(prefix []byte) error {
	it, err := s.b.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
	if err != nil {
		return s.wrap("clear", err)
	}
	batch := s.b.db.NewBatch()
	defer batch.Close()
	for valid := it.First(); valid; valid = it.Next() {
		if err := batch.Delete(it.Key(), nil); err != nil {
			_ = it.Close()
			return s.wrap("clear", err)
		}
	}
	if err := it.Close(); err != nil {
		return s.wrap("clear", err)
	}
	if batch.Empty() {
		return nil
	}
	if err := s.b.commit(batch); err != nil {
		return s.wrap("clear", err)
	}
	return nil
}

// KeysInNamespace yields every key that has an entry of this state in namespace ns,
// over all key groups the backend owns, each once, in storage order.
// Frameworks use it to apply a function to every key. The iteration reads a
// point-in-time view, so the loop body may change state, and an error ends
// the iteration as the last pair it yields. With TTL, a key whose entries
// are expired is yielded until a read or cleanup removes them; the keys are
// not checked against the clock.
func (s *state[K, N]) KeysInNamespace(ns N) iter.Seq2[K, error] {
	return func(yield func(K, error) bool) {
		var zero K
		b := s.b
		if b.closed.Load() {
			yield(zero, ErrClosed)
			return
		}
		want, err := s.encodeNamespace(nil, ns)
		if err != nil {
			yield(zero, err)
			return
		}
		// Values reads removed may still be in Pebble, their removal in
		// the read buffer: their keys are not yielded. The buffer is
		// pinned, so that a write-back in the loop body (a snapshot) cannot
		// take a removal away from this point-in-time view.
		b.pin()
		defer b.unpin()
		lo, hi := keys.KeyGroupBounds(s.id, b.opts.KeyGroups.Start, b.opts.KeyGroups.End, b.kgWidth)
		it, err := b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			yield(zero, s.wrap("keys", err))
			return
		}
		defer it.Close()
		for valid := it.First(); valid; {
			k, kns, pairLen, err := s.splitKey(it.Key())
			if err != nil {
				yield(zero, err)
				return
			}
			if string(kns) != string(want) || b.removedByRead(it.Key()) {
				valid = it.Next() // a map's next entry may still be live
				continue
			}
			key, err := b.keyCodec.Decode(k)
			if err != nil {
				yield(zero, s.corrupt("decode key", err))
				return
			}
			if !yield(key, nil) {
				return
			}
			if s.kind == meta.KindMap {
				// Skip the rest of this (key, namespace)'s map entries.
				valid = it.SeekGE(keys.PrefixEnd(it.Key()[:pairLen]))
			} else {
				valid = it.Next()
			}
		}
		if err := it.Error(); err != nil {
			yield(zero, s.wrap("keys", err))
		}
	}
}

// splitKey splits a stored key of this state into the key's encoded bytes,
// the namespace's whole component (as encodeNamespace writes it), and the
// length of the [id][kg][key][ns] prefix.
func (s *state[K, N]) splitKey(full []byte) (key, ns []byte, pairLen int, err error) {
	rest := full[keys.StateIDLen:]
	if _, rest, err = keys.DecodeKeyGroup(rest, s.b.kgWidth); err != nil {
		return nil, nil, 0, s.corrupt("split key", err)
	}
	if key, rest, err = keys.SplitComponent(rest, s.b.keyFixed); err != nil {
		return nil, nil, 0, s.corrupt("split key", err)
	}
	nsStart := rest
	if _, rest, err = keys.SplitComponent(rest, s.nsFixed); err != nil {
		return nil, nil, 0, s.corrupt("split namespace", err)
	}
	// The whole component, length prefix included, as encodeNamespace
	// writes it.
	ns = nsStart[:len(nsStart)-len(rest)]
	return key, ns, len(full) - len(rest), nil
}
