package backend_test

import (
	"errors"
	"testing"

	"github.com/pebblestate/pebblestate/backend"
)

// TestRegister_SameDescriptorSameHandle checks that registering a name
// again with the same kind and codecs returns the very same handle, for
// every kind.
func TestRegister_SameDescriptorSameHandle(t *testing.T) {
	b := MustOpen(t)
	vd := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64}
	if a, c := must(backend.GetValue(b, vd)).in(t), must(backend.GetValue(b, vd)).in(t); a != c {
		t.Fatal("GetValue returned two handles")
	}
	if a, c := must(backend.GetValueNS(b, backend.Void, vd)).in(t), must(backend.GetValue(b, vd)).in(t); a != c {
		t.Fatal("GetValueNS with Void and GetValue returned two handles")
	}
	ld := backend.ListDescriptor[string]{Name: "l", Codec: backend.String}
	if a, c := must(backend.GetListNS(b, backend.Int64, ld)).in(t), must(backend.GetListNS(b, backend.Int64, ld)).in(t); a != c {
		t.Fatal("GetListNS returned two handles")
	}
	md := backend.MapDescriptor[int64, string]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.String}
	if a, c := must(backend.GetMap(b, md)).in(t), must(backend.GetMap(b, md)).in(t); a != c {
		t.Fatal("GetMap returned two handles")
	}
	rd := backend.ReducingDescriptor[int64]{Name: "r", Codec: backend.Int64, Reduce: sum}
	if a, c := must(backend.GetReducing(b, rd)).in(t), must(backend.GetReducing(b, rd)).in(t); a != c {
		t.Fatal("GetReducing returned two handles")
	}
	ad := backend.AggregatingDescriptor[int64, avgAcc, float64]{Name: "a", Codec: backend.JSON[avgAcc](), Function: average{}}
	if a, c := must(backend.GetAggregating(b, ad)).in(t), must(backend.GetAggregating(b, ad)).in(t); a != c {
		t.Fatal("GetAggregating returned two handles")
	}
}

// TestRegister_FirstReduceFunctionWins checks the documented behaviour of
// registering a reducing state again with another function: the handle
// registered first, with its function, comes back.
func TestRegister_FirstReduceFunctionWins(t *testing.T) {
	b := MustOpen(t)
	r1 := must(backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: "r", Codec: backend.Int64, Reduce: sum})).in(t)
	r2 := must(backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: "r", Codec: backend.Int64, Reduce: func(a, b int64) int64 { return a * b }})).in(t)
	if r1 != r2 {
		t.Fatal("two handles for one state")
	}
	setKey(t, b, "k")
	noErr(t, r2.Add(3))
	noErr(t, r2.Add(4))
	wantReduced(t, r1, 7, true)
}

// incompatible registers a state "s" with first and then second, in one
// process and after a reopen, and checks that second fails with
// ErrIncompatibleState both times while first keeps working.
func incompatible(t *testing.T, first, second func(*backend.Backend[string]) error) {
	t.Helper()
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	noErr(t, first(b))
	wantErr(t, second(b), backend.ErrIncompatibleState)
	noErr(t, first(b))

	b = reopen(t, b, inDir(dir))
	wantErr(t, second(b), backend.ErrIncompatibleState)
	noErr(t, first(b))
	wantErr(t, second(b), backend.ErrIncompatibleState)

	// And the reverse order after a reopen: the stored record decides.
	b = reopen(t, b, inDir(dir))
	wantErr(t, second(b), backend.ErrIncompatibleState)
	noErr(t, first(b))
}

// errOf drops the handle of a registration.
func errOf[H any](_ H, err error) error { return err }

