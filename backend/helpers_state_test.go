package backend_test

// Typed state helpers: registering the states most tests use, checking
// what a state holds, the aggregate and reduce functions, and codecs that
// misbehave on purpose.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// getValue reads a value state, failing the test on an error.
func getValue[K, N, V any](t testing.TB, s *backend.Value[K, N, V]) (V, bool) {
	t.Helper()
	v, ok, err := s.Get()
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return v, ok
}

// wantValue checks that a value state holds want.
func wantValue[K, N any, V comparable](t testing.TB, s *backend.Value[K, N, V], want V) {
	t.Helper()
	got, ok := getValue(t, s)
	if !ok || got != want {
		t.Fatalf("Get = %v, %v; want %v, true", got, ok, want)
	}
}

// wantNoValue checks that a value state holds nothing.
func wantNoValue[K, N any, V comparable](t testing.TB, s *backend.Value[K, N, V]) {
	t.Helper()
	got, ok := getValue(t, s)
	var zero V
	if ok || got != zero {
		t.Fatalf("Get = %v, %v; want zero, false", got, ok)
	}
}

// wantList checks that a list state holds want (nil and empty are equal).
func wantList[K, N any, E comparable](t testing.TB, s *backend.List[K, N, E], want []E) {
	t.Helper()
	got, err := s.Get()
	if err != nil {
		t.Fatalf("List.Get: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List.Get = %v (%d elements); want %v (%d elements)", trim(got), len(got), trim(want), len(want))
	}
}

// intList registers an int64 list in the void namespace.
func intList(t testing.TB, b *backend.Backend[string], name string) *backend.List[string, backend.VoidNamespace, int64] {
	t.Helper()
	return must(backend.GetList(b, backend.ListDescriptor[int64]{Name: name, Codec: backend.Int64})).in(t)
}

// nsList registers a string list in int64 namespaces.
func nsList(t testing.TB, b *backend.Backend[string], name string) *backend.List[string, int64, string] {
	t.Helper()
	return must(backend.GetListNS(b, backend.Int64, backend.ListDescriptor[string]{Name: name, Codec: backend.String})).in(t)
}

// intMap registers a map from int64 to string in int64 namespaces.
func intMap(t testing.TB, b *backend.Backend[string], name string) *backend.Map[string, int64, int64, string] {
	t.Helper()
	return must(backend.GetMapNS(b, backend.Int64, backend.MapDescriptor[int64, string]{
		Name: name, KeyCodec: backend.Int64, ValueCodec: backend.String})).in(t)
}

// wantMap checks a map's entries, in iteration order, against want's keys
// in ascending order.
func wantMap(t testing.TB, m *backend.Map[string, int64, int64, string], want map[int64]string) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(want))
	var entries []backend.Entry[int64, string]
	for _, k := range keys {
		entries = append(entries, backend.Entry[int64, string]{Key: k, Value: want[k]})
	}
	if got := collect(t, m.Entries()); !slices.Equal(got, entries) {
		t.Fatalf("Entries = %v, want %v", got, entries)
	}
	if got := collect(t, m.Keys()); !slices.Equal(got, keys) {
		t.Fatalf("Keys = %v, want %v", got, keys)
	}
	var values []string
	for _, k := range keys {
		values = append(values, want[k])
	}
	if got := collect(t, m.Values()); !slices.Equal(got, values) {
		t.Fatalf("Values = %v, want %v", got, values)
	}
	empty, err := m.IsEmpty()
	noErr(t, err)
	if empty != (len(want) == 0) {
		t.Fatalf("IsEmpty = %v with %d entries", empty, len(want))
	}
	for k, v := range want {
		got, ok, err := m.Get(k)
		noErr(t, err)
		if !ok || got != v {
			t.Fatalf("Get(%d) = %q, %v; want %q, true", k, got, ok, v)
		}
		if ok, err := m.Contains(k); err != nil || !ok {
			t.Fatalf("Contains(%d) = %v, %v; want true", k, ok, err)
		}
	}
}

// sum is the reduce function of the tests.
func sum(a, b int64) int64 { return a + b }

// sumState registers an int64 reducing state summing in int64 namespaces.
func sumState(t testing.TB, b *backend.Backend[string], name string) *backend.Reducing[string, int64, int64] {
	t.Helper()
	return must(backend.GetReducingNS(b, backend.Int64, backend.ReducingDescriptor[int64]{Name: name, Codec: backend.Int64, Reduce: sum})).in(t)
}

