package backend

import (
	"github.com/pebblestate/pebblestate/internal/listfmt"
	"github.com/pebblestate/pebblestate/internal/meta"
	"github.com/pebblestate/pebblestate/ttl"
)

// ListDescriptor describes a list state: a list of elements per key and
// namespace.
type ListDescriptor[E any] struct {
	Name  string     // unique among the backend's states
	Codec Codec[E]   // encodes one element
	TTL   ttl.Config // time-to-live of each element; the zero value is off
}

// List is a state holding a list per key and namespace, like Flink's
// ListState. Add and AddAll append through Pebble's merge operator without
// reading the list. An empty list and no list are the same.
type List[K, N, E any] struct {
	state[K, N]
	codec Codec[E]
	ebuf  []byte
}

// GetList registers a list state in the void namespace, or returns the one
// already registered under the descriptor's name.
func GetList[K, E any](b *Backend[K], d ListDescriptor[E]) (*List[K, VoidNamespace, E], error) {
	return GetListNS(b, Void, d)
}

// GetListNS registers a list state whose namespaces are encoded by ns, or
// returns the one already registered under the descriptor's name.
func GetListNS[K, N, E any](b *Backend[K], ns Codec[N], d ListDescriptor[E]) (*List[K, N, E], error) {
	if err := checkDescriptor(d.Name, d.TTL, role{"namespace", ns}, role{"element", d.Codec}); err != nil {
		return nil, err
	}
	m := meta.State{Name: d.Name, Kind: meta.KindList, NamespaceCodec: ns.Name(), ValueCodec: d.Codec.Name(), TTL: d.TTL.Enabled()}
	return register(b, m, d.TTL, func(m meta.State) (*List[K, N, E], error) {
		s := &List[K, N, E]{codec: d.Codec}
		return s, s.init(b, m, ns, d.TTL)
	})
}