// TestRegister_IncompatibleKind checks that a name cannot change kind.
func TestRegister_IncompatibleKind(t *testing.T) {
	value := func(b *backend.Backend[string]) error {
		return errOf(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "s", Codec: backend.Int64}))
	}
	list := func(b *backend.Backend[string]) error {
		return errOf(backend.GetList(b, backend.ListDescriptor[int64]{Name: "s", Codec: backend.Int64}))
	}
	mapped := func(b *backend.Backend[string]) error {
		return errOf(backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "s", KeyCodec: backend.Int64, ValueCodec: backend.Int64}))
	}
	reducing := func(b *backend.Backend[string]) error {
		return errOf(backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: "s", Codec: backend.Int64, Reduce: sum}))
	}
	aggregating := func(b *backend.Backend[string]) error {
		return errOf(backend.GetAggregating(b, backend.AggregatingDescriptor[int64, int64, int64]{Name: "s", Codec: backend.Int64, Function: plusFn{}}))
	}
	kinds := []struct {
		name     string
		register func(*backend.Backend[string]) error
	}{{"value", value}, {"list", list}, {"map", mapped}, {"reducing", reducing}, {"aggregating", aggregating}}
	// Each unordered pair once, in both directions across the pairs.
	for i, k1 := range kinds {
		for _, d := range []int{1, 2} {
			k2 := kinds[(i+d)%len(kinds)]
			t.Run(k1.name+"-then-"+k2.name, func(t *testing.T) { incompatible(t, k1.register, k2.register) })
		}
	}
}

// TestRegister_IncompatibleValueCodec checks that a name cannot change its
// value codec.
func TestRegister_IncompatibleValueCodec(t *testing.T) {
	incompatible(t,
		func(b *backend.Backend[string]) error {
			return errOf(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "s", Codec: backend.Int64}))
		},
		func(b *backend.Backend[string]) error {
			return errOf(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "s", Codec: pickyCodec{}}))
		})
}

// TestRegister_IncompatibleNamespaceCodec checks that a name cannot change
// its namespace codec, the void namespace included.
func TestRegister_IncompatibleNamespaceCodec(t *testing.T) {
	d := backend.ListDescriptor[int64]{Name: "s", Codec: backend.Int64}
	incompatible(t,
		func(b *backend.Backend[string]) error { return errOf(backend.GetList(b, d)) },
		func(b *backend.Backend[string]) error { return errOf(backend.GetListNS(b, backend.Int64, d)) })
	incompatible(t,
		func(b *backend.Backend[string]) error { return errOf(backend.GetListNS(b, backend.Int64, d)) },
		func(b *backend.Backend[string]) error { return errOf(backend.GetListNS(b, backend.String, d)) })
}

// TestRegister_IncompatibleMapKeyCodec checks that a map cannot change
// its map key codec.
func TestRegister_IncompatibleMapKeyCodec(t *testing.T) {
	incompatible(t,
		func(b *backend.Backend[string]) error {
			return errOf(backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "s", KeyCodec: backend.Int64, ValueCodec: backend.String}))
		},
		func(b *backend.Backend[string]) error {
			return errOf(backend.GetMap(b, backend.MapDescriptor[int64, string]{Name: "s", KeyCodec: pickyCodec{}, ValueCodec: backend.String}))
		})
}

// TestRegister_IncompatibleGoType checks that JSON states of two different
// structs cannot share a name: the JSON codec's name carries the Go type.
func TestRegister_IncompatibleGoType(t *testing.T) {
	type before struct{ A int }
	type after struct{ A int }
	incompatible(t,
		func(b *backend.Backend[string]) error {
			return errOf(backend.GetValue(b, backend.ValueDescriptor[before]{Name: "s", Codec: backend.JSON[before]()}))
		},
		func(b *backend.Backend[string]) error {
			return errOf(backend.GetValue(b, backend.ValueDescriptor[after]{Name: "s", Codec: backend.JSON[after]()}))
		})
}

// TestRegister_IncompatibleHandleType checks that, within one process, a
// state registered with the same codec names but another Go type
// (aggregating results of another type) is refused rather than returned
// as the wrong handle.
func TestRegister_IncompatibleHandleType(t *testing.T) {
	b := MustOpen(t)
	must(backend.GetAggregating(b, backend.AggregatingDescriptor[int64, avgAcc, float64]{
		Name: "s", Codec: backend.JSON[avgAcc](), Function: average{}})).in(t)
	_, err := backend.GetAggregating(b, backend.AggregatingDescriptor[int64, avgAcc, avgAcc]{
		Name: "s", Codec: backend.JSON[avgAcc](), Function: identityAvg{}})
	wantErr(t, err, backend.ErrIncompatibleState)
}