// wantReduced checks a reducing state's value.
func wantReduced[K, N any, V comparable](t testing.TB, s *backend.Reducing[K, N, V], want V, wantOK bool) {
	t.Helper()
	got, ok, err := s.Get()
	noErr(t, err)
	if got != want || ok != wantOK {
		t.Fatalf("Get = %v, %v; want %v, %v", got, ok, want, wantOK)
	}
}

// avgAcc is the accumulator of the aggregate functions of the tests, stored
// as JSON.
type avgAcc struct {
	Sum   int64
	Count int64
}

// average is an AggregateFunction computing the mean of int64 inputs. If
// created is set, it counts the accumulators created.
type average struct{ created *int }

func (f average) CreateAccumulator() avgAcc {
	if f.created != nil {
		*f.created++
	}
	return avgAcc{}
}
func (average) Add(in int64, acc avgAcc) avgAcc {
	return avgAcc{Sum: acc.Sum + in, Count: acc.Count + 1}
}
func (average) Result(acc avgAcc) float64 {
	if acc.Count == 0 {
		return 0
	}
	return float64(acc.Sum) / float64(acc.Count)
}
func (average) Merge(a, b avgAcc) avgAcc {
	return avgAcc{Sum: a.Sum + b.Sum, Count: a.Count + b.Count}
}

// identityAvg is an AggregateFunction over avgAcc whose result is the
// accumulator itself.
type identityAvg struct{ average }

func (identityAvg) Result(acc avgAcc) avgAcc { return acc }

// sumAgg is an AggregateFunction over avgAcc whose result is the sum.
type sumAgg struct{ average }

func (sumAgg) Result(acc avgAcc) int64 { return acc.Sum }

// avgState registers an averaging state in int64 namespaces.
func avgState(t testing.TB, b *backend.Backend[string], name string, fn average) *backend.Aggregating[string, int64, int64, avgAcc, float64] {
	t.Helper()
	return must(backend.GetAggregatingNS(b, backend.Int64, backend.AggregatingDescriptor[int64, avgAcc, float64]{
		Name: name, Codec: backend.JSON[avgAcc](), Function: fn})).in(t)
}

// wantAvg checks an averaging state's result.
func wantAvg(t testing.TB, s *backend.Aggregating[string, int64, int64, avgAcc, float64], want float64, wantOK bool) {
	t.Helper()
	got, ok, err := s.Get()
	noErr(t, err)
	if got != want || ok != wantOK {
		t.Fatalf("Get = %v, %v; want %v, %v", got, ok, want, wantOK)
	}
}

var (
	// errAppend is what pickyCodec.Append returns for unencodable values.
	errAppend = errors.New("picky: cannot encode 13")
	// errDecode is what pickyCodec.Decode returns for 666. It does not wrap
	// backend.ErrCorrupt: the backend must add that.
	errDecode = errors.New("picky: refusing to decode 666")
)

// pickyCodec is a variable-size int64 codec (decimal text) that cannot
// encode 13 and cannot decode 666: a stand-in for user codecs with bugs or
// for data written by another version of a codec.
type pickyCodec struct{}

func (pickyCodec) Name() string { return "picky" }
func (pickyCodec) Append(dst []byte, v int64) ([]byte, error) {
	if v == 13 {
		return dst, errAppend
	}
	return strconv.AppendInt(dst, v, 10), nil
}
func (pickyCodec) Decode(src []byte) (int64, error) {
	v, err := strconv.ParseInt(string(src), 10, 64)
	if err != nil {
		return 0, err
	}
	if v == 666 {
		return 0, errDecode
	}
	return v, nil
}

// lyingCodec is an int64 codec that claims a fixed size of 8 bytes but
// writes 3 bytes for every value short reports true for.
type lyingCodec struct{ short func(int64) bool }

func (lyingCodec) Name() string   { return "lying" }
func (lyingCodec) FixedSize() int { return 8 }
func (c lyingCodec) Append(dst []byte, v int64) ([]byte, error) {
	if c.short(v) {
		return append(dst, 1, 2, 3), nil
	}
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}
func (lyingCodec) Decode(src []byte) (int64, error) {
	if len(src) != 8 {
		return 0, fmt.Errorf("lying: %d bytes", len(src))
	}
	return int64(binary.BigEndian.Uint64(src)), nil
}

// unnamedCodec has an empty name, which the backend must reject.
type unnamedCodec struct{ pickyCodec }

func (unnamedCodec) Name() string { return "" }