// Get returns the elements in the order they were added, or nil if the
// list is empty. With TTL, expired elements are left out (or returned once,
// under ReturnExpiredIfNotCleanedUp) and removed from the stored list.
func (s *List[K, N, E]) Get() ([]E, error) {
	if err := s.accessed(); err != nil {
		return nil, err
	}
	key, err := s.key()
	if err != nil {
		return nil, err
	}
	raw, closer, found, err := s.b.st.Get(key)
	if err != nil || !found {
		return nil, s.wrapIf("get", err)
	}
	defer closer.Close()
	if s.ttl != nil {
		return s.getTTL(key, raw)
	}
	n, err := listfmt.Count(raw)
	if err != nil {
		return nil, s.corrupt("decode list", err)
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]E, 0, n)
	for len(raw) > 0 {
		var elem []byte
		elem, raw, _ = listfmt.Next(raw) // framing checked by Count
		e, err := s.codec.Decode(elem)
		if err != nil {
			return nil, s.corrupt("decode element", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// getTTL decodes a list with stamped elements. It rewrites the stored list
// when elements expired (dropping them) or, under OnReadAndWrite, to
// restamp the elements it returns, as the TTL judge says.
func (s *List[K, N, E]) getTTL(key, raw []byte) ([]E, error) {
	t := s.ttl
	v, kept, _, err := ttl.Judge(ttl.ListElements, raw, t.read, s.now(), s.vbuf[:0])
	if err != nil {
		return nil, s.corrupt("decode list", err)
	}
	s.vbuf = kept[:0]
	// What a read returns: every stored element once under
	// ReturnExpiredIfNotCleanedUp, else the live ones.
	src := raw
	switch {
	case t.returnExpired:
	case v == ttl.Drop:
		src = nil
	case v == ttl.Rewrite:
		src = kept
	}
	var out []E
	for len(src) > 0 {
		var elem []byte
		elem, src, _ = listfmt.Next(src) // framing checked by Judge
		e, err := s.codec.Decode(elem[ttl.StampLen:])
		if err != nil {
			return nil, s.corrupt("decode element", err)
		}
		out = append(out, e)
	}
	switch v {
	case ttl.Keep:
		return out, nil
	case ttl.Drop:
		err = s.b.st.Delete(key)
	case ttl.Rewrite:
		err = s.b.st.Set(key, kept)
	}
	if err != nil {
		return nil, s.wrap("remove expired", err)
	}
	total, _ := listfmt.Count(raw)
	left, _ := listfmt.Count(kept) // empty for Drop
	if expired := total - left; expired > 0 {
		s.b.ttlMetrics.readRemoved.Add(uint64(expired))
	}
	return out, nil
}

// appendFramed encodes es as framed elements into s.vbuf.
func (s *List[K, N, E]) appendFramed(es []E) error {
	s.vbuf = s.vbuf[:0]
	var stamp []byte
	if s.ttl != nil {
		stamp = ttl.AppendStamp(nil, s.now())
	}
	for _, e := range es {
		var err error
		if s.ebuf, err = s.codec.Append(append(s.ebuf[:0], stamp...), e); err != nil {
			return s.wrap("encode element", err)
		}
		s.vbuf = listfmt.AppendElement(s.vbuf, s.ebuf)
	}
	return nil
}

// Add appends one element.
func (s *List[K, N, E]) Add(e E) error {
	if err := s.accessed(); err != nil {
		return err
	}
	key, err := s.key()
	if err != nil {
		return err
	}
	if s.ebuf, err = s.codec.Append(s.stamp(s.ebuf[:0]), e); err != nil {
		return s.wrap("encode element", err)
	}
	s.vbuf = listfmt.AppendElement(s.vbuf[:0], s.ebuf)
	if err := s.b.st.Merge(key, s.vbuf); err != nil {
		return s.wrap("add", err)
	}
	return nil
}

// AddAll appends es in order with one write. Adding no elements does
// nothing.
func (s *List[K, N, E]) AddAll(es []E) error {
	if err := s.accessed(); err != nil {
		return err
	}
	key, err := s.key()
	if err != nil || len(es) == 0 {
		return err
	}
	if err := s.appendFramed(es); err != nil {
		return err
	}
	if err := s.b.st.Merge(key, s.vbuf); err != nil {
		return s.wrap("add all", err)
	}
	return nil
}

// Update replaces the list with es; an empty es clears it.
func (s *List[K, N, E]) Update(es []E) error {
	if err := s.accessed(); err != nil {
		return err
	}
	key, err := s.key()
	if err != nil {
		return err
	}
	if len(es) == 0 {
		if err := s.b.st.Delete(key); err != nil {
			return s.wrap("update", err)
		}
		return nil
	}
	if err := s.appendFramed(es); err != nil {
		return err
	}
	if err := s.b.st.Set(key, s.vbuf); err != nil {
		return s.wrap("update", err)
	}
	return nil
}

// MergeNamespaces appends the lists of the current key in namespaces
// sources to its list in namespace target, in the order of sources, and
// clears the sources, in one atomic write. Session windows use it when
// windows merge. A source equal to target is skipped.
func (s *List[K, N, E]) MergeNamespaces(target N, sources ...N) error {
	if err := s.accessed(); err != nil {
		return err
	}
	batch := s.b.st.NewBatch()
	defer batch.Close()
	raws, targetKey, err := s.takeSources(batch, target, sources)
	if err != nil || len(raws) == 0 {
		return err
	}
	var joined []byte
	for _, r := range raws {
		if _, err := listfmt.Count(r); err != nil {
			return s.corrupt("merge namespaces", err)
		}
		joined = append(joined, r...)
	}
	if err := batch.Merge(targetKey, joined); err != nil {
		return s.wrap("merge namespaces", err)
	}
	if err := s.b.st.Commit(batch); err != nil {
		return s.wrap("merge namespaces", err)
	}
	return nil
}