// TestRegister_InvalidDescriptors checks that bad descriptors fail with
// ErrInvalidArgument and register nothing.
func TestRegister_InvalidDescriptors(t *testing.T) {
	b := MustOpen(t)
	cases := map[string]error{
		"value/empty name":    errOf(backend.GetValue(b, backend.ValueDescriptor[int64]{Codec: backend.Int64})),
		"value/nil codec":     errOf(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "x"})),
		"value/unnamed":       errOf(backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "x", Codec: unnamedCodec{}})),
		"value/nil ns":        errOf(backend.GetValueNS[string, int64](b, nil, backend.ValueDescriptor[int64]{Name: "x", Codec: backend.Int64})),
		"value/unnamed ns":    errOf(backend.GetValueNS[string, int64](b, unnamedCodec{}, backend.ValueDescriptor[int64]{Name: "x", Codec: backend.Int64})),
		"list/empty name":     errOf(backend.GetList(b, backend.ListDescriptor[int64]{Codec: backend.Int64})),
		"list/nil codec":      errOf(backend.GetList(b, backend.ListDescriptor[int64]{Name: "x"})),
		"list/nil ns":         errOf(backend.GetListNS[string, int64](b, nil, backend.ListDescriptor[int64]{Name: "x", Codec: backend.Int64})),
		"map/empty name":      errOf(backend.GetMap(b, backend.MapDescriptor[int64, int64]{KeyCodec: backend.Int64, ValueCodec: backend.Int64})),
		"map/nil key":         errOf(backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "x", ValueCodec: backend.Int64})),
		"map/nil value":       errOf(backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "x", KeyCodec: backend.Int64})),
		"map/unnamed key":     errOf(backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "x", KeyCodec: unnamedCodec{}, ValueCodec: backend.Int64})),
		"map/nil ns":          errOf(backend.GetMapNS[string, int64](b, nil, backend.MapDescriptor[int64, int64]{Name: "x", KeyCodec: backend.Int64, ValueCodec: backend.Int64})),
		"reducing/empty name": errOf(backend.GetReducing(b, backend.ReducingDescriptor[int64]{Codec: backend.Int64, Reduce: sum})),
		"reducing/nil codec":  errOf(backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: "x", Reduce: sum})),
		"reducing/nil reduce": errOf(backend.GetReducing(b, backend.ReducingDescriptor[int64]{Name: "x", Codec: backend.Int64})),
		"reducing/nil ns":     errOf(backend.GetReducingNS[string, int64](b, nil, backend.ReducingDescriptor[int64]{Name: "x", Codec: backend.Int64, Reduce: sum})),
		"aggregating/empty name": errOf(backend.GetAggregating(b, backend.AggregatingDescriptor[int64, int64, int64]{
			Codec: backend.Int64, Function: plusFn{}})),
		"aggregating/nil codec": errOf(backend.GetAggregating(b, backend.AggregatingDescriptor[int64, int64, int64]{
			Name: "x", Function: plusFn{}})),
		"aggregating/nil function": errOf(backend.GetAggregating(b, backend.AggregatingDescriptor[int64, int64, int64]{
			Name: "x", Codec: backend.Int64})),
		"aggregating/nil ns": errOf(backend.GetAggregatingNS[string, int64](b, nil, backend.AggregatingDescriptor[int64, int64, int64]{
			Name: "x", Codec: backend.Int64, Function: plusFn{}})),
	}
	for name, err := range cases {
		if !errors.Is(err, backend.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
	// None of them took the name "x".
	v := must(backend.GetList(b, backend.ListDescriptor[string]{Name: "x", Codec: backend.String})).in(t)
	setKey(t, b, "k")
	noErr(t, v.Add("ok"))
}

// TestRegister_IDsStableAcrossReopen checks that states keep their data
// when registered in another order after a reopen, and that a state new
// after the reopen gets a fresh id rather than an existing state's.
func TestRegister_IDsStableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	va := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "A", Codec: backend.String})).in(t)
	vb := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "B", Codec: backend.String})).in(t)
	setKey(t, b, "k")
	noErr(t, va.Update("a"))
	noErr(t, vb.Update("b"))

	b = reopen(t, b, inDir(dir))
	vc := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "C", Codec: backend.String})).in(t)
	setKey(t, b, "k")
	wantNoValue(t, vc) // C must not read A's or B's entries
	noErr(t, vc.Update("c"))
	vb = must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "B", Codec: backend.String})).in(t)
	va = must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: "A", Codec: backend.String})).in(t)
	wantValue(t, va, "a")
	wantValue(t, vb, "b")

	b = reopen(t, b, inDir(dir))
	for name, want := range map[string]string{"C": "c", "B": "b", "A": "a"} {
		v := must(backend.GetValue(b, backend.ValueDescriptor[string]{Name: name, Codec: backend.String})).in(t)
		setKey(t, b, "k")
		wantValue(t, v, want)
	}
}

