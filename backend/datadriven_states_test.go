package backend_test

// The state handles of the datadriven tests (datadriven_test.go), behind
// one string-typed interface, so that a command does not care about a
// state's kind or namespace type. Values are strings, except for reducing
// state (a sum of int64) and aggregating state (a sum and a count of
// int64).

import (
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/pebblestate/pebblestate/backend"
)

// ddState is one registered state of one backend.
type ddState interface {
	// setNS makes ns the current namespace; "" is the void namespace of a
	// state registered without one.
	setNS(ns string) error
	// put writes vals: Update for a value, Add (AddAll for several) for a
	// list, Put of map key mk for a map, Add of each for reducing and
	// aggregating state.
	put(mk string, vals []string) error
	// replace replaces a list with vals (List.Update).
	replace(vals []string) error
	// get reads the current key's entry (map key mk of a map) and returns
	// it printed, or "absent".
	get(mk string) (string, error)
	// remove removes map key mk (maps only).
	remove(mk string) error
	// entries returns a map's entries as "k=v", in map key order.
	entries() ([]string, error)
	clear() error
	// keys returns the keys with an entry in namespace ns, sorted.
	keys(ns string) ([]string, error)
	// merge merges the namespaces from into into (list, reducing and
	// aggregating state).
	merge(into string, from []string) error
}

// ddAcc is the accumulator of the aggregating state.
type ddAcc struct{ Sum, N int64 }

// ddAvg is the aggregating state's function: a sum and a count.
type ddAvg struct{}

func (ddAvg) CreateAccumulator() ddAcc      { return ddAcc{} }
func (ddAvg) Add(in int64, acc ddAcc) ddAcc { return ddAcc{acc.Sum + in, acc.N + 1} }
func (ddAvg) Merge(a, b ddAcc) ddAcc        { return ddAcc{a.Sum + b.Sum, a.N + b.N} }
func (ddAvg) Result(acc ddAcc) string       { return fmt.Sprintf("sum=%d n=%d", acc.Sum, acc.N) }

// ddRegister registers spec on b.
func ddRegister(b *backend.Backend[string], sp ddSpec) (ddState, error) {
	if sp.namespaced {
		return ddRegisterNS(b, backend.String, func(ns string) (string, error) { return ns, nil }, sp)
	}
	void := func(ns string) (backend.VoidNamespace, error) {
		if ns != "" {
			return backend.VoidNamespace{}, fmt.Errorf("state %q has no namespaces (register it with namespaced)", sp.name)
		}
		return backend.VoidNamespace{}, nil
	}
	return ddRegisterNS(b, backend.Void, void, sp)
}

func ddRegisterNS[N any](b *backend.Backend[string], nsc backend.Codec[N], ns func(string) (N, error), sp ddSpec) (ddState, error) {
	switch sp.kind {
	case "value":
		s, err := backend.GetValueNS(b, nsc, backend.ValueDescriptor[string]{Name: sp.name, Codec: backend.String, TTL: sp.ttl})
		return &ddValue[N]{ddBase[N]{s, ns}, s}, err
	case "list":
		s, err := backend.GetListNS(b, nsc, backend.ListDescriptor[string]{Name: sp.name, Codec: backend.String, TTL: sp.ttl})
		return &ddList[N]{ddBase[N]{s, ns}, s}, err
	case "map":
		s, err := backend.GetMapNS(b, nsc, backend.MapDescriptor[string, string]{
			Name: sp.name, KeyCodec: backend.String, ValueCodec: backend.String, TTL: sp.ttl})
		return &ddMap[N]{ddBase[N]{s, ns}, s}, err
	case "reducing":
		s, err := backend.GetReducingNS(b, nsc, backend.ReducingDescriptor[int64]{
			Name: sp.name, Codec: backend.Int64, Reduce: func(a, b int64) int64 { return a + b }, TTL: sp.ttl})
		return &ddAdder[N, int64]{ddBase[N]{s, ns}, s.Add, s.Get, strconv.FormatInt}, err
	case "aggregating":
		s, err := backend.GetAggregatingNS(b, nsc, backend.AggregatingDescriptor[int64, ddAcc, string]{
			Name: sp.name, Codec: backend.JSON[ddAcc](), Function: ddAvg{}, TTL: sp.ttl})
		return &ddAdder[N, string]{ddBase[N]{s, ns}, s.Add, s.Get, func(s string, _ int) string { return s }}, err
	}
	return nil, fmt.Errorf("unknown kind %q (value, list, map, reducing or aggregating)", sp.kind)
}

