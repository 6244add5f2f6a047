package backend

import (
	"github.com/pebblestate/pebblestate/internal/store"
)

// takeSources reads and deletes (in batch) the entries of the current key
// in each of the namespaces sources other than target, and returns copies
// of their stored bytes and the key of target. It is the common first half
// of MergeNamespaces for list, reducing and aggregating state.
func (s *state[K, N]) takeSources(batch *store.Batch, target N, sources []N) (raws [][]byte, targetKey []byte, err error) {
	targetNS, err := s.encodeNamespace(nil, target)
	if err != nil {
		return nil, nil, err
	}
	// A namespace named twice is taken once: its delete is still only in
	// the batch, so a second read would see it again.
	seen := map[string]bool{string(targetNS): true}
	var ns []byte
	for _, src := range sources {
		if ns, err = s.encodeNamespace(ns[:0], src); err != nil {
			return nil, nil, err
		}
		if seen[string(ns)] {
			continue
		}
		seen[string(ns)] = true
		key, err := s.keyIn(ns)
		if err != nil {
			return nil, nil, err
		}
		raw, closer, found, err := s.b.st.Get(key)
		if err != nil {
			return nil, nil, s.wrap("merge namespaces", err)
		}
		if !found {
			continue
		}
		raws = append(raws, append([]byte(nil), raw...))
		closer.Close()
		if err := batch.Delete(key); err != nil {
			return nil, nil, s.wrap("merge namespaces", err)
		}
	}
	key, err := s.keyIn(targetNS)
	if err != nil {
		return nil, nil, err
	}
	return raws, append([]byte(nil), key...), nil
}