// TestRegister_UnregisteredStatesKeepData checks that a state not
// registered during one run keeps its data for a later run.
func TestRegister_UnregisteredStatesKeepData(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	l := intList(t, b, "kept")
	setKey(t, b, "k")
	noErr(t, l.AddAll([]int64{1, 2}))
	b = reopen(t, b, inDir(dir))
	other := intList(t, b, "other")
	setKey(t, b, "k")
	noErr(t, other.Add(9))
	b = reopen(t, b, inDir(dir))
	l = intList(t, b, "kept")
	setKey(t, b, "k")
	wantList(t, l, []int64{1, 2})
}

// TestRegister_FailedRegistrationLeavesNoRecord checks that a registration
// that fails (here: its namespace codec cannot encode the zero namespace)
// does not claim the name, so a corrected descriptor can register it, in
// this process and after a reopen.
func TestRegister_FailedRegistrationLeavesNoRecord(t *testing.T) {
	dir := t.TempDir()
	b := MustOpen(t, inDir(dir))
	bad := lyingCodec{short: func(int64) bool { return true }}
	d := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64}
	_, err := backend.GetValueNS[string, int64](b, bad, d)
	wantErr(t, err, backend.ErrInvalidArgument)

	b = reopen(t, b, inDir(dir))
	_, err = backend.GetValueNS(b, backend.Int64, d)
	noErr(t, err)
}

// TestRegister_FailedRegistrationCanBeRetried is the in-process half of
// TestRegister_FailedRegistrationLeavesNoRecord.
func TestRegister_FailedRegistrationCanBeRetried(t *testing.T) {
	b := MustOpen(t)
	bad := lyingCodec{short: func(int64) bool { return true }}
	d := backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64}
	_, err := backend.GetValueNS[string, int64](b, bad, d)
	wantErr(t, err, backend.ErrInvalidArgument)
	_, err = backend.GetValueNS(b, backend.Int64, d)
	noErr(t, err)
}

// TestRegister_AfterClose checks that registration on a closed backend
// fails with ErrClosed.
func TestRegister_AfterClose(t *testing.T) {
	b := MustOpen(t)
	noErr(t, b.Close())
	_, err := backend.GetValue(b, backend.ValueDescriptor[int64]{Name: "v", Codec: backend.Int64})
	wantErr(t, err, backend.ErrClosed)
	_, err = backend.GetMap(b, backend.MapDescriptor[int64, int64]{Name: "m", KeyCodec: backend.Int64, ValueCodec: backend.Int64})
	wantErr(t, err, backend.ErrClosed)
}

// TestRegister_Name checks that a handle reports its name.
func TestRegister_Name(t *testing.T) {
	b := MustOpen(t)
	if got := intList(t, b, "my list").Name(); got != "my list" {
		t.Fatalf("Name = %q", got)
	}
}