// ddNamespaced is what every state handle has.
type ddNamespaced[N any] interface {
	SetCurrentNamespace(N) error
	KeysInNamespace(N) iter.Seq2[string, error]
	Clear() error
}

// ddMerger is what list, reducing and aggregating handles have.
type ddMerger[N any] interface {
	MergeNamespaces(target N, sources ...N) error
}

// ddBase implements the namespace side of ddState; the kinds embed it and
// add the rest.
type ddBase[N any] struct {
	s  ddNamespaced[N]
	ns func(string) (N, error)
}

func (d ddBase[N]) setNS(ns string) error {
	n, err := d.ns(ns)
	if err != nil {
		return err
	}
	return d.s.SetCurrentNamespace(n)
}

func (d ddBase[N]) clear() error { return d.s.Clear() }

func (d ddBase[N]) keys(ns string) ([]string, error) {
	n, err := d.ns(ns)
	if err != nil {
		return nil, err
	}
	var out []string
	for k, err := range d.s.KeysInNamespace(n) {
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

func (d ddBase[N]) merge(into string, from []string) error {
	m, ok := d.s.(ddMerger[N])
	if !ok {
		return fmt.Errorf("this kind of state cannot merge namespaces")
	}
	target, err := d.ns(into)
	if err != nil {
		return err
	}
	sources := make([]N, len(from))
	for i, f := range from {
		if sources[i], err = d.ns(f); err != nil {
			return err
		}
	}
	return m.MergeNamespaces(target, sources...)
}

func (ddBase[N]) remove(string) error { return fmt.Errorf("remove is for maps") }

func (ddBase[N]) replace([]string) error { return fmt.Errorf("replace is for lists") }

func (ddBase[N]) entries() ([]string, error) { return nil, fmt.Errorf("entries is for maps") }

// ddOneValue checks that a put got one value.
func ddOneValue(vals []string) (string, error) {
	if len(vals) != 1 {
		return "", fmt.Errorf("want one value, got %d", len(vals))
	}
	return vals[0], nil
}

type ddValue[N any] struct {
	ddBase[N]
	v *backend.Value[string, N, string]
}

func (d *ddValue[N]) put(_ string, vals []string) error {
	v, err := ddOneValue(vals)
	if err != nil {
		return err
	}
	return d.v.Update(v)
}

func (d *ddValue[N]) get(string) (string, error) {
	v, ok, err := d.v.Get()
	if err != nil || !ok {
		return "absent", err
	}
	return v, nil
}

type ddList[N any] struct {
	ddBase[N]
	l *backend.List[string, N, string]
}

func (d *ddList[N]) put(_ string, vals []string) error {
	if len(vals) == 1 {
		return d.l.Add(vals[0])
	}
	return d.l.AddAll(vals)
}

func (d *ddList[N]) replace(vals []string) error { return d.l.Update(vals) }

func (d *ddList[N]) get(string) (string, error) {
	es, err := d.l.Get()
	if err != nil || len(es) == 0 {
		return "absent", err
	}
	return "[" + strings.Join(es, " ") + "]", nil
}

type ddMap[N any] struct {
	ddBase[N]
	m *backend.Map[string, N, string, string]
}

func (d *ddMap[N]) put(mk string, vals []string) error {
	v, err := ddOneValue(vals)
	if err != nil {
		return err
	}
	return d.m.Put(mk, v)
}

func (d *ddMap[N]) get(mk string) (string, error) {
	v, ok, err := d.m.Get(mk)
	if err != nil || !ok {
		return "absent", err
	}
	return v, nil
}

func (d *ddMap[N]) remove(mk string) error { return d.m.Remove(mk) }

func (d *ddMap[N]) entries() ([]string, error) {
	var out []string
	for e, err := range d.m.Entries() {
		if err != nil {
			return nil, err
		}
		out = append(out, e.Key+"="+e.Value)
	}
	return out, nil
}

// ddAdder is reducing or aggregating state: inputs are int64, the result
// is printed with format.
type ddAdder[N, OUT any] struct {
	ddBase[N]
	add    func(int64) error
	read   func() (OUT, bool, error)
	format func(OUT, int) string
}

func (d *ddAdder[N, OUT]) put(_ string, vals []string) error {
	for _, s := range vals {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		if err := d.add(v); err != nil {
			return err
		}
	}
	return nil
}

func (d *ddAdder[N, OUT]) get(string) (string, error) {
	v, ok, err := d.read()
	if err != nil || !ok {
		return "absent", err
	}
	return d.format(v, 10), nil
}
